// The ask form: shows the emergency notice live while the patient types, and checks
// the number and size of attachments before a long upload. The server re-checks both.
(function () {
  "use strict";

  function escapeRegExp(text) {
    return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  }

  // Same pattern as consultations.red_flags: whole phrases, any whitespace between words.
  function redFlagPattern(phrases) {
    var parts = phrases.map(function (phrase) {
      return escapeRegExp(phrase).replace(/ /g, "\\s+");
    });
    return new RegExp("\\b(" + parts.join("|") + ")\\b", "i");
  }

  function watchRedFlags(form) {
    var notice = document.getElementById("red-flag-notice");
    var phrases;
    try {
      phrases = JSON.parse(form.getAttribute("data-red-flags") || "[]");
    } catch (error) {
      phrases = [];
    }
    if (!notice || !phrases.length) { return; }
    var pattern = redFlagPattern(phrases);
    var fields = ["title", "description", "medical_history"].map(function (name) {
      return form.elements.namedItem(name);
    }).filter(Boolean);
    function update() {
      var text = fields.map(function (field) { return field.value; }).join("\n");
      notice.hidden = !pattern.test(text);
    }
    fields.forEach(function (field) { field.addEventListener("input", update); });
    update();
  }

  function humanSize(bytes) {
    return (bytes / (1024 * 1024)).toFixed(1).replace(/\.0$/, "") + " MB";
  }

  // crispy-forms writes a field's server errors as #error_<n>_<input id>.
  function clearServerErrors(input) {
    var group = input.closest(".mb-3") || input.parentNode;
    group.querySelectorAll("[id^='error_'][id$='_" + input.id + "']").forEach(function (node) {
      node.remove();
    });
    input.classList.remove("is-invalid");
  }

  function watchAttachments(form) {
    var input = form.elements.namedItem("attachments");
    var message = document.getElementById("attachments-client-error");
    var maxFiles = parseInt(form.getAttribute("data-max-files"), 10);
    var maxBytes = parseInt(form.getAttribute("data-max-bytes"), 10);
    if (!input || !message) { return; }
    input.addEventListener("change", function () {
      // The server's error was about the files chosen before: new files replace it,
      // so it must not stay next to what this check says about the new ones.
      clearServerErrors(input);
      var problems = [];
      if (maxFiles && input.files.length > maxFiles) {
        problems.push("You chose " + input.files.length + " files; at most " + maxFiles + " are allowed.");
      }
      Array.prototype.forEach.call(input.files, function (file) {
        if (maxBytes && file.size > maxBytes) {
          problems.push("“" + file.name + "” is " + humanSize(file.size) + "; each file may be at most " + humanSize(maxBytes) + ".");
        } else if (file.size === 0) {
          problems.push("“" + file.name + "” is empty.");
        }
      });
      message.textContent = problems.join(" ");
      message.hidden = problems.length === 0;
      input.classList.toggle("is-invalid", problems.length > 0);
      if (problems.length) {
        input.setAttribute("aria-describedby", message.id);
      } else {
        input.removeAttribute("aria-describedby");
      }
      input.setCustomValidity(problems.length ? problems.join(" ") : "");
      var again = document.getElementById("attach-again");
      if (again && input.files.length) { again.hidden = true; }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("ask-form");
    if (!form) { return; }
    watchRedFlags(form);
    watchAttachments(form);
  });
})();
