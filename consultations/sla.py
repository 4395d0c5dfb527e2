"""The guarantee's arithmetic: due times, warning times and SLA states.

Plain functions of their inputs and `now`; no database access. The boundaries
are shared with the sweep: a clock is at risk from the warning time itself, and
breached only strictly after the due time (an answer at the due time is on time).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

ON_TRACK = "on_track"
AT_RISK = "at_risk"
BREACHED = "breached"
MET = "met"
MISSED = "missed"
PAUSED = "paused"

STATE_LABELS = {
    ON_TRACK: "On track",
    AT_RISK: "At risk",
    BREACHED: "Breached",
    MET: "Met",
    MISSED: "Missed",
    PAUSED: "Paused",
}


@dataclass(frozen=True)
class Clock:
    """A guarantee clock: when it started, when it warns, when it is due."""

    started_at: datetime
    warn_at: datetime
    due_at: datetime


def answer_window(is_urgent: bool = False) -> timedelta:
    """The guarantee window; questions with emergency red flags get the shorter urgent one."""
    hours = settings.SLA_URGENT_ANSWER_HOURS if is_urgent else settings.SLA_ANSWER_HOURS
    return timedelta(hours=hours)


def due_at_for(started_at: datetime, is_urgent: bool = False) -> datetime:
    return started_at + answer_window(is_urgent)


def warn_at_for(started_at: datetime, due_at: datetime) -> datetime:
    return started_at + (due_at - started_at) * settings.SLA_WARN_FRACTION


def new_clock(started_at: datetime, is_urgent: bool = False) -> Clock:
    """The clock for a new question, or for a follow-up: both get the same window."""
    due_at = due_at_for(started_at, is_urgent)
    return Clock(started_at=started_at, warn_at=warn_at_for(started_at, due_at), due_at=due_at)


def follow_up_clock(follow_up_at: datetime, is_urgent: bool = False) -> Clock:
    """A patient's follow-up after an answer is owed a reply within the same window."""
    return new_clock(follow_up_at, is_urgent)


def resumed_clock(warn_at: datetime, due_at: datetime, paused_at: datetime, now: datetime) -> tuple[datetime, datetime]:
    """(warn_at, due_at) after a pause from `paused_at` to `now`: time waiting for the patient does not count."""
    paused_for = max(now - paused_at, timedelta(0))
    return warn_at + paused_for, due_at + paused_for


def lead_escalation_at(due_at: datetime, is_urgent: bool = False) -> datetime:
    """Still unanswered one more window past due: the second-level escalation is owed after this."""
    return due_at + answer_window(is_urgent)


def clock_state(warn_at: datetime, due_at: datetime, now: datetime) -> str:
    """State of a running clock: on track, at risk from the warning time, breached past due."""
    if now > due_at:
        return BREACHED
    if now >= warn_at:
        return AT_RISK
    return ON_TRACK


def answered_state(answered_at: datetime, due_at: datetime) -> str:
    return MET if answered_at <= due_at else MISSED


def sla_state(question, now: datetime) -> str:
    """The state staff and doctors see for a question at `now`.

    A running clock (first answer or follow-up) decides while it runs; a paused
    one shows as paused. Once stopped, the first answer counts as met or missed.
    """
    if question.clock_due_at is not None:
        if question.clock_paused_at is not None:
            return PAUSED
        return clock_state(question.clock_warn_at, question.clock_due_at, now)
    if question.first_answered_at is not None:
        return answered_state(question.first_answered_at, question.due_at)
    if question.clock_paused_at is not None:
        return PAUSED
    return clock_state(warn_at_for(question.submitted_at, question.due_at), question.due_at, now)


def time_left(question, now: datetime) -> timedelta | None:
    """Time until the running clock's due time (negative when late); frozen while paused."""
    if question.clock_due_at is None:
        return None
    reference = question.clock_paused_at or now
    return question.clock_due_at - reference


def lead_is_due(question, now: datetime) -> bool:
    """A breached, running, unpaused clock that has stayed unanswered a further window."""
    return (
        question.clock_due_at is not None
        and question.clock_paused_at is None
        and question.breached_at is not None
        and now > lead_escalation_at(question.clock_due_at, question.is_urgent)
    )
