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
