"""The breached / at-risk lists and the likely-to-breach list show a question in the same row
(consultations/staff/_question_row.html): the same question cell, and every cell labelled for
the phone layout, where dashboard.css stacks each row into a card of "Label: value" lines."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from tests.factories import QuestionFactory, UserFactory

pytestmark = pytest.mark.django_db

H = timedelta(hours=1)


@pytest.fixture
def staff_client(client):
    user = UserFactory(is_staff=True)
    codenames = ["view_sla_dashboard", "reassign_question", "view_medical_record"]
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="consultations", codename__in=codenames)
    )
    client.force_login(user)
    return client


def row(html: str, row_id: str) -> str:
    match = re.search(rf'<tr id="{row_id}">(.*?)</tr>', html, re.S)
    assert match, f"no row {row_id}"
    return match.group(1)


def question_cell(row_html: str) -> str:
    return " ".join(re.search(r'<th scope="row".*?</th>', row_html, re.S).group(0).split())


def labelled_cells(row_html: str) -> dict[str, str]:
    return {
        label: " ".join(re.sub(r"<[^>]+>", " ", cell).split())
        for label, cell in re.findall(r'<td[^>]*data-label="([^"]+)"[^>]*>(.*?)</td>', row_html, re.S)
    }


def test_a_question_at_risk_and_likely_to_breach_has_the_same_row_in_both_lists(
    staff_client, other_specialty, other_doctor, patient
):
    # Urgent and due in 6 minutes (at risk), claimed, and nobody of Cardiology on duty (likely to breach).
    question = QuestionFactory(
        specialty=other_specialty,
        patient=patient,
        is_urgent=True,
        submitted_at=timezone.now() - 0.9 * H,
        claimed_by=other_doctor,
        claimed_at=timezone.now() - 0.25 * H,
    )
    sections = staff_client.get("/staff/sla/live/").json()["sections"]
    attention = row(sections["attention"], f"attention-{question.pk}")
    forecast = row(sections["forecast"], f"forecast-{question.pk}")

    assert question_cell(attention) == question_cell(forecast)
    assert "Urgent" in question_cell(forecast)
    shared = {"Specialty": "Cardiology", "Patient": f"Patient #{patient.patient_code}", "Claimed by": "Dr. Carl Cardio"}
    assert labelled_cells(attention).items() >= shared.items()
    assert labelled_cells(forecast).items() >= shared.items()
    # Each list keeps its own cells, labelled too.
    assert labelled_cells(attention).keys() == {"Specialty", "Patient", "Due", "Time left", "Claimed by"}
    assert labelled_cells(forecast).keys() == {"Specialty", "Patient", "Due", "Expected answer", "Why", "Claimed by"}
    # And its own reassign field ids: the same question is in both lists of one page.
    assert f'id="reassign-{question.pk}"' in attention
    assert f'id="forecast-reassign-{question.pk}"' in forecast
