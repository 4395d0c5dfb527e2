// Site-wide behaviour. No inline scripts anywhere: the Content-Security-Policy forbids them.
(function () {
  "use strict";

  // Sign-up: fill the hidden time-zone field from the browser, and pre-select it in
  // the visible list (the fallback) unless the person already chose one.
  function detectTimeZone() {
    var hidden = document.querySelector("input[name='detected_time_zone']");
    if (!hidden) { return; }
    var zone = "";
    try {
      zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (error) {
      zone = "";
    }
    if (!zone) { return; }
    hidden.value = zone;
    var select = document.querySelector("select[name='time_zone']");
    if (select && !select.value) {
      var known = Array.prototype.some.call(select.options, function (option) { return option.value === zone; });
      if (known) { select.value = zone; }
    }
    var note = document.querySelector("[data-time-zone-detected]");
    if (note) {
      note.querySelector("[data-time-zone-name]").textContent = zone.replace(/_/g, " ");
      note.hidden = false;
    }
  }

  // Forms that need a second thought (closing a question) carry data-confirm.
  function confirmForms() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    detectTimeZone();
    confirmForms();
  });
})();
