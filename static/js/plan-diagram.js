/* Architecture diagram on the plan page (Mermaid 11, securityLevel "strict").
   The Mermaid source is built on the server, with every piece of user text escaped
   (app/web/architecture.py), and read from <script type="application/json"
   id="architecture-source">; the CSP forbids inline scripts, so this file draws it.
   The diagram fits the page's width; "Full size" shows it at its natural size in a box
   that scrolls (on phones the fitted text is too small to read). Mermaid itself is loaded
   from /static/vendor/mermaid/ when the diagram comes near the screen. */
(function () {
  "use strict";

  function readSource() {
    var el = document.getElementById("architecture-source");
    if (!el) { return null; }
    try { return JSON.parse(el.textContent); } catch (e) { return null; }
  }

  function fallback(box, text) {
    var p = box.querySelector(".diagram-fallback");
    if (p) { p.textContent = text; }
  }

  // At full size, start where the diagram starts (its leftmost group), not in the empty
  // corner a left-to-right layout often leaves at the top left.
  function scrollToStart(box, svg) {
    var first = null;
    Array.prototype.forEach.call(svg.querySelectorAll(".cluster"), function (c) {
      if (!first || c.getBoundingClientRect().left < first.getBoundingClientRect().left) { first = c; }
    });
    if (!first) { return; }
    var r = first.getBoundingClientRect();
    var b = box.getBoundingClientRect();
    box.scrollLeft += r.left - b.left - 8;
    box.scrollTop += r.top - b.top - 8;
  }

  function setupZoom(box, svg) {
    var button = document.getElementById("diagram-zoom");
    var natural = svg.viewBox && svg.viewBox.baseVal ? svg.viewBox.baseVal.width : 0;
    if (!button || !natural || natural <= box.clientWidth) { return; } // already at full size
    var fitted = svg.style.maxWidth;
    button.hidden = false;
    button.addEventListener("click", function () {
      var full = button.getAttribute("aria-pressed") !== "true";
      button.setAttribute("aria-pressed", full ? "true" : "false");
      button.textContent = full ? "Fit to width" : "Full size";
      box.classList.toggle("is-full", full);
      svg.style.maxWidth = full ? "none" : fitted;
      svg.style.width = full ? natural + "px" : "";
      if (full) { scrollToStart(box, svg); }
    });
  }

  function draw() {
    var box = document.getElementById("architecture-diagram");
    var source = readSource();
    var mermaid = window.mermaid;
    if (!box || typeof source !== "string" || !mermaid) { return; }
    mermaid.initialize({
      startOnLoad: false,
      securityLevel: "strict",
      suppressErrorRendering: true,
      theme: "neutral",
      fontFamily: getComputedStyle(document.body).fontFamily,
      flowchart: { htmlLabels: true, useMaxWidth: true, curve: "basis", padding: 10 }
    });
    fallback(box, "Drawing the diagram…");
    mermaid.render("architecture-svg", source).then(function (result) {
      box.innerHTML = result.svg; // sanitized by Mermaid (strict: labels pass through DOMPurify)
      var svg = box.querySelector("svg");
      if (!svg) { return; }
      svg.setAttribute("aria-hidden", "true"); // the container carries role="img" and its label
      svg.setAttribute("focusable", "false");
      box.classList.add("is-rendered");
      setupZoom(box, svg);
    }, function (err) {
      fallback(box, "The diagram could not be drawn; its source is below.");
      if (window.console) { console.warn("architecture diagram:", err && err.message ? err.message : err); }
    });
  }

  // Mermaid is large (2.6 MB): load it only when the diagram comes near the screen, so the
  // figures and charts above it are not held up.
  function loadMermaid(then) {
    if (window.mermaid) { then(); return; }
    var script = document.createElement("script");
    script.src = "/static/vendor/mermaid/mermaid.min.js";
    script.onload = then;
    script.onerror = function () {
      var box = document.getElementById("architecture-diagram");
      if (box) { fallback(box, "The diagram could not be drawn; its source is below."); }
    };
    document.head.appendChild(script);
  }

  function start() {
    var box = document.getElementById("architecture-diagram");
    if (!box || !document.getElementById("architecture-source")) { return; }
    if (!("IntersectionObserver" in window)) { loadMermaid(draw); return; }
    var observer = new IntersectionObserver(function (entries) {
      if (entries.some(function (e) { return e.isIntersecting; })) {
        observer.disconnect();
        loadMermaid(draw);
      }
    }, { rootMargin: "800px 0px" });
    observer.observe(box);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
