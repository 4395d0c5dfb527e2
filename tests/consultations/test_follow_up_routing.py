"""A follow-up goes back to the doctor who answered last."""

import pytest

from consultations import services
from consultations.models import QuestionStatus
from tests.factories import DoctorFactory, QuestionFactory

pytestmark = pytest.mark.django_db


def test_follow_up_returns_to_the_doctor_who_answered_last(specialty, patient, doctor):
    colleague = DoctorFactory(specialties=[specialty])
    question = QuestionFactory(patient=patient, specialty=specialty)
    services.post_answer(question, doctor, "First answer.")
    services.post_follow_up(question, patient, "It is still itchy.")
    services.reassign_question(question.pk, colleague)
    question.refresh_from_db()
    services.post_answer(question, colleague, "Second answer.")
    services.post_follow_up(question, patient, "One more thing.")
    question.refresh_from_db()
    assert question.status == QuestionStatus.OPEN
    assert question.claimed_by == colleague
    assert question.answered_by == doctor  # the first answer is still credited to the first doctor


def test_staff_admin_front_page_links_the_sla_dashboard(client, staff):
    client.force_login(staff)
    html = client.get("/admin/").content.decode()
    assert 'href="/staff/sla/"' in html


def test_reassigned_doctor_is_told_by_email_without_the_patients_name(
    specialty, patient, doctor, mailoutbox, django_capture_on_commit_callbacks
):
    colleague = DoctorFactory(specialties=[specialty], user__email="colleague@example.com")
    question = QuestionFactory(patient=patient, specialty=specialty)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.reassign_question(question.pk, colleague) is True
    message = mailoutbox[-1]
    assert message.to == ["colleague@example.com"]
    assert f"#{question.pk}" in message.subject
    assert f"/doctor/consultations/question/{question.pk}/change/" in message.body
    assert patient.patient_label in message.body
    assert patient.full_name not in message.body and patient.email not in message.body


def test_reassigning_a_closed_question_changes_nothing_and_sends_nothing(specialty, patient, doctor, mailoutbox):
    question = QuestionFactory(patient=patient, specialty=specialty)
    services.close_question(question)
    assert services.reassign_question(question.pk, doctor) is False
    assert mailoutbox == []
