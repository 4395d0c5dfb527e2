"""What the patient sees of the guarantee: the exact time on the success page in their
own time zone, and the live countdown on My questions."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from consultations import services
from consultations.models import Notification, Question
from consultations.views import countdown_text, duration_text, patient_clock
from portal import times
from tests.factories import QuestionFactory

SUBMITTED = datetime(2026, 11, 25, 14, 42, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (9, "9 s"),
        (65, "1 min 05 s"),
        (3599, "59 min 59 s"),
        (3 * 3600 + 12 * 60 + 30, "3 h 12 min"),
        (26 * 3600, "1 d 2 h"),
    ],
)
def test_duration_text_is_short_and_readable(seconds, text):
    assert duration_text(seconds) == text


def test_countdown_says_due_in_or_overdue_by():
    assert countdown_text(timedelta(hours=3, minutes=12)) == "answer due in 3 h 12 min"
    assert countdown_text(timedelta(minutes=-25)) == "overdue by 25 min 00 s"


@pytest.mark.django_db
def test_patient_clock_states(patient, specialty, doctor):
    now = SUBMITTED + timedelta(hours=1)
    question = QuestionFactory(patient=patient, specialty=specialty, submitted_at=SUBMITTED, is_urgent=False)
    clock = patient_clock(question, now)
    assert (clock.state, clock.text) == ("running", "answer due in 3 h 0 min")
    assert clock.due_iso == "2026-11-25T18:42:00+00:00"
    assert patient_clock(question, SUBMITTED + timedelta(hours=5)).text == "overdue by 1 h 0 min"
    services.request_information(question, doctor, "How long has it itched?")
    question.refresh_from_db()
    assert patient_clock(question, now).state == "paused"
    services.post_answer(question, doctor, "Answer.")
    question.refresh_from_db()
    answered = patient_clock(question, now)
    # Not "answered" again next to the "Answered" badge: when the first answer came.
    assert answered.state == "answered"
    assert answered.text == times.format_time(question.first_answered_at, "j M, H:i")
    assert answered.text.endswith(" UTC") and "answered" not in answered.text
    services.close_question(question)
    question.refresh_from_db()
    assert (patient_clock(question, now).state, patient_clock(question, now).text) == ("closed", answered.text)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("time_zone", "shown"),
    [
        ("Europe/Paris", "Wednesday 25 November 2026, 19:42 CET"),
        ("America/New_York", "Wednesday 25 November 2026, 13:42 EST"),
        ("Asia/Kolkata", "Thursday 26 November 2026, 00:12 IST"),
    ],
)
def test_success_page_shows_the_guaranteed_time_in_the_patients_time_zone(client, patient, specialty, time_zone, shown):
    patient.time_zone = time_zone
    patient.save()
    question = services.submit_question(
        patient=patient,
        specialty=specialty,
        title="Sore knee after running",
        description="My right knee hurts on stairs since a 10 km run.",
        age=34,
        sex="female",
        now=SUBMITTED,
    )
    client.force_login(patient)
    with time_machine.travel(SUBMITTED + timedelta(minutes=1)):
        html = client.get(reverse("consultations:question_submitted", args=[question.pk])).content.decode()
    assert shown in html
    confirmation = Notification.objects.get(question=question, kind="question_received")
    assert f"A doctor will answer by {shown}." in confirmation.body
    assert reverse("consultations:question_detail", args=[question.pk]) in confirmation.body
    assert "We sent a confirmation e-mail to <strong>patient@example.com</strong>" in html
    assert "within 4 hours" in html
    assert "Call your local emergency number now" not in html.split('id="red-flag-notice"')[0]
    assert 'id="red-flag-notice" hidden' in html


@pytest.mark.django_db
def test_success_page_of_an_urgent_question_repeats_the_emergency_notice(client, patient, specialty):
    question = services.submit_question(
        patient=patient,
        specialty=specialty,
        title="Father has slurred speech",
        description="Since 20 minutes his face is drooping on one side.",
        age=71,
        sex="male",
    )
    client.force_login(patient)
    html = client.get(reverse("consultations:question_submitted", args=[question.pk])).content.decode()
    assert 'id="red-flag-notice" hidden' not in html
    assert "Call your local emergency number now" in html
    assert "within 1 hour of sending, shortened because your question was marked urgent" in html
    confirmation = Notification.objects.get(question=question)
    assert "call your local emergency number now" in confirmation.body
    assert "IMPORTANT" in confirmation.body


@pytest.mark.django_db
def test_my_questions_lists_status_specialty_and_a_live_countdown(client, patient, specialty, doctor):
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    open_question = QuestionFactory(
        patient=patient,
        specialty=specialty,
        title="Open one",
        submitted_at=now - timedelta(minutes=48),
        is_urgent=False,
    )
    late_question = QuestionFactory(
        patient=patient, specialty=specialty, title="Late one", submitted_at=now - timedelta(hours=5), is_urgent=False
    )
    answered = QuestionFactory(patient=patient, specialty=specialty, title="Answered one", is_urgent=False)
    services.post_answer(answered, doctor, "All fine.", now=now)
    client.force_login(patient)
    with time_machine.travel(now, tick=False):
        html = client.get(reverse("consultations:my_questions")).content.decode()
    assert "Dermatology" in html
    assert "Waiting for a doctor" in html and "Answered" in html
    assert f'data-due="{open_question.clock_due_at.isoformat()}"' in html
    assert "answer due in 3 h 12 min" in html
    assert f'data-due="{late_question.clock_due_at.isoformat()}"' in html
    assert "overdue by 1 h 0 min" in html
    assert 'data-state="answered"' in html
    assert "portal/countdown.js" in html


@pytest.mark.django_db
def test_my_questions_is_paginated_newest_first(client, patient, specialty):
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for n in range(23):
        QuestionFactory(
            patient=patient,
            specialty=specialty,
            title=f"Question {n:02d}",
            submitted_at=start + timedelta(hours=n),
            is_urgent=False,
        )
    client.force_login(patient)
    first = client.get(reverse("consultations:my_questions")).content.decode()
    second = client.get(reverse("consultations:my_questions") + "?page=2").content.decode()
    assert "Question 22" in first and "Question 03" in first and "Question 02" not in first
    assert "Question 02" in second and "Question 00" in second and "Question 22" not in second
    assert "Page 1 of 2" in first


@pytest.mark.django_db
def test_my_questions_costs_the_same_queries_for_5_and_20_rows(client, patient, specialty, other_specialty):
    client.force_login(patient)

    def count_queries():
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("consultations:my_questions")).status_code == 200
        return len(queries)

    for n in range(5):
        QuestionFactory(patient=patient, specialty=specialty if n % 2 else other_specialty, is_urgent=False)
    # The session's idle end is written at most once a minute: the first request pays for it.
    count_queries()
    five = count_queries()
    for n in range(15):
        QuestionFactory(patient=patient, specialty=specialty if n % 2 else other_specialty, is_urgent=False)
    assert Question.objects.count() == 20
    assert count_queries() == five


@pytest.mark.django_db
def test_empty_list_invites_to_ask(client, patient):
    client.force_login(patient)
    html = client.get(reverse("consultations:my_questions")).content.decode()
    assert "You have not asked a question yet." in html
