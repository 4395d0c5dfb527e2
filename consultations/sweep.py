"""The SLA sweep: finds the guarantee clocks that changed state and escalates each exactly once.

Celery beat runs it every SLA_SWEEP_SECONDS (`tasks.run_sla_sweep`) and so does
`manage.py sla_sweep`. Everything is derived from the database, so after an
outage the next sweeps catch up on whatever fell due meanwhile, in bounded
batches. Any number of sweeps may run at once:

- the due questions are claimed a batch at a time (SLA_SWEEP_BATCH_SIZE, most
  overdue first), and each batch is one transaction: the selection itself
  locks the rows it picks (`ORDER BY ... LIMIT n FOR UPDATE SKIP LOCKED`,
  `claim_batch`), so concurrent sweeps take different rows, never wait on each
  other and cannot deadlock; then one conditional `UPDATE ... WHERE id IN (...)
  AND <still due> RETURNING id`; only the questions that UPDATE changed get
  their escalations and notifications, written in the same transaction;
- a sweep keeps claiming batches while any are due, for up to
  SWEEP_BUDGET_SECONDS; after an outage every sweep running at once (two beats,
  and the helpers a sweep that finds a backlog queues for idle workers,
  `tasks.run_sla_sweep`) takes its own share of the backlog;
- a batch costs a constant number of queries however many questions it holds
  (recipients are looked up per batch, rows are inserted in bulk) and the
  e-mails it queues are handed to Celery in a few messages after commit;
- if a batch fails, it is rolled back and its questions are retried one by
  one, each in its own transaction: a row that fails again is marked with
  `sweep_error` and retried after `sweep_retry_at`, provided it still owes the
  transition (never over a row another sweep escalated meanwhile); the rest
  carry on;
- a transient database error (a lost connection, a serialization failure, a
  deadlock: `portal.database.is_transient`) is not a bad row: nothing is marked, the
  transition stops for this sweep, and the next sweep takes the batch again.

The order within a sweep: breaches first (the most urgent news), then warnings,
then the second-level "lead" escalations.

A clock found already past due without ever having been warned (for example
after an outage) gets only the breach escalation: an "at risk" warning sent
after the deadline would be false. So that nobody who should have been warned
is left out, that breach also goes to the at-risk audience (the claiming doctor
or the specialty's doctors), and `warned_at` is set so no late warning follows.
"""

import logging
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.module_loading import import_string

from consultations import levels
from consultations.escalations import Audience, EscalationEmails, messages
from consultations.levels import Level
from consultations.models import Escalation, Question, SweepRun
from consultations.notifications import queue_notifications
from portal.database import drop_broken_connection, insert_rows, is_transient, update_returning

logger = logging.getLogger(__name__)

# A sweep keeps claiming batches while questions are due, for this long at most (checked
# before each batch, well inside CELERY_TASK_SOFT_TIME_LIMIT); whatever is left is claimed
# by the sweeps running alongside it or by the next one.
SWEEP_BUDGET_SECONDS = 60.0
# No fixed cap on batches per transition: a backlog is bounded by the time budget.
MAX_BATCHES = None
# Sweeps that found nothing are kept this long; sweeps that did something are kept.
QUIET_RUN_RETENTION = timedelta(days=7)

# The escalation levels (consultations.levels), in the order a sweep applies them.
TRANSITIONS: tuple[Level, ...] = levels.sweep_order()

# What an escalation needs to know about a question: of the patient, the label's code for
# staff and doctors, and where to send the patient's own apology (consultations.credits).
ESCALATION_FIELDS = (
    "clock_due_at",
    *(level.marker for level in levels.LEVELS),
    "is_follow_up",
    "is_urgent",
    "specialty__name",
    "patient__patient_code",
    "patient__email",
    "patient__is_active",
    "patient__time_zone",
    "claimed_by__is_verified",
    "claimed_by__user__email",
    "claimed_by__user__is_active",
    "claimed_by__user__time_zone",
)


