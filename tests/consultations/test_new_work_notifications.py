"""Doctors are told of new work (issue 14): who hears of a new question, a follow-up and
a reply to a request for information; a burst is batched; off duty hears nothing."""

from datetime import UTC, datetime, time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from consultations import cover_cache, duty, new_work, services, sweep
from consultations.models import DutyPeriod, Notification, Weekday
from tests.consultations.sweep_support import question_started
from tests.factories import DoctorFactory, QuestionFactory, UserFactory

pytestmark = pytest.mark.django_db

# A Monday, 10:02 UTC: inside the slot 10:00-10:15 with NEW_WORK_EMAIL_MINUTES = 15.
NOW = datetime(2026, 1, 5, 10, 2, tzinfo=UTC)
TITLE = "Zqxmarker lump under my arm"


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.NEW_WORK_EMAIL_MINUTES = 15
    settings.SITE_URL = "https://portal.example"


def on_duty(specialties, email, **fields):
    """A doctor switched on for the whole test day."""
    return DoctorFactory(
        user=UserFactory(email=email), specialties=specialties, on_duty_until=NOW + timedelta(days=1), **fields
    )


def ask(patient, specialty, now=NOW, title=TITLE):
    return services.submit_question(
        patient=patient,
        specialty=specialty,
        title=title,
        description="It appeared last week and is tender.",
        age=40,
        sex="female",
        now=now,
    )


def new_work_rows(kind=None):
    rows = Notification.objects.filter(dedupe_key__startswith="new_work:")
    return rows.filter(kind=kind) if kind else rows


def test_a_new_question_tells_the_on_duty_verified_doctors_of_its_specialty(specialty, other_specialty, patient):
    dana = on_duty([specialty], "dana@example.com")
    on_duty([specialty], "off@example.com", off_duty=True)
    on_duty([specialty], "unverified@example.com", is_verified=False)
    DoctorFactory(user=UserFactory(email="noschedule@example.com"), specialties=[specialty])
    on_duty([other_specialty], "cardio@example.com")

    question = ask(patient, specialty)

    rows = list(new_work_rows())
    assert [(row.to_email, row.kind, row.recipient_id) for row in rows] == [
        ("dana@example.com", "new_question", dana.user.pk)
    ]
    row = rows[0]
    assert row.subject == f"New question #{question.pk} in your queue"
    assert "Zqxmarker" not in row.subject and "Dermatology" not in row.subject
    assert "Zqxmarker" not in row.body  # doctors read the question in the workbench, not in their inbox
    change = reverse("doctor_admin:consultations_question_change", args=[question.pk])
    assert f"https://portal.example{change}" in row.body
    assert "https://portal.example/doctor/consultations/question/" in row.body


def test_a_burst_of_fifty_questions_is_one_email_per_doctor(specialty, patient):
    dana = on_duty([specialty], "dana@example.com")
    tom = on_duty([specialty], "tom@example.com")
    for second in range(50):
        ask(patient, specialty, now=NOW + timedelta(seconds=10 * second), title=f"Question {second}")
    assert sorted(new_work_rows().values_list("to_email", flat=True)) == ["dana@example.com", "tom@example.com"]
    assert {row.recipient_id for row in new_work_rows()} == {dana.user.pk, tom.user.pk}


def test_once_every_doctor_on_duty_has_the_slots_email_a_new_question_reads_no_doctor(specialty, patient):
    """The usual case while doctors are on duty: after a slot's first question, the next
    ones only check that each doctor's e-mail is there (one count), not read the doctors,
    their accounts and periods again. A doctor who comes on duty meanwhile is still told."""
    on_duty([specialty], "dana@example.com")
    ask(patient, specialty)

    def doctor_reads(now):
        with CaptureQueriesContext(connection) as captured:
            ask(patient, specialty, now=now, title="Another question")
        statements = [query["sql"] for query in captured.captured_queries]
        return [sql for sql in statements if 'FROM "consultations_doctorprofile"' in sql]

    assert doctor_reads(NOW + timedelta(seconds=30)) == []
    on_duty([specialty], "tom@example.com")
    assert doctor_reads(NOW + timedelta(seconds=60)) != []
    assert sorted(new_work_rows().values_list("to_email", flat=True)) == ["dana@example.com", "tom@example.com"]
    assert doctor_reads(NOW + timedelta(seconds=90)) == []
    assert new_work_rows().count() == 2


def test_a_doctor_whose_duty_starts_within_the_slot_is_told_of_the_next_question(specialty, patient):
    """No write marks the moment a scheduled period starts: the kept roster ends at the
    next duty boundary, so the next question reads the doctors again and finds Tom."""
    on_duty([specialty], "dana@example.com")
    tom = DoctorFactory(user=UserFactory(email="tom@example.com", time_zone="UTC"), specialties=[specialty])
    DutyPeriod.objects.create(doctor=tom, weekday=Weekday.MONDAY, start=time(10, 5), end=time(18, 0))
    ask(patient, specialty)  # 10:02: before Tom's period
    assert list(new_work_rows().values_list("to_email", flat=True)) == ["dana@example.com"]
    ask(patient, specialty, now=NOW + timedelta(seconds=30), title="Half a minute later")
    assert new_work_rows().count() == 1
    ask(patient, specialty, now=NOW + timedelta(minutes=4), title="At 10:06")
    assert sorted(new_work_rows().values_list("to_email", flat=True)) == ["dana@example.com", "tom@example.com"]


