"""The guarantee's arithmetic: due times, warning times and SLA states.

Plain functions of their inputs and `now`; no database access.
"""

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


def answer_window(is_urgent: bool = False) -> timedelta:
    hours = settings.SLA_URGENT_ANSWER_HOURS if is_urgent else settings.SLA_ANSWER_HOURS
    return timedelta(hours=hours)


def due_at_for(started_at: datetime, is_urgent: bool = False) -> datetime:
    return started_at + answer_window(is_urgent)


def warn_at_for(started_at: datetime, due_at: datetime) -> datetime:
    return started_at + (due_at - started_at) * settings.SLA_WARN_FRACTION


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
    """The state staff and doctors see for a question at `now`."""
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
    """Time until the running clock's due time (negative when late)."""
    if question.clock_due_at is None:
        return None
    reference = question.clock_paused_at or now
    return question.clock_due_at - reference
