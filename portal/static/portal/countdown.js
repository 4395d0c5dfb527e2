// Live countdown to the guaranteed answer time. Each [data-countdown] element with
// state "running" carries data-due (ISO 8601); the text is formatted exactly like
// consultations.views.countdown_text on the server.
(function () {
  "use strict";

  function durationText(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var days = Math.floor(seconds / 86400);
    var hours = Math.floor((seconds % 86400) / 3600);
    var minutes = Math.floor((seconds % 3600) / 60);
    var secs = seconds % 60;
    if (days) { return days + " d " + hours + " h"; }
    if (hours) { return hours + " h " + minutes + " min"; }
    if (minutes) { return minutes + " min " + (secs < 10 ? "0" : "") + secs + " s"; }
    return secs + " s";
  }

  function countdownText(remainingMs) {
    var seconds = remainingMs / 1000;
    if (seconds >= 0) { return "answer due in " + durationText(seconds); }
    return "overdue by " + durationText(-seconds);
  }

  function tick(elements) {
    var now = Date.now();
    elements.forEach(function (element) {
      var remaining = element.dueAt - now;
      element.node.textContent = countdownText(remaining);
      element.node.classList.toggle("countdown-overdue", remaining < 0);
      if (remaining < 0) { revealOverdue(); }
    });
  }

  // The guaranteed time passed while the page was open: the promise it made has failed,
  // so it goes, and the hidden notice saying what happens now shows (issue 14).
  function revealOverdue() {
    document.querySelectorAll("[data-promise]").forEach(function (node) { node.hidden = true; });
    document.querySelectorAll("[data-overdue-notice][hidden]").forEach(function (node) { node.hidden = false; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var elements = [];
    document.querySelectorAll("[data-countdown][data-state='running'][data-due]").forEach(function (node) {
      var dueAt = Date.parse(node.getAttribute("data-due"));
      if (!isNaN(dueAt)) { elements.push({ node: node, dueAt: dueAt }); }
    });
    if (!elements.length) { return; }
    tick(elements);
    window.setInterval(function () { tick(elements); }, 1000);
  });

  window.portalCountdown = { durationText: durationText, countdownText: countdownText };
})();
