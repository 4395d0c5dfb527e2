"""Every clock boundary the dashboard writes, in one place.

The SLA rules themselves belong to `consultations.sla` (and, for the open
states, to `services.clock_state_filter`); the dashboard only asks them
questions. What it still spells out itself is here, each next to the rule it
must agree with and named like its counterpart in `sla`, so that switching
them to the shared definitions is one edit per function:

- a clock's state now (on track / at risk / breached / paused): `state_q`
  (database) and `clock_state` (Python), delegated to the shared rule;
- a first answer within the guarantee, `first_answered_at <= due_at`, late
  strictly after (`sla.answered_state`): `answered_on_time_q`,
  `answered_late_q`, and for the trend's SQL `answered_on_time_sql`;
- past due: `due_at < now`, breached strictly after the due time
  (`sla.clock_state`): `past_due_q` (the period report's open past due) and
  `past_due_sql` (the trend's);
- a list row's time left or over: `is_over`, at the due instant still "left".

tests/consultations/test_dashboard_agreement.py checks the figures built on
these against `sla`'s Python predicates, at and either side of each boundary.
"""

from datetime import datetime

from django.db.models import F, Q

from consultations import sla
from consultations.services import clock_state_filter


def state_q(state: str, now: datetime) -> Q:
    """Questions whose clock is in `state` at `now` (a WHERE clause)."""
    return clock_state_filter(state, now)


def clock_state(warn_at: datetime, due_at: datetime, now: datetime) -> str:
    """The state of one running clock at `now`, in Python."""
    return sla.clock_state(warn_at, due_at, now)


def answered_on_time_q() -> Q:
    """The first answer came within the guarantee: at or before the due time."""
    return Q(first_answered_at__lte=F("due_at"))


def answered_late_q() -> Q:
    """The first answer came strictly after the due time."""
    return Q(first_answered_at__gt=F("due_at"))


def answered_on_time_sql(answered: str, due: str) -> str:
    """`answered_on_time_q` in hand-written SQL; `answered` and `due` are SQL terms."""
    return f"{answered} <= {due}"


def past_due_q(now: datetime) -> Q:
    """Questions whose (first-answer) due time has passed at `now`."""
    return Q(due_at__lt=now)


def past_due_sql(due: str, now: str) -> str:
    """`past_due_q` in hand-written SQL; `due` and `now` are SQL terms."""
    return f"{due} < {now}"


def is_over(seconds_left: float) -> bool:
    """A list row's due time has passed (at the due instant itself, it is not over yet)."""
    return seconds_left < 0
