"""The guarantee's arithmetic: due times, warning times, SLA states, and the boundaries.

Every clock rule lives here once, and each boundary is both a Python predicate
(for a question in hand) and a database condition (for the sweep, the queue,
the dashboard and the partial indexes), built from the same `Boundary`:

- at risk from the warning time itself (`WARN`, inclusive);
- breached only strictly after the due time (`DUE`, exclusive): an answer at the
  due time is on time;
- the lead's escalation strictly after one more window past due (`LEAD`), the
  question's own window (the urgent one for urgent questions).

The policy is the settings: SLA_ANSWER_HOURS, SLA_URGENT_ANSWER_HOURS and
SLA_WARN_FRACTION. tests/consultations/test_sla_boundaries.py proves the two
spellings agree at every boundary instant on PostgreSQL and SQLite.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q

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


# --- The boundaries ------------------------------------------------------------

# A clock that is running: not stopped (answered/closed) and not paused waiting for
# the patient. The partial indexes' conditions start with exactly this.
RUNNING = Q(clock_due_at__isnull=False, clock_paused_at__isnull=True)
PAUSED_CLOCK = Q(clock_due_at__isnull=False, clock_paused_at__isnull=False)


def is_running(question) -> bool:
    return question.clock_due_at is not None and question.clock_paused_at is None


@dataclass(frozen=True)
class Boundary:
    """An instant of a clock (`column`, plus `windows` of the question's own answer
    window) that `now` reaches: from the instant itself when `inclusive`, else
    strictly after it. `reached` and `reached_q`/`not_reached_q` are the one rule,
    for a value in hand and in SQL."""

    column: str
    inclusive: bool
    windows: int = 0

    def instant(self, at: datetime, is_urgent: bool = False) -> datetime:
        return at + self.windows * answer_window(is_urgent)

    def reached(self, at: datetime, now: datetime, is_urgent: bool = False) -> bool:
        instant = self.instant(at, is_urgent)
        return now >= instant if self.inclusive else now > instant

    def reached_q(self, now, column: str | None = None) -> Q:
        """Rows whose instant `now` has reached; `now` may be an expression (F) when windows is 0."""
        lookup = "lte" if self.inclusive else "lt"
        return self._q(lookup, now, column or self.column)

    def not_reached_q(self, now, column: str | None = None) -> Q:
        lookup = "gt" if self.inclusive else "gte"
        return self._q(lookup, now, column or self.column)

    def _q(self, lookup: str, now, column: str) -> Q:
        if not self.windows:
            return Q(**{f"{column}__{lookup}": now})
        normal, urgent = (self.windows * answer_window(u) for u in (False, True))
        per_window = Q(is_urgent=False, **{f"{column}__{lookup}": now - normal}) | Q(
            is_urgent=True, **{f"{column}__{lookup}": now - urgent}
        )
        if lookup in ("gt", "gte"):
            return per_window
        # The plain range first lets an index scan on `column` stop early.
        return Q(**{f"{column}__{lookup}": now - min(normal, urgent)}) & per_window


WARN = Boundary("clock_warn_at", inclusive=True)
DUE = Boundary("clock_due_at", inclusive=False)
LEAD = Boundary("clock_due_at", inclusive=False, windows=1)


def state_q(state: str, now: datetime) -> Q:
    """Questions whose clock is in `state` at `now`: `clock_state` as a WHERE clause."""
    if state == ON_TRACK:
        return RUNNING & WARN.not_reached_q(now)
    if state == AT_RISK:
        return RUNNING & WARN.reached_q(now) & DUE.not_reached_q(now)
    if state == BREACHED:
        return RUNNING & DUE.reached_q(now)
    if state == PAUSED:
        return PAUSED_CLOCK
    raise ValueError(f"Not a clock state: {state!r}")


def answered_on_time_q(answered: str = "first_answered_at", due: str = "due_at") -> Q:
    """Answers within their guarantee (`answered_state` is MET): not past `due` when given."""
    return DUE.not_reached_q(F(answered), column=due)


def answered_late_q(answered: str = "first_answered_at", due: str = "due_at") -> Q:
    return DUE.reached_q(F(answered), column=due)


def past_due_sql(due: str, now: str) -> str:
    """DUE for hand-written SQL (the dashboard's trend): `due` and `now` are SQL terms."""
    return f"{due} <= {now}" if DUE.inclusive else f"{due} < {now}"


def answered_on_time_sql(answered: str, due: str) -> str:
    """`answered_on_time_q` for hand-written SQL."""
    return f"{answered} < {due}" if DUE.inclusive else f"{answered} <= {due}"


def clock_state(warn_at: datetime, due_at: datetime, now: datetime) -> str:
    """State of a running clock: on track, at risk from the warning time, breached past due."""
    if DUE.reached(due_at, now):
        return BREACHED
    if WARN.reached(warn_at, now):
        return AT_RISK
    return ON_TRACK


def answered_state(answered_at: datetime, due_at: datetime) -> str:
    return MISSED if DUE.reached(due_at, answered_at) else MET


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
