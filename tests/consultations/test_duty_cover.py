"""Honest before submission (issue 14): the ask form says when nobody of the chosen
specialty will be on duty before the due time and offers what can answer in time;
staff get one alert per gap when questions wait and nobody is on duty."""

from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.urls import reverse

from consultations import duty
from consultations.models import DutyPeriod, Notification, Specialty, Weekday
from tests.factories import DoctorFactory, QuestionFactory, SpecialtyFactory, UserFactory

pytestmark = pytest.mark.django_db

# Monday 5 January 2026, 18:00 UTC: a question asked now is due at 22:00 UTC.
NOW = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)
ASK_URL = reverse("consultations:ask")


@pytest.fixture
def general(db, settings):
    settings.DUTY_FALLBACK_SPECIALTY = "general-medicine"
    settings.SLA_ANSWER_HOURS = 4
    return SpecialtyFactory(name="General Medicine", slug="general-medicine")


@pytest.fixture
def cardiology_tomorrow(other_specialty):
    """Cardiology's only doctor works Tuesdays 08:00-16:00 (UTC)."""
    doctor = DoctorFactory(user=UserFactory(email="cardio@example.com"), specialties=[other_specialty])
    DutyPeriod.objects.create(doctor=doctor, weekday=Weekday.TUESDAY, start=time(8), end=time(16))
    return doctor


@pytest.fixture
def general_on_duty(general):
    return DoctorFactory(
        user=UserFactory(email="gp@example.com"), specialties=[general], on_duty_until=NOW + timedelta(days=1)
    )


def test_specialties_without_cover_name_the_next_doctor_and_the_fallback(
    general, general_on_duty, other_specialty, cardiology_tomorrow
):
    [cover] = duty.specialties_without_cover(NOW)
    assert cover.specialty == other_specialty
    assert cover.due_at == NOW + timedelta(hours=4)
    assert cover.next_on_duty == datetime(2026, 1, 6, 8, 0, tzinfo=UTC)
    assert cover.fallback == general


def test_a_specialty_covered_late_in_the_window_is_covered(general, other_specialty, cardiology_tomorrow):
    # Tuesday 05:00: the 4-hour window reaches the 08:00 shift.
    assert other_specialty.pk not in {c.specialty.pk for c in duty.specialties_without_cover(NOW + timedelta(hours=11))}


def test_no_fallback_is_offered_when_it_has_nobody_either(general, other_specialty, cardiology_tomorrow):
    covers = {cover.specialty: cover for cover in duty.specialties_without_cover(NOW)}
    assert set(covers) == {general, other_specialty}
    assert covers[other_specialty].fallback is None


@time_machine.travel(NOW, tick=False)
def test_the_ask_form_warns_before_sending_and_offers_general_medicine(
    client, patient, general, general_on_duty, other_specialty, cardiology_tomorrow
):
    patient.time_zone = "UTC"
    patient.save()
    client.force_login(patient)
    html = client.get(ASK_URL, {"specialty": "cardiology"}).content.decode()
    note = html[html.index(f'data-duty-note-for="{other_specialty.pk}"') :]
    note = note[: note.index("</div>")]
    assert "hidden" not in note.split(">", 1)[0]  # shown: Cardiology is chosen
    assert (
        "No Cardiology doctor is on duty before your guaranteed answer time (Monday 5 January 2026, 22:00 UTC)" in note
    )
    assert "The next Cardiology doctor comes on duty on Tuesday 6 January 2026, 08:00 UTC" in note
    assert "General Medicine doctors are on duty and can answer in time" in note
    assert f'data-choose-specialty="{general.pk}"' in note
    # Covered specialties get no note; the script that follows the choice is a file (CSP).
    assert f'data-duty-note-for="{general.pk}"' not in html
    assert "portal/duty_notes.js" in html


@time_machine.travel(NOW, tick=False)
def test_the_note_is_in_the_page_but_hidden_until_its_specialty_is_chosen(
    client, patient, general, general_on_duty, other_specialty, cardiology_tomorrow
):
    client.force_login(patient)
    html = client.get(ASK_URL).content.decode()
    assert f'data-duty-note-for="{other_specialty.pk}" hidden' in html


@time_machine.travel(NOW, tick=False)
def test_nobody_scheduled_this_week_is_said_plainly(client, patient, general, general_on_duty, other_specialty):
    client.force_login(patient)
    html = client.get(ASK_URL, {"specialty": "cardiology"}).content.decode()
    assert "No Cardiology doctor is scheduled in the coming week" in html


@time_machine.travel(NOW, tick=False)
def test_a_covered_specialty_shows_no_note(client, patient, general, general_on_duty):
    client.force_login(patient)
    html = client.get(ASK_URL, {"specialty": "general-medicine"}).content.decode()
    assert "data-duty-note-for" not in html


# --- The staff alert ------------------------------------------------------------------


