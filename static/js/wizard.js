/* Requirement wizard: shows the server's validation issues next to their fields.

   htmx posts the form to /designs/wizard/validate as the user types and swaps in
   #wizard-errors: one <li> per issue with data-id (the field's id without "f-"),
   data-kind (the schema's error type) and data-message. This file copies each message
   into the field's error slot (#e-<id>), sets aria-invalid and aria-describedby on the
   control (#f-<id>), and clears the ones that are fixed. While typing, a value that is
   merely missing in a field the user has not touched yet is left out (a new, empty row
   should not shout); after a save attempt the server marks the list "submitted" and
   everything is shown. The CSP forbids inline scripts, hence this file. */
(function () {
  "use strict";

  var form = document.getElementById("wizard-form");
  if (!form) { return; }
  var touched = new Set();

  function markTouched(event) {
    var t = event.target;
    if (t && t.name && t.name.charAt(0) !== "_") { touched.add(t.name); }
  }
  form.addEventListener("input", markTouched);
  form.addEventListener("change", markTouched);

  function isTouched(target) {
    if (!target || touched.has(target)) { return true; }
    var hit = false;
    touched.forEach(function (name) {
      if (name.indexOf(target + ".") === 0 || name.indexOf(target + "[") === 0) { hit = true; }
    });
    return hit;
  }

  function setDescribedBy(el, id, on) {
    var ids = (el.getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean);
    ids = ids.filter(function (x) { return x !== id; });
    if (on) { ids.push(id); }
    if (ids.length) { el.setAttribute("aria-describedby", ids.join(" ")); } else { el.removeAttribute("aria-describedby"); }
  }

  function clearInline() {
    form.querySelectorAll(".wz-error").forEach(function (slot) {
      if (!slot.hidden) { slot.hidden = true; slot.textContent = ""; }
      var control = document.getElementById("f-" + slot.id.slice(2));
      if (control) {
        control.removeAttribute("aria-invalid");
        setDescribedBy(control, slot.id, false);
      }
    });
  }

  function applyErrors() {
    var box = document.getElementById("wizard-errors");
    if (!box) { return; }
    var submitted = box.getAttribute("data-submitted") === "true";
    var items = box.querySelectorAll("li[data-id]");
    var messages = {};
    var hidden = 0;
    items.forEach(function (li) {
      var show = submitted || li.getAttribute("data-kind") !== "missing" || isTouched(li.getAttribute("data-target"));
      li.hidden = !show;
      if (!show) { hidden += 1; return; }
      var id = li.getAttribute("data-id");
      if (id) { (messages[id] = messages[id] || []).push(li.getAttribute("data-message")); }
    });
    clearInline();
    Object.keys(messages).forEach(function (id) {
      var slot = document.getElementById("e-" + id);
      var control = document.getElementById("f-" + id);
      if (slot) { slot.textContent = messages[id].join(" "); slot.hidden = false; }
      if (control && slot && /^(INPUT|SELECT|TEXTAREA|FIELDSET)$/.test(control.tagName)) {
        control.setAttribute("aria-invalid", "true");
        setDescribedBy(control, slot.id, true);
      }
    });
    var shown = items.length - hidden;
    var errors = box.querySelector(".form-errors");
    var title = box.querySelector(".wz-errors-title strong");
    var more = box.querySelector(".wz-errors-more");
    var ok = box.querySelector(".wz-ok");
    if (errors) { errors.hidden = shown === 0; }
    if (title && shown > 0) { title.textContent = shown + " problem" + (shown === 1 ? "" : "s") + " to fix:"; }
    if (more) {
      more.hidden = hidden === 0;
      more.textContent = hidden + " more field" + (hidden === 1 ? " is" : "s are") + " still to fill in.";
    }
    if (ok && shown === 0 && hidden > 0) {
      ok.hidden = false;
      ok.textContent = "No problems in what you have entered so far; " + hidden + " field" +
        (hidden === 1 ? " is" : "s are") + " still to fill in.";
    }
  }

  /* Parts of the form that only apply to one choice of a select (data-show-when="name=value").
     Without JavaScript everything stays visible; the server ignores what does not apply. */
  function applyShowWhen() {
    document.querySelectorAll("[data-show-when]").forEach(function (el) {
      var rule = el.getAttribute("data-show-when").split("=");
      var control = form.elements.namedItem(rule[0]);
      if (control) { el.hidden = control.value !== rule[1]; }
    });
  }
  form.addEventListener("change", applyShowWhen);

  function announceEstimate() {
    var src = document.querySelector("#estimate-body [data-announce]");
    var live = document.getElementById("estimate-live");
    if (src && live) { live.textContent = src.textContent.replace(/\s+/g, " ").trim(); }
  }

  document.body.addEventListener("htmx:load", function (event) {
    var elt = event.detail && event.detail.elt;
    if (!elt || !elt.classList) { return; }
    if (elt.id === "wizard-errors") {
      applyErrors();
    } else if (elt.classList.contains("wz-group")) {
      applyShowWhen();
      form.dispatchEvent(new CustomEvent("wizard:changed", { bubbles: true }));
    } else if (elt.closest && elt.closest("#estimate-body")) {
      announceEstimate();
    }
  });

  applyShowWhen();
  applyErrors();
  var box = document.querySelector("#wizard-errors[data-submitted='true'] .form-errors");
  if (box) { box.focus(); }
})();
