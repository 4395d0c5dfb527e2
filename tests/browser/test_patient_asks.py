"""In a real browser: a new patient signs up, asks a question with a photo, sees the
guaranteed answer time in their own time zone, and finds the question under My questions."""

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.utils import timezone
from PIL import Image

from consultations.models import Question
from consultations.views import countdown_text
from portal.models import User
from tests.browser.conftest import BROWSER_TIME_ZONE
from tests.factories import SpecialtyFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-Horse-battery-77"


@pytest.fixture
def rash_photo(tmp_path):
    path = tmp_path / "forearm-rash.png"
    Image.new("RGB", (64, 48), (210, 80, 80)).save(path, format="PNG")
    return path


def test_patient_signs_up_asks_with_a_photo_and_finds_the_question(browser_page, rash_photo):
    page = browser_page
    SpecialtyFactory(name="General Medicine", slug="general-medicine")
    dermatology = SpecialtyFactory(name="Dermatology", slug="dermatology")

    # Sign up from the "ask" link of a specialty: the login wall keeps the destination.
    page.goto("/questions/ask/?specialty=dermatology")
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("E-mail address").fill("nora@example.com")
    page.get_by_label("Full name").fill("Nora Newpatient")
    page.locator("#id_password1").fill(PASSWORD)
    page.locator("#id_password2").fill(PASSWORD)
    page.get_by_label("Age").fill("29")
    page.get_by_label("Sex").select_option("female")
    assert page.get_by_label("Time zone").input_value() == BROWSER_TIME_ZONE
    page.get_by_label(re.compile("I accept the")).check()
    page.get_by_role("button", name="Sign up").click()

    # Finish with the e-mailed link and the chosen password (issue 11 item 12): then
    # straight to the ask form, specialty pre-selected, age and sex from the profile.
    page.wait_for_url(re.compile(r"/accounts/signup/sent/$"))
    link = re.search(r"https?://[^/\s]+(/accounts/signup/finish/\S+/)", mail.outbox[-1].body).group(1)
    page.goto(link)
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Finish and sign in").click()
    page.wait_for_url(re.compile(r"/questions/ask/\?specialty=dermatology$"))
    assert User.objects.get(email="nora@example.com").time_zone == BROWSER_TIME_ZONE
    assert page.get_by_label("Specialty").input_value() == str(dermatology.pk)
    assert page.get_by_label("Age").input_value() == "29"

    notice = page.locator("#red-flag-notice")
    assert notice.is_hidden()
    page.get_by_label("Title").fill("Itchy red patch on my forearm")
    description = page.get_by_label("Description")
    description.fill("A red, itchy patch appeared on my left forearm four days ago. Also some chest pain")
    notice.wait_for(state="visible")  # the live emergency notice reacts while typing
    description.fill("A red, itchy patch appeared on my left forearm four days ago. It is not painful.")
    notice.wait_for(state="hidden")
    page.get_by_label("Photos or documents (optional)").set_input_files(rash_photo)
    page.get_by_label(re.compile("I have read and agree")).check()
    page.get_by_role("button", name="Send my question").click()

    # The success page: the exact guaranteed time in the patient's time zone.
    page.wait_for_url(re.compile(r"/questions/\d+/submitted/$"))
    question = Question.objects.get()
    assert question.attachments.get().original_name == "forearm-rash.png"
    expected = timezone.localtime(question.due_at, timezone=ZoneInfo(BROWSER_TIME_ZONE))
    shown = page.locator("#guaranteed-time").inner_text()
    assert shown == expected.strftime("%A %-d %B %Y, %H:%M ") + expected.tzname()
    assert "confirmation e-mail" in page.content()

    # My questions: the question with its live countdown.
    page.get_by_role("link", name="My questions").first.click()
    row = page.locator("table.my-questions tbody tr", has_text="Itchy red patch on my forearm")
    assert "Dermatology" in row.inner_text()
    assert "Waiting for a doctor" in row.inner_text()
    countdown = row.locator("[data-countdown]")
    first = countdown.inner_text()
    assert re.fullmatch(r"answer due in (3 h \d+ min|4 h 0 min)", first), first
    page.wait_for_timeout(1200)
    assert re.fullmatch(r"answer due in (3 h \d+ min|4 h 0 min)", countdown.inner_text())
    # The live countdown speaks exactly like the server-rendered one.
    for seconds in (0, 9, 65, 3599, 3 * 3600 + 12 * 60, 26 * 3600, -25 * 60):
        in_browser = page.evaluate(f"window.portalCountdown.countdownText({seconds * 1000})")
        assert in_browser == countdown_text(timedelta(seconds=seconds))

    # The question page shows the photo as a thumbnail, through the checked views only.
    row.get_by_role("link", name="Itchy red patch on my forearm").click()
    thumbnail = page.get_by_role("img", name="Photo 1 of 1")
    assert thumbnail.get_attribute("src").startswith("/questions/attachments/")
    thumbnail.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle())
    download = page.get_by_role("link", name="Download photo 1 of 1")
    assert download.get_attribute("href").startswith("/questions/attachments/")
    assert page.console_errors == []
