"""In a real browser: the patient reads the doctor's answer, rates it, asks a follow-up
that returns to the same doctor with a running countdown, and closes the question."""

import re

import pytest

from consultations import services
from consultations.models import Question, QuestionStatus
from tests.factories import PASSWORD, DoctorFactory, QuestionFactory, SpecialtyFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_patient_reads_rates_follows_up_and_closes(browser_page, log_in):
    page = browser_page
    dermatology = SpecialtyFactory(name="Dermatology", slug="dermatology")
    doctor = DoctorFactory(
        display_name="Dr. Dana Derm", qualifications="MD, specialist in dermatology", specialties=[dermatology]
    )
    patient = UserFactory(email="paula@example.com", time_zone="Europe/Paris")
    question = QuestionFactory(patient=patient, specialty=dermatology, title="Rash after a new soap", is_urgent=False)
    services.post_answer(question, doctor, "This looks like contact dermatitis. Stop the new soap for two weeks.")

    log_in(page, "paula@example.com", PASSWORD)
    page.goto(f"/questions/{question.pk}/")
    answer = page.locator("article.reply-answer")
    assert "contact dermatitis" in answer.inner_text()
    assert "MD, specialist in dermatology" in answer.inner_text()
    assert answer.get_by_role("link", name="Dr. Dana Derm").get_attribute("href") == f"/doctors/{doctor.slug}/"
    # Issue 15: the badge says "Answered"; no clock line repeats it.
    assert page.locator(".status-badge").inner_text() == "Answered"
    assert page.locator("[data-countdown]").count() == 0

    page.get_by_label("4", exact=True).check()
    page.get_by_label("Comment (optional)").fill("Clear, thank you.")
    page.get_by_role("button", name="Save rating").click()
    page.get_by_text("Thank you for rating the answer.").wait_for()
    question.refresh_from_db()
    assert (question.rating, question.rating_comment) == (4, "Clear, thank you.")

    page.get_by_label("Your message").fill("It spread to my neck today. Should I worry?")
    page.get_by_role("button", name="Send", exact=True).click()
    page.get_by_text("Your message was sent to the doctor.").wait_for()
    question.refresh_from_db()
    assert question.status == QuestionStatus.OPEN
    assert question.claimed_by == doctor
    assert re.fullmatch(r"answer due in (3 h \d+ min|4 h 0 min)", page.locator("[data-countdown]").inner_text())

    # Closing asks for confirmation first (site.js); dismissing keeps the question open.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Close the question").click()
    assert Question.objects.get(pk=question.pk).status == QuestionStatus.OPEN
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Close the question").click()
    page.get_by_text("Your question is closed.").wait_for()
    assert Question.objects.get(pk=question.pk).status == QuestionStatus.CLOSED
    assert page.get_by_label("Your message").count() == 0
    assert page.console_errors == []
