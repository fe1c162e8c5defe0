/* Trade-offs page: draws the cost-versus-deadline chart (Chart.js 4) whenever htmx swaps in
   new results, marks the controls the server refused, and flags scenario results computed
   with earlier settings. Data: <script type="application/json" id="tradeoff-chart-data">
   (the CSP forbids inline scripts). Infeasible points are null: the line shows a gap. */
(function () {
  "use strict";

  var usd = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", maximumFractionDigits: 0 });
  var compactUsd = new Intl.NumberFormat("en-US", {
    style: "currency", currency: "USD", notation: "compact", maximumFractionDigits: 1
  });
  var gpus = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });

  function draw() {
    var el = document.getElementById("tradeoff-chart-data");
    var canvas = document.getElementById("chart-tradeoff");
    if (!el || !canvas || typeof window.Chart !== "function") { return; }
    var data;
    try { data = JSON.parse(el.textContent); } catch (e) { return; }
    var old = window.Chart.getChart(canvas);
    if (old) { old.destroy(); }
    window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    window.Chart.defaults.color = "#334155";
    var radius = data.cost.map(function (v, i) { return i === data.base_index ? 6 : 4; });
    new window.Chart(canvas, {
      type: "line",
      data: {
        labels: data.labels,
        datasets: [
          {
            label: "Total cost", data: data.cost, yAxisID: "y", borderColor: "#2563eb",
            backgroundColor: "#2563eb", pointRadius: radius, pointHoverRadius: 7, borderWidth: 2,
            tension: 0, spanGaps: false
          },
          {
            label: "Peak GPUs", data: data.peak, yAxisID: "y1", borderColor: "#94a3b8",
            backgroundColor: "#94a3b8", borderDash: [5, 4], pointRadius: 2, borderWidth: 1.5, tension: 0
          }
        ]
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: window.matchMedia("(prefers-reduced-motion: reduce)").matches ? false : { duration: 300 },
        interaction: { mode: "index", intersect: false },
        plugins: {
          legend: { position: "bottom", labels: { boxWidth: 12 } },
          tooltip: { callbacks: { label: function (c) {
            if (c.dataset.yAxisID === "y1") { return "Peak: " + gpus.format(c.parsed.y) + " GPUs"; }
            if (c.parsed.y === null) { return "Total cost: no plan (" + data.status[c.dataIndex] + ")"; }
            return "Total cost: " + usd.format(c.parsed.y) + " (" + data.status[c.dataIndex] + ")";
          } } }
        },
        scales: {
          x: { grid: { display: false }, title: { display: true, text: "Deadline factor · longest run" } },
          y: { beginAtZero: true, position: "left",
               ticks: { callback: function (v) { return compactUsd.format(v); } } },
          y1: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false },
                title: { display: true, text: "GPUs" } }
        }
      }
    });
  }

  /* Server-side refusals of the controls, sent in the results fragment (see _invalid.html). */
  function markControls() {
    var form = document.getElementById("tradeoff-form");
    if (!form) { return; }
    var bad = {};
    document.querySelectorAll("#curve-results [data-field], #sensitivity-results [data-field]").forEach(function (li) {
      bad[li.getAttribute("data-field")] = li.getAttribute("data-message");
    });
    form.querySelectorAll("input[id^='c-']").forEach(function (input) {
      var name = input.id.slice(2);
      var slot = document.getElementById("ce-" + name);
      var ids = (input.getAttribute("aria-describedby") || "").split(/\s+/).filter(function (x) {
        return x && x !== "ce-" + name;
      });
      if (bad[name]) {
        input.setAttribute("aria-invalid", "true");
        ids.push("ce-" + name);
        if (slot) { slot.textContent = bad[name]; slot.hidden = false; }
      } else {
        input.removeAttribute("aria-invalid");
        if (slot) { slot.textContent = ""; slot.hidden = true; }
      }
      if (ids.length) { input.setAttribute("aria-describedby", ids.join(" ")); } else { input.removeAttribute("aria-describedby"); }
    });
  }

  var pending = false;
  document.body.addEventListener("htmx:load", function () {
    if (pending) { return; }
    pending = true;
    window.requestAnimationFrame(function () { pending = false; draw(); markControls(); });
  });

  document.body.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail && event.detail.elt;
    if (!elt) { return; }
    var target = elt.id === "tradeoff-form" || elt.id === "curve-results" ? "curve-results"
      : elt.id === "sensitivity-button" ? "sensitivity-results" : null;
    if (!target) { return; }
    document.getElementById(target).setAttribute("aria-busy", "true");
    if (elt.id === "tradeoff-form") {
      var sens = document.getElementById("sensitivity-results");
      if (sens && sens.querySelector("#sensitivity-table")) {
        sens.classList.add("stale");
        sens.setAttribute("title", "Computed with the previous settings");
      }
    }
  });
  document.body.addEventListener("htmx:afterRequest", function (event) {
    var elt = event.detail && event.detail.elt;
    if (!elt) { return; }
    ["curve-results", "sensitivity-results"].forEach(function (id) {
      var box = document.getElementById(id);
      if (box && (elt.id === "tradeoff-form" || elt.id === id || (id === "sensitivity-results" && elt.id === "sensitivity-button"))) {
        box.removeAttribute("aria-busy");
        if (id === "sensitivity-results" && elt.id === "sensitivity-button") { box.classList.remove("stale"); box.removeAttribute("title"); }
      }
    });
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