def test_the_kept_roster_names_the_doctors_on_duty_as_the_duty_rule_does(specialty, other_specialty):
    dana = on_duty([specialty], "dana@example.com")
    tom = on_duty([specialty, other_specialty], "tom@example.com")
    on_duty([specialty], "off@example.com", off_duty=True)
    DoctorFactory(user=UserFactory(email="noschedule@example.com"), specialties=[specialty])
    for chosen in (specialty, other_specialty):
        expected = tuple(doctor.pk for doctor in duty.on_duty_list(chosen.pk, NOW))
        assert cover_cache.doctors_on_duty_now(chosen.pk, NOW) == expected
    assert cover_cache.doctors_on_duty_now(specialty.pk, NOW) == tuple(sorted((dana.pk, tom.pk)))
    assert cover_cache.doctors_on_duty_now(other_specialty.pk, NOW + timedelta(days=2)) == ()


def test_a_burst_across_the_end_of_a_quiet_period_is_two_emails_per_doctor(specialty, patient):
    on_duty([specialty], "dana@example.com")
    start = datetime(2026, 1, 5, 10, 10, tzinfo=UTC)  # 50 questions, 10:10 to 10:18:10
    for second in range(50):
        ask(patient, specialty, now=start + timedelta(seconds=10 * second), title=f"Question {second}")
    assert new_work_rows().filter(to_email="dana@example.com").count() == 2


def test_the_next_quiet_period_emails_again(specialty, patient):
    on_duty([specialty], "dana@example.com")
    ask(patient, specialty)
    ask(patient, specialty, now=NOW + timedelta(minutes=15))
    assert new_work_rows().count() == 2


def test_a_follow_up_tells_the_doctor_who_answered_and_nobody_else(specialty, patient):
    dana = on_duty([specialty], "dana@example.com")
    on_duty([specialty], "tom@example.com")
    question = QuestionFactory(patient=patient, specialty=specialty, submitted_at=NOW - timedelta(hours=2))
    services.post_answer(question, dana, "Probably a reactive lymph node.", now=NOW - timedelta(hours=1))
    Notification.objects.all().delete()

    services.post_follow_up(question, patient, "It is bigger today.", now=NOW)

    rows = list(new_work_rows())
    assert [(row.to_email, row.kind) for row in rows] == [("dana@example.com", "follow_up_received")]
    assert rows[0].subject == f"A patient wrote a follow-up on question #{question.pk}"


def test_a_reply_to_a_request_for_information_tells_the_doctor_who_asked(specialty, patient):
    dana = on_duty([specialty], "dana@example.com")
    on_duty([specialty], "tom@example.com")
    question = QuestionFactory(patient=patient, specialty=specialty, submitted_at=NOW - timedelta(hours=1))
    services.request_information(question, dana, "How big is it?", now=NOW - timedelta(minutes=30))
    Notification.objects.all().delete()

    services.post_follow_up(question, patient, "About 2 cm.", now=NOW)

    rows = list(new_work_rows())
    assert [(row.to_email, row.kind) for row in rows] == [("dana@example.com", "info_response_received")]
    assert rows[0].subject == f"A patient replied to your request on question #{question.pk}"


def test_an_off_duty_doctor_hears_of_no_follow_up(specialty, patient):
    dana = on_duty([specialty], "dana@example.com")
    question = QuestionFactory(patient=patient, specialty=specialty, submitted_at=NOW - timedelta(hours=2))
    services.post_answer(question, dana, "Probably a reactive lymph node.", now=NOW - timedelta(hours=1))
    dana.off_duty = True
    dana.save()

    services.post_follow_up(question, patient, "It is bigger today.", now=NOW)

    assert not new_work_rows().exists()


def test_a_patient_adding_to_a_waiting_question_is_no_new_work(specialty, patient):
    on_duty([specialty], "dana@example.com")
    question = ask(patient, specialty)
    Notification.objects.all().delete()
    services.post_follow_up(question, patient, "I forgot: it itches.", now=NOW + timedelta(minutes=1))
    assert not new_work_rows().exists()


def test_the_quiet_period_slots_are_fixed_in_time():
    assert new_work.slot_start(datetime(2026, 1, 5, 10, 14, 59, tzinfo=UTC)) == datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    assert new_work.slot_start(datetime(2026, 1, 5, 10, 15, tzinfo=UTC)) == datetime(2026, 1, 5, 10, 15, tzinfo=UTC)


def test_off_duty_never_stops_an_escalation_addressed_to_the_doctor(specialty, patient):
    """Off duty silences new-work e-mails only: the sweep still warns the doctor holding the question."""
    dana = on_duty([specialty], "dana@example.com", off_duty=True)
    question = question_started(NOW - timedelta(hours=3), specialty, claimed_by=dana)
    sweep.run_sweep(now=NOW)
    assert list(
        Notification.objects.filter(question=question, kind="sla_at_risk").values_list("to_email", flat=True)
    ) == ["dana@example.com"]
