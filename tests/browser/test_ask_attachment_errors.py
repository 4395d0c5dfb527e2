"""The attachment field in a real browser (issue 15, rough edges): once the patient picks
other files, the server's error about the earlier ones goes, and only what the browser's
own check says about the new files shows."""

import re

import pytest
from PIL import Image

from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_stale_server_error_leaves_when_new_files_are_chosen(browser_page, log_in, specialty, tmp_path):
    patient = UserFactory(email="nora@example.com", age=29, sex="female")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    photo = tmp_path / "rash.png"
    Image.new("RGB", (32, 24), (210, 80, 80)).save(photo, format="PNG")

    page = browser_page
    log_in(page, patient.email, PASSWORD)
    page.goto(f"/questions/ask/?specialty={specialty.slug}")
    page.get_by_label("Title").fill("Itchy red patch on my forearm")
    page.get_by_label("Description").fill("A red, itchy patch appeared on my left forearm four days ago.")
    files = page.get_by_label("Photos or documents (optional)")
    files.set_input_files(notes)
    page.get_by_label(re.compile("I have read and agree")).check()
    page.get_by_role("button", name="Send my question").click()
    page.wait_for_load_state()

    files = page.get_by_label("Photos or documents (optional)")
    server_error = page.locator("#attachments-group [id^='error_']")
    assert server_error.count() >= 1 and server_error.first.is_visible(), "the server refused the text file"
    assert "is-invalid" in files.get_attribute("class")

    files.set_input_files(empty)
    client_error = page.locator("#attachments-client-error")
    assert client_error.is_visible() and "is empty" in client_error.inner_text()
    assert server_error.count() == 0, "the old server error stayed next to the new one"
    assert files.get_attribute("aria-describedby") == "attachments-client-error"

    files.set_input_files(photo)
    assert client_error.is_hidden()
    assert "is-invalid" not in (files.get_attribute("class") or "")
    assert page.locator("#attachments-group .invalid-feedback:visible").count() == 0
    assert page.console_errors == []
