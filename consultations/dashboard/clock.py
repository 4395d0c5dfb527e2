"""Every clock boundary the dashboard writes, in one place.

The SLA rules themselves belong to `consultations.sla` (and, for the open
states, to `services.clock_state_filter`); the dashboard only asks them
questions. What it still spells out itself is here, each next to the rule it
must agree with, so that switching them to the shared definitions is one edit:

- a state now (on track / at risk / breached / paused): `state_filter` (database)
  and `state_of` (Python), delegated to the shared rule;
- a first answer within the guarantee, `first_answered_at <= due_at`, late
  strictly after (`sla.answered_state`): `answered_within`, `answered_late`,
  and the trend's SQL `answered_within_sql`;
- open past due: waiting for a doctor, unanswered, its due time passed, i.e.
  `due_at < now` (breached strictly after due, `sla.clock_state`):
  `fell_due_unanswered` (a period) and `past_due_sql` (the trend);
- a list row's time left or over: `is_over`, at the due instant still "left".
"""

from datetime import datetime

from django.db.models import F, Q
from django.db.models.lookups import GreaterThan, LessThanOrEqual

from consultations import sla
from consultations.models import QuestionStatus
from consultations.services import clock_state_filter


def state_filter(state: str, now: datetime) -> Q:
    """Open questions whose running clock is in `state` at `now` (a WHERE clause)."""
    return clock_state_filter(state, now)


def state_of(warn_at: datetime, due_at: datetime, now: datetime) -> str:
    """The state of one running clock at `now`, in Python."""
    return sla.clock_state(warn_at, due_at, now)


def answered_within() -> LessThanOrEqual:
    """The first answer came within the guarantee: at or before the due time."""
    return LessThanOrEqual(F("first_answered_at"), F("due_at"))


def answered_late() -> GreaterThan:
    """The first answer came strictly after the due time."""
    return GreaterThan(F("first_answered_at"), F("due_at"))


def answered_within_sql(answered: str, due: str) -> str:
    """`answered_within` in plain SQL, for the quoted columns `answered` and `due`."""
    return f"{answered} <= {due}"


def fell_due_unanswered(start: datetime, end: datetime) -> Q:
    """Waiting for a doctor (not for the patient), no first answer, due in [start, end):
    with `end` the present, exactly the first answers that are late and still owed."""
    return Q(status=QuestionStatus.OPEN, first_answered_at__isnull=True, due_at__gte=start, due_at__lt=end)


def past_due_sql(status: str, answered: str, due: str) -> tuple[str, list]:
    """`fell_due_unanswered` up to now in plain SQL: the condition, and the parameters before
    the one left for `now`."""
    return f"{status} = %s AND {answered} IS NULL AND {due} < %s", [QuestionStatus.OPEN.value]


def is_over(seconds_left: float) -> bool:
    """A list row's due time has passed (at the due instant itself, it is not over yet)."""
    return seconds_left < 0