@dataclass
class SweepResult:
    """What one sweep did: `counts` per level counter (also readable as attributes:
    `result.breached`), errors, and how far it got."""

    run_id: int | None = None
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(levels.counters(), 0))
    errors: int = 0
    # Batches left to the next sweep after a transient database error (nothing marked).
    transient_errors: int = 0
    batches: int = 0
    # True when the time budget (or max_batches) ran out: more may be due; the next sweep continues.
    capped: bool = False
    # True when a batch came back full: a backlog, which the caller may share out (see tasks).
    backlog: bool = False
    question_errors: dict[int, str] = field(default_factory=dict)

    def __getattr__(self, name: str) -> int:
        counts = self.__dict__.get("counts", {})
        if name in counts:
            return counts[name]
        raise AttributeError(name)

    @property
    def escalated(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        done = ", ".join(f"{self.counts[level.counter]} {level.summary}" for level in levels.LEVELS)
        return f"{done}, {self.errors} errors, {self.transient_errors} batches left to the next sweep"

    def as_dict(self) -> dict:
        """The task's result and /healthz's counts: one entry per level, then errors."""
        return {**self.counts, "errors": self.errors}


def retry_after() -> timedelta:
    """How long a row that failed waits before the sweep tries it again."""
    return timedelta(seconds=10 * settings.SLA_SWEEP_SECONDS)


@dataclass
class Limits:
    """When a sweep stops taking batches: its time budget (on `clock`), and optionally a
    number of batches per transition."""

    deadline: float
    max_batches: int | None = None
    # Called once, the first time a batch comes back full (a backlog).
    on_backlog: object = None  # callable() | None

    def exhausted(self, batches: int) -> bool:
        return clock() >= self.deadline or (self.max_batches is not None and batches >= self.max_batches)


# The time budget is measured on this clock (tests move it).
clock = time.monotonic


def run_sweep(
    now: datetime | None = None,
    batch_size: int | None = None,
    max_batches: int | None = MAX_BATCHES,
    budget_seconds: float | None = None,
    on_backlog=None,
) -> SweepResult:
    """One sweep: apply every due transition, batch after batch while any is due (within the
    time budget), record the run (the heartbeat), return what it did. `on_backlog` is
    called once if a batch comes back full."""
    now = now or timezone.now()
    batch_size = batch_size or settings.SLA_SWEEP_BATCH_SIZE
    budget = SWEEP_BUDGET_SECONDS if budget_seconds is None else budget_seconds
    limits = Limits(deadline=clock() + budget, max_batches=max_batches, on_backlog=on_backlog)
    started = time.monotonic()
    run = SweepRun.objects.create(started_at=now, progress_at=now, host=socket.gethostname()[:200])
    result = SweepResult(run_id=run.pk)
    audience = Audience()

    def heartbeat():
        # A long catch-up is alive, not stale: /healthz reads this between batches.
        SweepRun.objects.filter(pk=run.pk).update(
            progress_at=now + timedelta(seconds=time.monotonic() - started), **result.as_dict()
        )

    for transition in TRANSITIONS:
        _sweep_transition(transition, now, run, audience, result, batch_size, limits, heartbeat)
    finished_at = now + timedelta(seconds=time.monotonic() - started)
    SweepRun.objects.filter(pk=run.pk).update(
        finished_at=finished_at,
        progress_at=finished_at,
        **result.as_dict(),
    )
    _prune_quiet_runs(now)
    if result.escalated or result.errors or result.transient_errors:
        logger.info("SLA sweep %s: %s", run.pk, result.summary())
    return result


def queue_helpers(send, count: int | None = None) -> int:
    """Ask idle workers to join a sweep that found a backlog: `count` (default
    SLA_SWEEP_PARALLEL - 1) helper sweeps, each queued with `send(**options)`. They expire
    after one sweep interval (the next beat's sweep queues fresh ones while the backlog
    lasts), so they never pile up behind busy workers. A broker failure only means this
    sweep works alone. Returns how many were queued."""
    queued = 0
    for _ in range(settings.SLA_SWEEP_PARALLEL - 1 if count is None else count):
        try:
            send(expires=float(settings.SLA_SWEEP_SECONDS))
        except Exception:  # noqa: BLE001 - any broker failure: the sweeps already running carry on
            logger.warning("Broker unavailable; this sweep works through the backlog alone", exc_info=True)
            break
        queued += 1
    if queued:
        logger.info("SLA sweep: a backlog; %d more sweeps queued", queued)
    return queued


def candidate_queryset(transition: Level, now: datetime):
    """Question ids due for `transition`, most overdue first, skipping rows waiting to retry an error.

    The conditions include the partial index's own, so PostgreSQL scans only
    the questions with a running clock that still owe this transition.
    """
    retry_ok = Q(sweep_retry_at__isnull=True) | Q(sweep_retry_at__lte=now)
    return (
        Question.objects.filter(transition.due_q(now))
        .filter(retry_ok)
        .order_by(transition.order_by)
        .values_list("pk", flat=True)
    )


def candidates(transition: Level, now: datetime, limit: int) -> list[int]:
    """The due ids, without locking them (what a sweep would look at)."""
    return list(candidate_queryset(transition, now)[:limit])


def claim_batch(transition: Level, now: datetime, limit: int) -> list[int]:
    """Claim up to `limit` due questions for this transaction, most overdue first: the
    selection locks the rows it returns and skips the ones another transaction holds
    (`FOR UPDATE SKIP LOCKED`), so sweeps running at once claim different rows instead of
    all picking the same first batch. Must run inside a transaction; the claim ends with it."""
    return list(candidate_queryset(transition, now).select_for_update(skip_locked=True)[:limit])


def _sweep_transition(transition, now, run, audience, result, batch_size, limits, heartbeat=None) -> None:
    """Claim and escalate batches until none is due (or only rows other sweeps hold), a
    transient database error, or the limits."""
    try:
        # The usual case is nothing due: one plain read, no transaction.
        anything_due = candidate_queryset(transition, now).exists()
    except Exception as exc:
        if _transient(exc, transition, "the due questions", result):
            return
        raise
    if not anything_due:
        result.batches += 1
        return
    batches = 0
    while not limits.exhausted(batches):
        claimed = _sweep_batch(transition, now, batch_size, run, audience, result)
        batches += 1
        result.batches += 1
        if claimed is None:
            # The database failed, not a row: the next sweep takes this batch again.
            return
        if heartbeat is not None and claimed:
            heartbeat()
        if claimed < batch_size:
            # Nothing more is due, or the rest is claimed by sweeps running alongside: theirs to finish.
            return
        if not result.backlog:
            result.backlog = True
            if limits.on_backlog is not None:
                limits.on_backlog()
    result.capped = True


def _sweep_batch(transition, now, batch_size, run, audience, result) -> int | None:
    """Claim a batch and escalate it in one transaction; if that fails, each question on its
    own. Returns how many questions were claimed, or None after a transient database error
    (a lost connection, a serialization failure, a deadlock): that says nothing about the
    rows, so none is marked and the batch waits for the next sweep."""
    ids: list[int] = []
    try:
        with transaction.atomic():
            ids = claim_batch(transition, now, batch_size)
            _taken, applied = escalate_batch(transition, ids, now, run, audience) if ids else (0, [])
    except Exception as exc:  # noqa: BLE001 - one bad row must not stop the batch: retried row by row below
        if _transient(exc, transition, f"a batch of {len(ids) or batch_size} questions", result):
            return None
        if not ids:
            raise  # the claim itself failed: not a question's fault
        logger.warning(
            "SLA sweep: a %s batch of %d questions failed; retrying them one by one",
            transition.key,
            len(ids),
            exc_info=True,
        )
    else:
        _count(result, transition, len(applied))
        return len(ids)
    return _sweep_one_by_one(transition, ids, now, run, audience, result)


def _sweep_one_by_one(transition, ids, now, run, audience, result) -> int | None:
    """The questions of a failed batch, each in its own transaction: a failing one is marked to
    be retried later (so the next claims skip it), the rest carry on. None after a transient
    database error."""
    for question_id in ids:
        try:
            with transaction.atomic():
                _taken, applied = escalate_batch(transition, [question_id], now, run, audience)
        except Exception as exc:  # noqa: BLE001 - one bad row must not stop the sweep
            if _transient(exc, transition, f"question {question_id}", result):
                return None
            logger.exception("SLA sweep: %s of question %s failed", transition.key, question_id)
            message = f"{transition.key}: {type(exc).__name__}: {exc}"[:2000]
            if not _record_error(transition, question_id, message, now, result):
                return None
            result.errors += 1
            result.question_errors[question_id] = message
            continue
        _count(result, transition, len(applied))
    return len(ids)


def _transient(exc: BaseException, transition: Level, what: str, result: "SweepResult") -> bool:
    """True (and logged, and counted) if `exc` is a database blip rather than a bad row."""
    if not is_transient(exc):
        return False
    logger.warning(
        "SLA sweep: %s of %s hit a transient database error; the next sweep retries it: %s: %s",
        transition.key,
        what,
        type(exc).__name__,
        exc,
    )
    result.transient_errors += 1
    drop_broken_connection()
    return True


def _record_error(transition: Level, question_id: int, message: str, now: datetime, result) -> bool:
    """Mark a failing question to be retried later, only while it still owes this
    transition: another sweep may have escalated it (or a doctor answered it) since,
    and an error written over that would be stale. False after a transient error."""
    try:
        Question.objects.filter(transition.due_q(now), pk=question_id).update(
            sweep_error=message, sweep_retry_at=now + retry_after()
        )
    except Exception as exc:
        if _transient(exc, transition, f"recording the error of question {question_id}", result):
            return False
        raise
    return True


def _count(result: SweepResult, transition: Level, applied: int) -> None:
    result.counts[transition.counter] += applied


def escalate_batch(
    transition: Level, question_ids: list[int], now: datetime, run: SweepRun, audience: Audience
) -> tuple[int, list[int]]:
    """Apply `transition` to the questions still due among `question_ids`, each exactly once.

    Must run inside a transaction. Returns how many rows this sweep got hold of
    and the ids it escalated; a question another sweep holds, has already
    escalated, or that was answered meanwhile is left alone.
    """
    order = {question_id: position for position, question_id in enumerate(question_ids)}
    # Lock what is still due, skipping rows someone else holds: they are theirs to finish.
    locked = sorted(
        Question.objects.filter(transition.due_q(now), pk__in=question_ids)
        .select_related("patient", "specialty", "claimed_by__user")
        .only(*ESCALATION_FIELDS)
        .select_for_update(skip_locked=True, of=("self",))
        .order_by("pk"),
        key=lambda question: order[question.pk],
    )
    if not locked:
        return 0, []
    # Read while we hold the lock, before the update below sets them: which of the
    # levels this one settles were never sent (a breach found before any warning)?
    unsent = {question.pk: _unsent_settled(transition, question) for question in locked}
    applied = _mark_escalated(transition, [question.pk for question in locked], now)
    questions = [question for question in locked if question.pk in applied]
    if not questions:
        return len(locked), []

    audience.load({question.specialty_id for question in questions})
    emails = EscalationEmails()
    escalations, outgoing = [], []
    for question in questions:
        recipients = audience.for_level(transition, question, settled=unsent[question.pk])
        if not recipients:
            logger.warning("SLA %s of question %s: nobody to notify", transition.key, question.pk)
        escalations.append(_escalation(transition, question, recipients, now, run))
        outgoing += messages(transition, question, recipients, never_warned=bool(unsent[question.pk]), emails=emails)
    insert_rows(Escalation, escalations)
    if transition.on_sent:
        # The breach's credit and the patient's apology: in this same transaction.
        outgoing += import_string(transition.on_sent)(questions, now, run)
    queue_notifications(outgoing)
    return len(locked), [question.pk for question in questions]


def _escalation(transition: Level, question: Question, recipients: list, now: datetime, run: SweepRun) -> dict:
    """The Escalation row, as `insert_rows` takes it."""
    return {
        "question_id": question.pk,
        "level": transition.key,
        "is_follow_up": question.is_follow_up,
        "clock_due_at": question.clock_due_at,
        "created_at": now,
        "recipients": [user.email for user in recipients],
        "sweep_id": run.pk if run is not None else None,
    }


def _unsent_settled(transition: Level, question: Question) -> tuple[Level, ...]:
    settled = (levels.by_key(key) for key in transition.settles)
    return tuple(level for level in settled if getattr(question, level.marker) is None)


def _mark_escalated(transition: Level, question_ids: list[int], now: datetime) -> set[int]:
    """The conditional UPDATE that makes the transition happen once: the ids it changed."""
    values = {transition.marker: now, "sweep_error": "", "sweep_retry_at": None}
    for key in transition.settles:
        # A breach settles the warning too: no "at risk" e-mail may follow it.
        marker = levels.by_key(key).marker
        values[marker] = Coalesce(F(marker), Value(now))
    rows = Question.objects.filter(transition.due_q(now), pk__in=question_ids)
    changed = update_returning(rows, values, ("id",))
    if changed is None:
        # Portable path: one conditional UPDATE per row, the same guarantee.
        return {pk for pk in question_ids if rows.filter(pk=pk).update(**values) == 1}
    return {pk for (pk,) in changed}


def _prune_quiet_runs(now: datetime) -> None:
    """Drop old sweeps that found nothing; one every interval would otherwise pile up forever."""
    quiet = dict.fromkeys((*levels.counters(), "errors"), 0)
    SweepRun.objects.filter(started_at__lt=now - QUIET_RUN_RETENTION, **quiet).delete()


def last_finished_run() -> SweepRun | None:
    return SweepRun.objects.filter(finished_at__isnull=False).order_by("-started_at").first()
