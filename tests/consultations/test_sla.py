"""The guarantee's arithmetic at its boundaries, without a database."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from consultations import levels, sla

US = timedelta(microseconds=1)
SUBMITTED = datetime(2030, 3, 4, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _sla_settings(settings):
    settings.SLA_ANSWER_HOURS = 4
    settings.SLA_URGENT_ANSWER_HOURS = 1
    settings.SLA_WARN_FRACTION = 0.75


def running_question(started_at=SUBMITTED, is_urgent=False, **extra):
    clock = sla.new_clock(started_at, is_urgent)
    fields = {
        "submitted_at": started_at,
        "due_at": clock.due_at,
        "first_answered_at": None,
        "clock_started_at": clock.started_at,
        "clock_warn_at": clock.warn_at,
        "clock_due_at": clock.due_at,
        "clock_paused_at": None,
        "warned_at": None,
        "breached_at": None,
        "lead_escalated_at": None,
        "is_urgent": is_urgent,
        "is_follow_up": False,
    }
    fields.update(extra)
    return SimpleNamespace(**fields)


def test_due_time_is_four_hours_after_submission():
    assert sla.due_at_for(SUBMITTED) == datetime(2030, 3, 4, 13, 0, tzinfo=UTC)


def test_warning_time_is_three_quarters_into_the_window():
    assert sla.new_clock(SUBMITTED).warn_at == datetime(2030, 3, 4, 12, 0, tzinfo=UTC)


def test_urgent_question_gets_the_shorter_window(settings):
    clock = sla.new_clock(SUBMITTED, is_urgent=True)
    assert clock.due_at == SUBMITTED + timedelta(hours=1)
    assert clock.warn_at == SUBMITTED + timedelta(minutes=45)
    settings.SLA_URGENT_ANSWER_HOURS = 0.5
    assert sla.due_at_for(SUBMITTED, is_urgent=True) == SUBMITTED + timedelta(minutes=30)


def test_window_follows_settings(settings):
    settings.SLA_ANSWER_HOURS = 2
    settings.SLA_WARN_FRACTION = 0.5
    clock = sla.new_clock(SUBMITTED)
    assert clock.due_at == SUBMITTED + timedelta(hours=2)
    assert clock.warn_at == SUBMITTED + timedelta(hours=1)


@pytest.mark.parametrize(
    ("offset", "expected"),
    [(-US, sla.ON_TRACK), (timedelta(0), sla.AT_RISK), (US, sla.AT_RISK)],
    ids=["1us-before-warning", "at-warning", "1us-after-warning"],
)
def test_state_around_the_warning_time(offset, expected):
    question = running_question()
    assert sla.sla_state(question, question.clock_warn_at + offset) == expected


@pytest.mark.parametrize(
    ("offset", "expected"),
    [(-US, sla.AT_RISK), (timedelta(0), sla.AT_RISK), (US, sla.BREACHED)],
    ids=["1us-before-due", "at-due", "1us-after-due"],
)
def test_state_around_the_due_time(offset, expected):
    question = running_question()
    assert sla.sla_state(question, question.clock_due_at + offset) == expected


@pytest.mark.parametrize(
    ("offset", "expected"),
    [(-US, sla.MET), (timedelta(0), sla.MET), (US, sla.MISSED)],
    ids=["answered-1us-early", "answered-at-due", "answered-1us-late"],
)
def test_answer_counts_met_up_to_and_including_the_due_time(offset, expected):
    question = running_question(clock_due_at=None, clock_warn_at=None)
    question.first_answered_at = question.due_at + offset
    # The answer's state does not depend on when we look.
    assert sla.sla_state(question, question.due_at + timedelta(days=30)) == expected


@pytest.mark.parametrize(
    ("offset", "expected"),
    [(-US, sla.ON_TRACK), (timedelta(0), sla.AT_RISK), (US, sla.AT_RISK)],
    ids=["1us-before-warning", "at-warning", "1us-after-warning"],
)
def test_urgent_question_warning_boundary(offset, expected):
    question = running_question(is_urgent=True)
    assert question.clock_warn_at == SUBMITTED + timedelta(minutes=45)
    assert sla.sla_state(question, question.clock_warn_at + offset) == expected


@pytest.mark.parametrize(
    ("offset", "expected"),
    [(-US, sla.AT_RISK), (timedelta(0), sla.AT_RISK), (US, sla.BREACHED)],
    ids=["1us-before-due", "at-due", "1us-after-due"],
)
def test_urgent_question_due_boundary(offset, expected):
    question = running_question(is_urgent=True)
    assert sla.sla_state(question, SUBMITTED + timedelta(hours=1) + offset) == expected


def test_paused_clock_shows_paused_and_freezes_time_left():
    paused_at = SUBMITTED + timedelta(hours=1)
    question = running_question(clock_paused_at=paused_at)
    much_later = SUBMITTED + timedelta(hours=10)
    assert sla.sla_state(question, much_later) == sla.PAUSED
    assert sla.time_left(question, much_later) == timedelta(hours=3)


def test_resumed_clock_moves_by_the_time_paused():
    clock = sla.new_clock(SUBMITTED)
    paused_at = SUBMITTED + timedelta(hours=1)
    resumed_at = paused_at + timedelta(hours=2, microseconds=5)
    warn_at, due_at = sla.resumed_clock(clock.warn_at, clock.due_at, paused_at, resumed_at)
    assert warn_at == clock.warn_at + timedelta(hours=2, microseconds=5)
    assert due_at == clock.due_at + timedelta(hours=2, microseconds=5)
    # Exactly the time left at the pause remains after resuming.
    assert due_at - resumed_at == clock.due_at - paused_at


def test_resumed_clock_never_moves_backwards():
    clock = sla.new_clock(SUBMITTED)
    paused_at = SUBMITTED + timedelta(hours=1)
    assert sla.resumed_clock(clock.warn_at, clock.due_at, paused_at, paused_at - US) == (clock.warn_at, clock.due_at)


@pytest.mark.parametrize("is_urgent", [False, True])
def test_follow_up_clock_gets_the_same_window_from_the_follow_up(is_urgent):
    follow_up_at = SUBMITTED + timedelta(days=2, minutes=7)
    clock = sla.follow_up_clock(follow_up_at, is_urgent)
    window = timedelta(hours=1 if is_urgent else 4)
    assert clock.started_at == follow_up_at
    assert clock.due_at == follow_up_at + window
    assert clock.warn_at == follow_up_at + window * 0.75


@pytest.mark.parametrize(
    ("offset", "expected"),
    [(-US, sla.AT_RISK), (timedelta(0), sla.AT_RISK), (US, sla.BREACHED)],
    ids=["1us-before-due", "at-due", "1us-after-due"],
)
def test_follow_up_clock_decides_while_it_runs_even_after_a_met_first_answer(offset, expected):
    follow_up_at = SUBMITTED + timedelta(days=1)
    clock = sla.follow_up_clock(follow_up_at)
    question = running_question(
        first_answered_at=SUBMITTED + timedelta(hours=1),
        clock_started_at=clock.started_at,
        clock_warn_at=clock.warn_at,
        clock_due_at=clock.due_at,
        is_follow_up=True,
    )
    assert sla.sla_state(question, clock.due_at + offset) == expected


def test_stopped_follow_up_clock_reports_the_first_answer_again():
    question = running_question(first_answered_at=SUBMITTED + timedelta(hours=5), clock_due_at=None, clock_warn_at=None)
    assert sla.sla_state(question, SUBMITTED + timedelta(days=3)) == sla.MISSED


def test_time_left_is_negative_when_late_and_none_without_a_clock():
    question = running_question()
    assert sla.time_left(question, question.clock_due_at + timedelta(minutes=5)) == -timedelta(minutes=5)
    assert sla.time_left(running_question(clock_due_at=None), SUBMITTED) is None


@pytest.mark.parametrize(
    ("is_urgent", "window"),
    [(False, timedelta(hours=4)), (True, timedelta(hours=1))],
)
def test_lead_escalation_is_owed_strictly_after_one_more_window(is_urgent, window):
    lead = levels.by_key("lead")
    question = running_question(is_urgent=is_urgent)
    question.breached_at = question.clock_due_at + US
    lead_at = sla.LEAD.instant(question.clock_due_at, is_urgent)
    assert lead_at == question.clock_due_at + window
    assert not lead.is_due(question, lead_at - US)
    assert not lead.is_due(question, lead_at)
    assert lead.is_due(question, lead_at + US)


def test_lead_escalation_not_owed_while_paused_or_before_a_breach():
    lead = levels.by_key("lead")
    question = running_question()
    late = question.clock_due_at + timedelta(days=1)
    assert not lead.is_due(question, late)  # never breached
    question.breached_at = question.clock_due_at + US
    question.clock_paused_at = question.clock_due_at + timedelta(minutes=1)
    assert not lead.is_due(question, late)
