"""The SLA dashboard's "Likely to breach in the next hour" list (issue 14, "Breaches seen
coming"): what it lists, who sees which patient details, and its one-click reassign,
which still refuses doctors outside the question's specialty."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from tests.factories import QuestionFactory, UserFactory

pytestmark = pytest.mark.django_db

DASHBOARD = "/staff/sla/"
H = timedelta(hours=1)


@pytest.fixture(autouse=True)
def _sla_settings(settings):
    settings.SLA_ANSWER_HOURS = 4
    settings.SLA_WARN_FRACTION = 0.75


def staff_member(*codenames):
    user = UserFactory(is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="consultations", codename__in=codenames)
    )
    return user


@pytest.fixture
def queue(specialty, other_specialty, doctor, other_doctor, patient):
    """Dermatology: Dr. Derm switched on for the next 8 hours. Cardiology: nobody on duty."""
    now = timezone.now()
    doctor.on_duty_until = now + 8 * H
    doctor.save()
    return {
        # Due in 30 min, nobody of its specialty on duty: will breach within the hour.
        "uncovered": QuestionFactory(specialty=other_specialty, submitted_at=now - 3.5 * H, patient=patient),
        # Due in 30 min with a doctor free now: answered in time.
        "covered": QuestionFactory(specialty=specialty, submitted_at=now - 3.5 * H),
        # Will breach too, but not in the next hour (due in 3 h).
        "later": QuestionFactory(specialty=other_specialty, submitted_at=now - 1 * H),
    }


def likely_section(client) -> str:
    return client.get(DASHBOARD + "live/").json()["sections"]["forecast"]


def test_the_list_holds_only_what_will_breach_in_the_next_hour(client, queue):
    client.force_login(staff_member("view_sla_dashboard", "reassign_question", "view_medical_record"))
    response = client.get(DASHBOARD)
    assert [item.question.pk for item in response.context["likely"]] == [queue["uncovered"].pk]
    assert response.context["likely_count"] == 1
    html = likely_section(client)
    uncovered = queue["uncovered"].pk
    assert "Likely to breach in the next hour (1)" in html
    assert f'id="forecast-{uncovered}"' in html
    assert f'id="forecast-{queue["covered"].pk}"' not in html
    assert f'id="forecast-{queue["later"].pk}"' not in html
    assert "No doctor on duty this week" in html
    assert "nobody of this specialty on duty in the coming week" in html
    # One-click reassign, with ids of its own (the row is in the at-risk list too).
    assert f'id="forecast-reassign-{uncovered}"' in html
    assert f'action="/staff/sla/questions/{uncovered}/reassign/"' in html
    assert "Dr. Carl Cardio" in html


def test_staff_with_the_medical_record_permission_see_the_patient_code_and_the_record_link(client, queue, patient):
    client.force_login(staff_member("view_sla_dashboard", "view_medical_record"))
    html = likely_section(client)
    assert patient.patient_label in html
    assert f'href="/admin/consultations/question/{queue["uncovered"].pk}/change/"' in html
    assert "You may not reassign" in html
    assert patient.full_name not in html and queue["uncovered"].title not in html


def test_staff_without_it_see_the_question_number_and_the_reason_only(client, queue, patient):
    """Issue 11 item 2 holds for the new list: no patient, no record link, no text."""
    client.force_login(staff_member("view_sla_dashboard", "reassign_question"))
    for html in (likely_section(client), client.get(DASHBOARD).content.decode()):
        assert f"Question #{queue['uncovered'].pk}" in html
        assert patient.patient_label not in html
        assert "/admin/consultations/question/" not in html
        assert queue["uncovered"].title not in html and queue["uncovered"].description not in html


def test_reassign_from_the_list_refuses_a_doctor_outside_the_specialty_next_to_its_field(client, queue, doctor):
    client.force_login(staff_member("view_sla_dashboard", "reassign_question"))
    uncovered = queue["uncovered"]
    response = client.post(DASHBOARD + f"questions/{uncovered.pk}/reassign/", {"doctor": doctor.pk})
    assert response.status_code == 200  # the form again, its error next to the field
    html = response.content.decode()
    assert f'id="forecast-reassign-{uncovered.pk}-error">Choose a verified doctor of this question' in html
    assert f'<option value="{doctor.pk}" selected>' not in html
    uncovered.refresh_from_db()
    assert uncovered.claimed_by is None


def test_reassign_from_the_list_to_a_doctor_of_the_specialty_moves_it(client, queue, other_doctor):
    client.force_login(staff_member("view_sla_dashboard", "reassign_question"))
    uncovered = queue["uncovered"]
    response = client.post(DASHBOARD + f"questions/{uncovered.pk}/reassign/", {"doctor": other_doctor.pk})
    assert response.status_code == 302
    uncovered.refresh_from_db()
    assert uncovered.claimed_by == other_doctor


def test_an_empty_forecast_says_so(client, specialty):
    client.force_login(staff_member("view_sla_dashboard"))
    html = likely_section(client)
    assert "Likely to breach in the next hour (0)" in html and "None forecast right now." in html
