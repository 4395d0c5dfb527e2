"""The clock boundaries the dashboard asks about, all from `consultations.sla`.

Each rule (warn, due, answered on time) is written once, in `sla`, as a Python
predicate and as a database condition; this module only gives the dashboard's
modules one import and names that read well in their queries:

- a clock's state now (on track / at risk / breached / paused): `state_q`
  (database) and `clock_state` (Python);
- a first answer within the guarantee (at or before the due time), late
  strictly after: `answered_on_time_q`, `answered_late_q`, and for the trend's
  hand-written SQL `answered_on_time_sql`;
- past due (breached strictly after the due time): `past_due_q` (the period
  report's open past due) and `past_due_sql` (the trend's);
- the share answered within the guarantee of those settled: `compliance`;
- a list row's time left or over: `is_over`, at the due instant still "left".

tests/consultations/test_dashboard_agreement.py checks the figures built on
these against `sla`'s Python predicates, at and either side of each boundary;
tests/consultations/test_sla_boundaries.py checks `sla`'s SQL against its Python.
"""

from datetime import datetime, timedelta

from django.db.models import Q

from consultations import sla

state_q = sla.state_q
clock_state = sla.clock_state
answered_on_time_q = sla.answered_on_time_q
answered_late_q = sla.answered_late_q
answered_on_time_sql = sla.answered_on_time_sql
past_due_sql = sla.past_due_sql


def past_due_q(now: datetime) -> Q:
    """Questions whose (first-answer) due time `now` has passed."""
    return sla.DUE.reached_q(now, column="due_at")


def compliance(within: int, answered: int, open_past_due: int) -> float | None:
    """The share of settled questions answered within the guarantee: of those answered
    and those still open past due; None when nothing is settled yet."""
    settled = answered + open_past_due
    return within / settled if settled else None


def is_over(seconds_left: float) -> bool:
    """A list row's due time has passed (at the due instant itself, it is not over yet)."""
    due = datetime.min + timedelta(days=1)
    return sla.DUE.reached(due, due - timedelta(seconds=seconds_left))