@pytest.fixture
def sla_staff(db, settings):
    settings.SLA_STAFF_GROUP = "SLA staff"
    group = Group.objects.create(name="SLA staff")
    users = [UserFactory(email="ops1@example.com", is_staff=True), UserFactory(email="ops2@example.com", is_staff=True)]
    for user in users:
        user.groups.add(group)
    return users


def alerts():
    return Notification.objects.filter(kind="no_one_on_duty")


def test_staff_are_alerted_once_per_gap(sla_staff, other_specialty, cardiology_tomorrow):
    QuestionFactory(specialty=other_specialty, submitted_at=NOW - timedelta(hours=1))
    assert duty.alert_uncovered_specialties(NOW) == [other_specialty.pk]
    assert duty.alert_uncovered_specialties(NOW + timedelta(minutes=5)) == []
    assert duty.alert_uncovered_specialties(NOW + timedelta(minutes=10)) == []
    assert sorted(alerts().values_list("to_email", flat=True)) == ["ops1@example.com", "ops2@example.com"]
    row = alerts().first()
    assert row.subject == "No doctor on duty for a specialty with questions waiting"
    assert "Cardiology" in row.body and "Tuesday 6 January 2026, 08:00" in row.body


def test_a_new_gap_after_cover_returned_alerts_again(sla_staff, other_specialty, cardiology_tomorrow):
    QuestionFactory(specialty=other_specialty, submitted_at=NOW - timedelta(hours=1))
    duty.alert_uncovered_specialties(NOW)
    duty.alert_uncovered_specialties(datetime(2026, 1, 6, 9, 0, tzinfo=UTC))  # Tuesday shift: covered
    assert Specialty.objects.get(pk=other_specialty.pk).uncovered_since is None
    assert duty.alert_uncovered_specialties(datetime(2026, 1, 6, 17, 0, tzinfo=UTC)) == [other_specialty.pk]
    assert alerts().count() == 4  # two gaps, two staff


def test_no_alert_while_someone_is_on_duty_or_nothing_waits(sla_staff, specialty, other_specialty, doctor):
    doctor.on_duty_until = NOW + timedelta(hours=1)
    doctor.save()
    QuestionFactory(specialty=specialty, submitted_at=NOW - timedelta(hours=1))
    assert duty.alert_uncovered_specialties(NOW) == []  # covered; Cardiology uncovered but empty
    assert not alerts().exists()


def test_the_check_is_a_periodic_task_outside_the_sweep():
    from portal.celery import app

    app.loader.import_default_modules()
    app.finalize()
    schedule = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert "consultations.tasks.alert_uncovered_specialties" in schedule


def test_questions_answered_and_new_ones_within_one_gap_alert_once(sla_staff, other_specialty, cardiology_tomorrow):
    first = QuestionFactory(specialty=other_specialty, submitted_at=NOW - timedelta(hours=1))
    duty.alert_uncovered_specialties(NOW)
    first.status = "answered"
    first.save()
    assert duty.alert_uncovered_specialties(NOW + timedelta(minutes=5)) == []  # nothing waits
    QuestionFactory(specialty=other_specialty, submitted_at=NOW + timedelta(minutes=8))
    assert duty.alert_uncovered_specialties(NOW + timedelta(minutes=10)) == []  # same gap: still no cover
    assert alerts().count() == 2  # one alert, two staff


# --- The notes' HTML, rendered once per set of notes (issue 17) ---------------------------


def _notes(specialty, fallback, *, due="Monday 5 January 2026, 22:00 UTC", shown=True):
    return [{"specialty": specialty, "due": due, "next_on_duty": "", "fallback": fallback, "shown": shown}]


def test_the_kept_notes_are_the_templates_html_and_rendered_once(general, other_specialty, monkeypatch):
    from django.template import loader

    from consultations import views

    notes = _notes(other_specialty, general)
    expected = loader.render_to_string("consultations/_duty_notes.html", {"duty_notes": notes})
    renders = []

    def render(*args, **kwargs):
        renders.append(args)
        return loader.render_to_string(*args, **kwargs)

    monkeypatch.setattr(views, "render_to_string", render)
    monkeypatch.setattr(views, "_notes_html", {})
    assert views.duty_notes_html(notes) == expected
    assert views.duty_notes_html(_notes(other_specialty, general)) == expected
    assert len(renders) == 1
    # Anything the HTML shows is part of the key: another minute, another open note.
    assert "23:00" in views.duty_notes_html(_notes(other_specialty, general, due="Monday 5 January 2026, 23:00 UTC"))
    hidden = views.duty_notes_html(_notes(other_specialty, general, shown=False))
    assert f'data-duty-note-for="{other_specialty.pk}" hidden' in hidden
    assert len(renders) == 3


def test_a_specialty_renamed_with_markup_is_escaped_and_not_served_its_old_note(general, other_specialty):
    from consultations import views

    before = views.duty_notes_html(_notes(other_specialty, general))
    other_specialty.name = "Cardiology <b>new</b>"
    after = views.duty_notes_html(_notes(other_specialty, general))
    assert after != before
    assert "Cardiology &lt;b&gt;new&lt;/b&gt;" in after and "<b>new</b>" not in after
