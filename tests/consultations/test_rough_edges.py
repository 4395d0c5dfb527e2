"""Issue 15, rough edges on the patient's question page: the status said once, and one
convention for invalid forms (200 with the form again; 429 only for rate limits)."""

import re

import pytest
from django.urls import reverse

from consultations import services
from tests.factories import QuestionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def answered(patient, specialty, doctor):
    question = QuestionFactory(patient=patient, specialty=specialty, title="Rash after a new soap")
    services.post_answer(question, doctor, "This looks like contact dermatitis.")
    question.refresh_from_db()
    return question


def header_of(html: str) -> str:
    return html.split('<h1 class="h2 question-title">', 1)[1].split('<div class="row g-4">', 1)[0]


def words_of(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


def test_an_answered_question_says_answered_once(client, patient, answered):
    client.force_login(patient)
    header = header_of(client.get(answered.get_absolute_url()).content.decode())
    assert words_of(header).lower().count("answered") == 1, header
    assert "data-countdown" not in header


def test_an_open_question_keeps_its_countdown(client, patient, specialty):
    question = QuestionFactory(patient=patient, specialty=specialty)
    client.force_login(patient)
    header = header_of(client.get(question.get_absolute_url()).content.decode())
    assert "Waiting for a doctor" in header and "answer due in" in header


@pytest.mark.parametrize(
    ("view", "data", "error"),
    [
        ("consultations:rate", {"rating": "9", "comment": "typed comment"}, "typed comment"),
        ("consultations:follow_up", {"body": "  "}, "Write your message before sending it."),
    ],
)
def test_invalid_patient_forms_come_back_with_200(client, patient, answered, view, data, error):
    client.force_login(patient)
    response = client.post(reverse(view, args=[answered.pk]), data)
    assert response.status_code == 200
    assert error in response.content.decode()
