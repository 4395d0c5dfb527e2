"""The escalation levels: one entry each, and everything else is derived from them.

A level is owed once per clock, when its boundary (`sla.py`) is reached on a
running clock that has not had it yet (its `marker` column is null) and has had
the levels it `follows`. From this list come:

- the question's marker column and the sweep's partial index for each level
  (`consultations.models`), and the SweepRun counter column;
- `EscalationLevel` (the escalation rows' choices, the admin's filter);
- the sweep's order, conditions, counters and summary, the task's result, the
  `sla_sweep` command's lines, /healthz's counts, the SweepRun admin columns;
- the follow-up reset: a fresh clock clears every marker (`markers_reset`).

Adding a level: an entry here, a migration (`makemigrations`: its marker, its
counter, its index), and its two e-mail templates, `templates/emails/<kind>.txt`
and `<kind>_subject.txt`. docs/architecture.md walks through it.

Kept import-free of the models: models.py builds its columns from this list.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q

from consultations import sla


@dataclass(frozen=True)
class Level:
    key: str  # stored in Escalation.level
    label: str  # the admin's and the escalation rows' label
    boundary: sla.Boundary  # when it is owed
    marker: str  # Question column: when it was sent; null while owed
    counter: str  # SweepRun / SweepResult field counting it
    summary: str  # how the sweep's log line and the command name the count
    audience: str  # an `escalation.Audience` method: who hears it
    kind: str  # the notification kind: templates/emails/<kind>.txt and <kind>_subject.txt
    index_name: str  # the sweep's partial index over the rows owing it
    follows: tuple[str, ...] = ()  # levels (keys) it needs first
    # Levels it settles when it is sent first (they are not sent after it), whose
    # audience then hears this one too: a breach found before any warning.
    settles: tuple[str, ...] = ()
    on_sent: str = ""  # dotted path of f(questions, now, run) -> e-mails, run in the same transaction
    until: sla.Boundary | None = None  # no longer owed once this is reached (a warning after the due time)

    @property
    def order_by(self) -> str:
        return self.boundary.column

    def owed_q(self) -> Q:
        """Running clocks still owing this level, whatever the time: its partial index's condition."""
        conditions = {"clock_due_at__isnull": False, "clock_paused_at__isnull": True}
        conditions.update({f"{by_key(key).marker}__isnull": False for key in self.follows})
        conditions[f"{self.marker}__isnull"] = True
        return Q(**conditions)

    def due_q(self, now: datetime) -> Q:
        """Rows owing this level at `now` (the sweep's candidates and its conditional UPDATE)."""
        due = self.owed_q() & self.boundary.reached_q(now)
        return due if self.until is None else due & self.until.not_reached_q(now)

    def is_due(self, question, now: datetime) -> bool:
        """`due_q` for a question in hand."""
        return (
            sla.is_running(question)
            and getattr(question, self.marker) is None
            and all(getattr(question, by_key(key).marker) is not None for key in self.follows)
            and self.boundary.reached(getattr(question, self.boundary.column), now, question.is_urgent)
            and not (self.until and self.until.reached(getattr(question, self.until.column), now, question.is_urgent))
        )


# The ladder, in the order people read it (`sweep_order` is the order the sweep applies them).
LEVELS: tuple[Level, ...] = (
    Level(
        key="at_risk",
        label="At risk",
        boundary=sla.WARN,
        marker="warned_at",
        counter="warned",
        summary="at risk (warned)",
        audience="at_risk",
        kind="sla_at_risk",
        index_name="question_sweep_warn_idx",
        until=sla.DUE,
    ),
    Level(
        key="breached",
        label="Breached",
        boundary=sla.DUE,
        marker="breached_at",
        counter="breached",
        summary="breached",
        audience="staff_and_seniors",
        kind="sla_breached",
        index_name="question_sweep_due_idx",
        settles=("at_risk",),
        on_sent="consultations.credits.record_breaches",
    ),
    Level(
        key="lead",
        label="Breached for a further window (medical lead)",
        boundary=sla.LEAD,
        marker="lead_escalated_at",
        counter="lead_escalated",
        summary="lead escalations",
        audience="staff_and_seniors",
        kind="sla_lead",
        index_name="question_sweep_lead_idx",
        follows=("breached",),
    ),
)


def by_key(key: str) -> Level:
    for level in LEVELS:
        if level.key == key:
            return level
    raise KeyError(key)


def sweep_order() -> tuple[Level, ...]:
    """The ladder, each level moved before those it settles: a breach goes out before
    the warnings, so a clock found already past due gets no late "at risk" e-mail."""
    order = list(LEVELS)
    for level in LEVELS:
        for key in level.settles:
            settled = by_key(key)
            if order.index(settled) < order.index(level):
                order.remove(level)
                order.insert(order.index(settled), level)
    return tuple(order)


def counters() -> tuple[str, ...]:
    return tuple(level.counter for level in LEVELS)


def markers_reset() -> dict:
    """A fresh clock owes every level again."""
    return {level.marker: None for level in LEVELS}
