"""The guarantee clock through a consultation: pausing for information, resuming, follow-ups."""

from datetime import timedelta

import pytest
from django.utils import timezone

from consultations import services, sla, sweep
from consultations.models import Escalation, QuestionStatus
from tests.consultations.sweep_support import question_started, sla_staff_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def t0():
    return timezone.now() - timedelta(days=2)


def test_asking_for_information_pauses_the_clock(specialty, doctor, t0):
    question = question_started(t0, specialty)

    services.request_information(question, doctor, "Is the rash raised?", now=t0 + timedelta(hours=1))

    question.refresh_from_db()
    assert question.status == QuestionStatus.INFO_REQUESTED
    assert question.clock_paused_at == t0 + timedelta(hours=1)
    assert question.claimed_by == doctor
    assert sla.sla_state(question, t0 + timedelta(hours=30)) == sla.PAUSED


def test_paused_question_is_not_escalated_however_long_it_waits(specialty, doctor, t0):
    sla_staff_member()
    question = question_started(t0, specialty)
    services.request_information(question, doctor, "Is the rash raised?", now=t0 + timedelta(hours=1))

    result = sweep.run_sweep(now=t0 + timedelta(days=1))

    assert (result.warned, result.breached, result.lead_escalated) == (0, 0, 0)
    assert not Escalation.objects.filter(question=question).exists()


def test_patient_reply_resumes_the_clock_and_moves_every_due_time_by_the_pause(specialty, doctor, t0):
    question = question_started(t0, specialty)
    original = sla.new_clock(t0)
    services.request_information(question, doctor, "Is the rash raised?", now=t0 + timedelta(hours=1))

    services.post_follow_up(question, question.patient, "Yes, slightly.", now=t0 + timedelta(hours=3, minutes=30))

    question.refresh_from_db()
    paused_for = timedelta(hours=2, minutes=30)
    assert question.status == QuestionStatus.OPEN
    assert question.clock_paused_at is None
    assert question.clock_due_at == original.due_at + paused_for
    assert question.clock_warn_at == original.warn_at + paused_for
    assert question.due_at == original.due_at + paused_for  # the first answer's guarantee moves too
    assert question.is_follow_up is False


def test_resumed_clock_escalates_at_its_shifted_times(specialty, doctor, t0):
    sla_staff_member()
    question = question_started(t0, specialty)
    services.request_information(question, doctor, "Photos, please.", now=t0 + timedelta(hours=1))
    services.post_follow_up(question, question.patient, "Attached.", now=t0 + timedelta(hours=2))
    question.refresh_from_db()
    shifted_due = t0 + timedelta(hours=5)

    assert sweep.run_sweep(now=shifted_due).breached == 0
    result = sweep.run_sweep(now=shifted_due + timedelta(microseconds=1))

    assert result.breached == 1
    assert Escalation.objects.get(question=question, level="breached").clock_due_at == shifted_due


def test_two_pauses_add_up(specialty, doctor, t0):
    question = question_started(t0, specialty)
    for start, end in [(1, 2), (3, 6)]:
        services.request_information(question, doctor, "More, please.", now=t0 + timedelta(hours=start))
        services.post_follow_up(question, question.patient, "Here.", now=t0 + timedelta(hours=end))

    question.refresh_from_db()
    assert question.clock_due_at == t0 + timedelta(hours=4 + 1 + 3)


def test_answer_given_while_paused_does_not_count_the_wait_against_the_guarantee(specialty, doctor, t0):
    question = question_started(t0, specialty)
    services.request_information(question, doctor, "Any fever?", now=t0 + timedelta(hours=3))

    # The doctor answers anyway six hours later, without the patient's reply.
    services.post_answer(question, doctor, "Either way, this is harmless.", now=t0 + timedelta(hours=9))

    question.refresh_from_db()
    assert question.due_at == t0 + timedelta(hours=10)
    assert question.clock_due_at is None
    assert sla.sla_state(question, t0 + timedelta(days=1)) == sla.MET


