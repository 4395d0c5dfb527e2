// Doctors' workbench: a double click must not send the same reply twice.
// (Buttons are not disabled: a disabled submitter would drop its name/value
// from the form data, and the server needs to know which button was pressed.)
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (!form.matches || !form.matches(".reply-form")) {
    return;
  }
  if (form.dataset.sending === "yes") {
    event.preventDefault();
    return;
  }
  form.dataset.sending = "yes";
  form.classList.add("is-sending");
});
