"""In a real browser, on a phone and a laptop (issue 15 acceptance, "question first"):
an anonymous visitor types the question, signs up, finishes through the e-mailed
link, finds the question kept on the ask form, adds what was missing and sends it.
Screenshots of every step go to var/screenshots/ (not committed)."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail

from consultations.models import Question, QuestionDraft
from tests.browser.conftest import BROWSER_TIME_ZONE
from tests.factories import SpecialtyFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-Horse-battery-77"
TITLE = "Ring-shaped rash after a forest walk"
DESCRIPTION = (
    "A red ring, about 5 cm wide, appeared on my calf three days after a walk in the forest. It does not itch."
)
SIZES = {"phone": (390, 844), "laptop": (1280, 800)}
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots" / "question_first"


def fits_the_width(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def snap(page, size: str, step: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{size}-{step}.png"), full_page=True)
    assert fits_the_width(page), f"{step} is wider than the {size} screen"


@pytest.fixture(params=list(SIZES))
def sized_page(request, chromium, live_server):
    width, height = SIZES[request.param]
    context = chromium.new_context(
        base_url=live_server.url,
        timezone_id=BROWSER_TIME_ZONE,
        locale="en-GB",
        viewport={"width": width, "height": height},
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda message: message.type == "error" and page.console_errors.append(message.text))
    page.on("pageerror", lambda error: page.console_errors.append(str(error)))
    yield request.param, page
    context.close()


def test_a_visitor_asks_first_signs_up_and_sends_the_kept_question(sized_page):
    size, page = sized_page
    SpecialtyFactory(name="General Medicine", slug="general-medicine")
    dermatology = SpecialtyFactory(name="Dermatology", slug="dermatology")

    # From the home page, straight to the question: no login wall.
    page.goto("/")
    page.get_by_role("link", name="Ask a doctor now").click()
    page.wait_for_url(re.compile(r"/questions/ask/"))
    page.get_by_label("Specialty").select_option(str(dermatology.pk))
    page.get_by_label("Title").fill(TITLE)
    page.get_by_label("Description").fill(DESCRIPTION)
    assert page.get_by_label("Age").count() == 0  # asked later, once signed in
    snap(page, size, "1-ask-first")
    page.get_by_role("button", name="Continue").click()

    # The sign-up page says why the visitor is there; no clinical text in the URL.
    page.wait_for_url(re.compile(r"/accounts/signup/\?next="))
    assert "rash" not in page.url.lower()
    assert page.locator("#question-waiting").is_visible()
    assert "your question is saved" in page.locator("#question-waiting").inner_text()
    snap(page, size, "2-sign-up")
    page.get_by_label("E-mail address").fill("nora@example.com")
    page.get_by_label("Full name").fill("Nora Newpatient")
    page.locator("#id_password1").fill(PASSWORD)
    page.locator("#id_password2").fill(PASSWORD)
    page.get_by_label("Age").fill("29")
    page.get_by_label("Sex").select_option("female")
    page.get_by_label(re.compile("I accept the")).check()
    page.get_by_role("button", name="Sign up").click()

    page.wait_for_url(re.compile(r"/accounts/signup/sent/$"))
    assert page.locator("#question-waiting").is_visible()
    snap(page, size, "3-check-your-e-mail")
    assert QuestionDraft.objects.get().title == TITLE
    assert Question.objects.count() == 0

    # The e-mailed link, opened in the same browser.
    (message,) = mail.outbox
    assert "rash" not in message.subject.lower() and "rash" not in message.body.lower()
    link = re.search(r"https?://[^/\s]+(/accounts/signup/finish/\S+/)", message.body).group(1)
    page.goto(link)
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Finish and sign in").click()

    # The ask form, with the question kept; only what is missing is left to add.
    page.wait_for_url(re.compile(r"/questions/ask/$"))
    assert page.locator("#draft-kept").is_visible()
    assert page.get_by_label("Specialty").input_value() == str(dermatology.pk)
    assert page.get_by_label("Title").input_value() == TITLE
    assert page.get_by_label("Description").input_value() == DESCRIPTION
    assert page.get_by_label("Age").input_value() == "29"
    assert Question.objects.count() == 0  # nothing is sent before the patient confirms
    page.get_by_label("Current medication (optional)").fill("None")
    page.get_by_label(re.compile("I have read and agree")).check()
    snap(page, size, "4-ask-form-prefilled")
    page.get_by_role("button", name="Send my question").click()

    page.wait_for_url(re.compile(r"/questions/\d+/submitted/$"))
    question = Question.objects.get()
    assert (question.title, question.description, question.specialty, question.age) == (
        TITLE,
        DESCRIPTION,
        dermatology,
        29,
    )
    assert question.patient.email == "nora@example.com"
    assert QuestionDraft.objects.count() == 0
    snap(page, size, "5-submitted")
    assert page.console_errors == []