def test_answer_stops_the_clock_and_records_met_or_missed(specialty, doctor, t0):
    on_time = question_started(t0, specialty)
    late = question_started(t0, specialty)

    services.post_answer(on_time, doctor, "Answer.", now=t0 + timedelta(hours=4))
    services.post_answer(late, doctor, "Answer.", now=t0 + timedelta(hours=4, microseconds=1))

    for question in (on_time, late):
        question.refresh_from_db()
        assert (question.status, question.clock_due_at, question.clock_warn_at) == (QuestionStatus.ANSWERED, None, None)
    now = t0 + timedelta(days=1)
    assert (sla.sla_state(on_time, now), sla.sla_state(late, now)) == (sla.MET, sla.MISSED)


def test_follow_up_after_an_answer_starts_a_fresh_clock_with_the_answering_doctor(specialty, doctor, t0):
    question = question_started(t0, specialty, warned_at=t0 + timedelta(hours=3), is_urgent=True)
    services.post_answer(question, doctor, "Answer.", now=t0 + timedelta(minutes=50))
    follow_up_at = t0 + timedelta(hours=20)

    services.post_follow_up(question, question.patient, "It spread to my arm.", now=follow_up_at)

    question.refresh_from_db()
    clock = sla.follow_up_clock(follow_up_at, is_urgent=True)
    assert question.status == QuestionStatus.OPEN
    assert question.is_follow_up is True
    assert question.claimed_by == doctor
    assert (question.clock_started_at, question.clock_warn_at, question.clock_due_at) == (
        clock.started_at,
        clock.warn_at,
        clock.due_at,
    )
    assert (question.warned_at, question.breached_at, question.lead_escalated_at) == (None, None, None)
    assert question.due_at == t0 + timedelta(hours=1)  # the first answer's guarantee is history


def test_follow_up_clock_pauses_and_resumes_like_the_first(specialty, doctor, t0):
    question = question_started(t0, specialty)
    services.post_answer(question, doctor, "Answer.", now=t0 + timedelta(hours=1))
    services.post_follow_up(question, question.patient, "Still itchy.", now=t0 + timedelta(hours=10))
    services.request_information(question, doctor, "Which cream?", now=t0 + timedelta(hours=11))
    services.post_follow_up(question, question.patient, "The blue one.", now=t0 + timedelta(hours=15))

    question.refresh_from_db()
    assert question.clock_due_at == t0 + timedelta(hours=10 + 4 + 4)
    assert question.due_at == t0 + timedelta(hours=4)  # first answer long given: unchanged


def test_information_asked_after_an_answer_pauses_nothing_and_the_reply_starts_a_follow_up_clock(specialty, doctor, t0):
    question = question_started(t0, specialty)
    services.post_answer(question, doctor, "Answer.", now=t0 + timedelta(hours=1))
    services.request_information(question, doctor, "How is it today?", now=t0 + timedelta(hours=24))
    question.refresh_from_db()
    assert (question.clock_due_at, question.clock_paused_at) == (None, None)

    services.post_follow_up(question, question.patient, "Better.", now=t0 + timedelta(hours=30))

    question.refresh_from_db()
    assert question.is_follow_up is True
    assert question.clock_due_at == t0 + timedelta(hours=34)


def test_patient_message_while_waiting_for_the_first_answer_does_not_move_the_clock(specialty, t0):
    question = question_started(t0, specialty)

    services.post_follow_up(
        question, question.patient, "I forgot to say: it itches at night.", now=t0 + timedelta(hours=1)
    )

    question.refresh_from_db()
    assert question.clock_due_at == t0 + timedelta(hours=4)
    assert question.is_follow_up is False


def test_closing_stops_the_clock(specialty, t0):
    sla_staff_member()
    question = question_started(t0, specialty)

    services.close_question(question, now=t0 + timedelta(hours=1))

    question.refresh_from_db()
    assert question.clock_due_at is None
    assert sweep.run_sweep(now=t0 + timedelta(days=1)).breached == 0
