"""In a real browser, the whole round trip: a patient asks; the doctor signs in to
the workbench, finds the question at the top of the queue, claims and answers it;
the patient reads the answer (and got the e-mail) and follows up; the question is
back in the same doctor's queue."""

import re

import pytest
from django.core import mail

from consultations.models import Notification, NotificationStatus, Question, QuestionStatus
from tests.browser.conftest import open_page
from tests.factories import PASSWORD, DoctorFactory, QuestionFactory, SpecialtyFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def doctor_page(chromium, live_server):
    """A second browser context: the doctor works at the same time as the patient."""
    page = open_page(chromium, live_server.url, width=1400)
    yield page
    page.context.close()


def queue_rows(page):
    return page.locator("#result_list tbody tr")


def test_patient_asks_doctor_claims_and_answers_patient_follows_up(browser_page, doctor_page, log_in):
    dermatology = SpecialtyFactory(name="Dermatology", slug="dermatology")
    cardiology = SpecialtyFactory(name="Cardiology", slug="cardiology")
    doctor = DoctorFactory(
        user=UserFactory(email="dana.derm@example.com"), display_name="Dr. Dana Derm", specialties=[dermatology]
    )
    patient = UserFactory(email="paula.quintana77@example.org", full_name="Paula Quintana-Marsh", age=41, sex="female")
    # Not in this doctor's queue: another specialty, and a question already answered.
    QuestionFactory(specialty=cardiology, title="Racing heart at night", is_urgent=False)
    QuestionFactory(
        specialty=dermatology, title="Old dandruff question", is_urgent=False, status=QuestionStatus.ANSWERED
    )

    # The patient asks.
    patient_page = browser_page
    log_in(patient_page, patient.email, PASSWORD)
    patient_page.goto("/questions/ask/?specialty=dermatology")
    patient_page.get_by_label("Title").fill("Scaly patch on my elbow")
    patient_page.get_by_label("Description").fill("A dry, scaly patch on my right elbow for a month. It itches.")
    patient_page.get_by_label(re.compile("I have read and agree")).check()
    patient_page.get_by_role("button", name="Send my question").click()
    patient_page.wait_for_url(re.compile(r"/questions/\d+/submitted/$"))
    question = Question.objects.get(title="Scaly patch on my elbow")

    # The doctor signs in to the workbench and finds it at the top of the queue.
    page = doctor_page
    page.goto("/doctor/")
    page.wait_for_url(re.compile(r"/doctor/login/"))
    page.locator("#id_username").fill("dana.derm@example.com")
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/doctor/consultations/question/$"))
    assert queue_rows(page).count() == 1
    top = queue_rows(page).first
    assert "Scaly patch on my elbow" in top.inner_text()
    assert "41 · Female" in top.inner_text()
    assert "On track" in top.inner_text()
    assert "Unclaimed" in top.inner_text()

    # Claims it from the list...
    top.get_by_role("button", name="Claim").click()
    page.get_by_text("You have claimed “Scaly patch on my elbow”.").wait_for()
    assert "You" in queue_rows(page).first.locator("td.field-claimed_by_column").inner_text()
    assert Question.objects.get(pk=question.pk).claimed_by == doctor

    # ...opens it: the patient is a code with age and sex, never a name.
    queue_rows(page).first.get_by_role("link", name="Scaly patch on my elbow").click()
    page.wait_for_url(re.compile(rf"/doctor/consultations/question/{question.pk}/change/$"))
    content = page.content()
    assert patient.patient_label in content
    assert "Paula" not in content and patient.email not in content
    assert "A dry, scaly patch on my right elbow" in content

    # ...and answers.
    page.get_by_label("Your reply to the patient").fill(
        "This looks like a patch of psoriasis. Use a thick emollient twice a day and book a visit if it spreads."
    )
    page.get_by_role("button", name="Send answer").click()
    page.get_by_text("Your answer to “Scaly patch on my elbow” was sent to the patient.").wait_for()
    assert queue_rows(page).count() == 0
    question.refresh_from_db()
    assert question.status == QuestionStatus.ANSWERED and question.answered_by == doctor

    # The patient got the e-mail (sent by Celery after commit) and reads the answer.
    sent = Notification.objects.get(question=question, kind="answer_posted")
    assert sent.status == NotificationStatus.SENT and sent.to_email == patient.email
    assert any(patient.email in message.to for message in mail.outbox if "Dr. Dana Derm" in message.body)
    patient_page.goto(f"/questions/{question.pk}/")
    answer = patient_page.locator("article.reply-answer")
    assert "patch of psoriasis" in answer.inner_text()
    assert "Dr. Dana Derm" in answer.inner_text()

    # The patient follows up...
    patient_page.get_by_label("Your message").fill("It is still itchy after a week. Can I use a steroid cream?")
    patient_page.get_by_role("button", name="Send", exact=True).click()
    patient_page.get_by_text("Your message was sent to the doctor.").wait_for()

    # ...and the question is back in the same doctor's queue, marked as a follow-up.
    page.goto("/doctor/consultations/question/?claim=mine")
    row = queue_rows(page).first
    assert "Scaly patch on my elbow" in row.inner_text()
    assert "Follow-up" in row.inner_text()
    assert "On track" in row.inner_text()
    question.refresh_from_db()
    assert question.status == QuestionStatus.OPEN and question.claimed_by == doctor and question.is_follow_up
    assert page.console_errors == []
    assert patient_page.console_errors == []
