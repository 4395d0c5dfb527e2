// The ask form's duty notes: show the note of the chosen specialty (the server rendered
// one per specialty with nobody on duty in time), and let "Ask X instead" choose X.
(function () {
  "use strict";

  function init() {
    var form = document.getElementById("ask-form");
    var select = form && form.elements.namedItem("specialty");
    var notes = document.querySelectorAll("[data-duty-note-for]");
    if (!select || !notes.length) { return; }

    function update() {
      Array.prototype.forEach.call(notes, function (note) {
        note.hidden = note.getAttribute("data-duty-note-for") !== select.value;
      });
    }

    Array.prototype.forEach.call(document.querySelectorAll("[data-choose-specialty]"), function (button) {
      button.hidden = false;
      var manual = button.parentNode.querySelector(".duty-note-manual");
      if (manual) { manual.hidden = true; }
      button.addEventListener("click", function () {
        select.value = button.getAttribute("data-choose-specialty");
        update();
        select.focus();
      });
    });
    select.addEventListener("change", update);
    update();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
}());
