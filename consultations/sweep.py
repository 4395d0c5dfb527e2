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
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from consultations import credits, sla
from consultations.models import DoctorProfile, Escalation, EscalationLevel, Question, SweepRun
from consultations.notifications import OutgoingEmail, queue_notifications, render_email, update_returning
from portal import times
from portal.database import drop_broken_connection, is_transient

logger = logging.getLogger(__name__)

# A sweep keeps claiming batches while questions are due, for this long at most (checked
# before each batch, well inside CELERY_TASK_SOFT_TIME_LIMIT); whatever is left is claimed
# by the sweeps running alongside it or by the next one.
SWEEP_BUDGET_SECONDS = 60.0
# No fixed cap on batches per transition: a backlog is bounded by the time budget.
MAX_BATCHES = None
# Sweeps that found nothing are kept this long; sweeps that did something are kept.
QUIET_RUN_RETENTION = timedelta(days=7)

# A clock that is running: not stopped (answered/closed) and not paused waiting
# for the patient. Spelled exactly like the partial indexes' conditions so that
# PostgreSQL can use them.
RUNNING = Q(clock_due_at__isnull=False, clock_paused_at__isnull=True)


def breach_due(now: datetime) -> Q:
    """Strictly past due and not yet breached (uses question_sweep_due_idx)."""
    return RUNNING & Q(breached_at__isnull=True, clock_due_at__lt=now)


def warning_due(now: datetime) -> Q:
    """Past the warning time, not yet due, not yet warned (uses question_sweep_warn_idx)."""
    return RUNNING & Q(warned_at__isnull=True, clock_warn_at__lte=now, clock_due_at__gte=now)


def lead_due(now: datetime) -> Q:
    """Breached and still unanswered one more window past due (uses question_sweep_lead_idx)."""
    normal, urgent = sla.answer_window(False), sla.answer_window(True)
    late_normal = Q(is_urgent=False, clock_due_at__lt=now - normal)
    late_urgent = Q(is_urgent=True, clock_due_at__lt=now - urgent)
    # The plain range lets the index scan stop early; the OR then picks each question's own window.
    in_range = Q(clock_due_at__lt=now - min(normal, urgent))
    return (
        RUNNING & Q(breached_at__isnull=False, lead_escalated_at__isnull=True) & in_range & (late_normal | late_urgent)
    )


@dataclass(frozen=True)
class Transition:
    level: str
    due: object  # callable(now) -> Q
    order_by: str
    marker: str  # the field the conditional UPDATE sets
    counter: str  # the SweepRun / SweepResult field counting it


TRANSITIONS = (
    Transition(EscalationLevel.BREACHED, breach_due, "clock_due_at", "breached_at", "breached"),
    Transition(EscalationLevel.AT_RISK, warning_due, "clock_warn_at", "warned_at", "warned"),
    Transition(EscalationLevel.LEAD, lead_due, "clock_due_at", "lead_escalated_at", "lead_escalated"),
)

# What an escalation needs to know about a question: of the patient, the label's code for
# staff and doctors, and where to send the patient's own apology (consultations.credits).
ESCALATION_FIELDS = (
    "clock_due_at",
    "warned_at",
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

NOTIFICATION_KIND = {
    EscalationLevel.AT_RISK: "sla_at_risk",
    EscalationLevel.BREACHED: "sla_breached",
    EscalationLevel.LEAD: "sla_lead",
}


@dataclass
class SweepResult:
    run_id: int | None = None
    warned: int = 0
    breached: int = 0
    lead_escalated: int = 0
    errors: int = 0
    # Batches left to the next sweep after a transient database error (nothing marked).
    transient_errors: int = 0
    batches: int = 0
    # True when the time budget (or max_batches) ran out: more may be due; the next sweep continues.
    capped: bool = False
    # True when a batch came back full: a backlog, which the caller may share out (see tasks).
    backlog: bool = False
    question_errors: dict[int, str] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"{self.warned} at risk, {self.breached} breached, {self.lead_escalated} lead escalations, "
            f"{self.errors} errors, {self.transient_errors} batches left to the next sweep"
        )


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
            progress_at=now + timedelta(seconds=time.monotonic() - started),
            warned=result.warned,
            breached=result.breached,
            lead_escalated=result.lead_escalated,
            errors=result.errors,
        )

    for transition in TRANSITIONS:
        _sweep_transition(transition, now, run, audience, result, batch_size, limits, heartbeat)
    finished_at = now + timedelta(seconds=time.monotonic() - started)
    SweepRun.objects.filter(pk=run.pk).update(
        finished_at=finished_at,
        progress_at=finished_at,
        warned=result.warned,
        breached=result.breached,
        lead_escalated=result.lead_escalated,
        errors=result.errors,
    )
    _prune_quiet_runs(now)
    if result.warned or result.breached or result.lead_escalated or result.errors or result.transient_errors:
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


def candidate_queryset(transition: Transition, now: datetime):
    """Question ids due for `transition`, most overdue first, skipping rows waiting to retry an error.

    The conditions include the partial index's own, so PostgreSQL scans only
    the questions with a running clock that still owe this transition.
    """
    retry_ok = Q(sweep_retry_at__isnull=True) | Q(sweep_retry_at__lte=now)
    return (
        Question.objects.filter(transition.due(now))
        .filter(retry_ok)
        .order_by(transition.order_by)
        .values_list("pk", flat=True)
    )


def candidates(transition: Transition, now: datetime, limit: int) -> list[int]:
    """The due ids, without locking them (what a sweep would look at)."""
    return list(candidate_queryset(transition, now)[:limit])


def claim_batch(transition: Transition, now: datetime, limit: int) -> list[int]:
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
            transition.level,
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
            logger.exception("SLA sweep: %s of question %s failed", transition.level, question_id)
            message = f"{transition.level}: {type(exc).__name__}: {exc}"[:2000]
            if not _record_error(transition, question_id, message, now, result):
                return None
            result.errors += 1
            result.question_errors[question_id] = message
            continue
        _count(result, transition, len(applied))
    return len(ids)


def _transient(exc: BaseException, transition: Transition, what: str, result: "SweepResult") -> bool:
    """True (and logged, and counted) if `exc` is a database blip rather than a bad row."""
    if not is_transient(exc):
        return False
    logger.warning(
        "SLA sweep: %s of %s hit a transient database error; the next sweep retries it: %s: %s",
        transition.level,
        what,
        type(exc).__name__,
        exc,
    )
    result.transient_errors += 1
    drop_broken_connection()
    return True


def _record_error(transition: Transition, question_id: int, message: str, now: datetime, result) -> bool:
    """Mark a failing question to be retried later, only while it still owes this
    transition: another sweep may have escalated it (or a doctor answered it) since,
    and an error written over that would be stale. False after a transient error."""
    try:
        Question.objects.filter(transition.due(now), pk=question_id).update(
            sweep_error=message, sweep_retry_at=now + retry_after()
        )
    except Exception as exc:
        if _transient(exc, transition, f"recording the error of question {question_id}", result):
            return False
        raise
    return True


def _count(result: SweepResult, transition: Transition, applied: int) -> None:
    setattr(result, transition.counter, getattr(result, transition.counter) + applied)


def escalate_batch(
    transition: Transition, question_ids: list[int], now: datetime, run: SweepRun, audience: "Audience"
) -> tuple[int, list[int]]:
    """Apply `transition` to the questions still due among `question_ids`, each exactly once.

    Must run inside a transaction. Returns how many rows this sweep got hold of
    and the ids it escalated; a question another sweep holds, has already
    escalated, or that was answered meanwhile is left alone.
    """
    order = {question_id: position for position, question_id in enumerate(question_ids)}
    # Lock what is still due, skipping rows someone else holds: they are theirs to finish.
    locked = sorted(
        Question.objects.filter(transition.due(now), pk__in=question_ids)
        .select_related("patient", "specialty", "claimed_by__user")
        .only(*ESCALATION_FIELDS)
        .select_for_update(skip_locked=True, of=("self",))
        .order_by("pk"),
        key=lambda question: order[question.pk],
    )
    if not locked:
        return 0, []
    # Read while we hold the lock, before the update below sets it: did a warning ever go out?
    never_warned = (
        {question.pk for question in locked if question.warned_at is None}
        if transition.level == EscalationLevel.BREACHED
        else set()
    )
    applied = _mark_escalated(transition, [question.pk for question in locked], now)
    questions = [question for question in locked if question.pk in applied]
    if not questions:
        return len(locked), []

    audience.load({question.specialty_id for question in questions})
    emails = EscalationEmails()
    escalations, messages = [], []
    for question in questions:
        include_at_risk = question.pk in never_warned
        recipients = audience.for_level(transition.level, question, include_at_risk=include_at_risk)
        if not recipients:
            logger.warning("SLA %s of question %s: nobody to notify", transition.level, question.pk)
        escalations.append(
            Escalation(
                question=question,
                level=transition.level,
                is_follow_up=question.is_follow_up,
                clock_due_at=question.clock_due_at,
                created_at=now,
                recipients=[user.email for user in recipients],
                sweep=run,
            )
        )
        messages += _messages(transition.level, question, recipients, never_warned=include_at_risk, emails=emails)
    Escalation.objects.bulk_create(escalations)
    if transition.level == EscalationLevel.BREACHED:
        # The patient hears it too, in this same transaction: the credit and the apology.
        messages += credits.record_breaches(questions, now, run)
    queue_notifications(messages)
    return len(locked), [question.pk for question in questions]


def _mark_escalated(transition: Transition, question_ids: list[int], now: datetime) -> set[int]:
    """The conditional UPDATE that makes the transition happen once: the ids it changed."""
    values = {transition.marker: now, "sweep_error": "", "sweep_retry_at": None}
    if transition.level == EscalationLevel.BREACHED:
        # A breach settles the warning too: no "at risk" e-mail may follow it.
        values["warned_at"] = Coalesce(F("warned_at"), Value(now))
    rows = Question.objects.filter(transition.due(now), pk__in=question_ids)
    changed = update_returning(rows, values, ("id",))
    if changed is None:
        # Portable path: one conditional UPDATE per row, the same guarantee.
        return {pk for pk in question_ids if rows.filter(pk=pk).update(**values) == 1}
    return {pk for (pk,) in changed}


class EscalationEmails:
    """Renders each escalation e-mail once per question and recipients' time zone.

    Recipients of the same question differ only in their time zone (the due
    time is shown in it) and in which site their link opens (the doctors'
    workbench or the staff admin). Rendering is most of an escalation's cost,
    so the e-mail is rendered once per time zone with a marker for the link,
    and each recipient's link is put in its place. Should a template ever
    transform the link (a filter on it), the marker would not come out whole,
    and that e-mail is rendered for each recipient instead.
    """

    URL_MARKER = "\x00escalation-link\x00"

    def __init__(self):
        self._rendered: dict[tuple, tuple[str, str]] = {}
        self._links: dict[str, str | None] = {}

    def render(self, kind: str, question: Question, user, *, never_warned: bool) -> tuple[str, str]:
        time_zone = user.time_zone or settings.TIME_ZONE
        url = self.link(question, _site_for(user))
        key = (kind, question.pk, time_zone, never_warned)
        if key not in self._rendered:
            self._rendered[key] = self._render(kind, question, time_zone, never_warned, self.URL_MARKER)
        subject, body = self._rendered[key]
        leftover = (subject + body).replace(self.URL_MARKER, "")
        if "\x00" in leftover or "escalation-link" in leftover:
            return self._render(kind, question, time_zone, never_warned, url)
        return subject.replace(self.URL_MARKER, url), body.replace(self.URL_MARKER, url)

    def link(self, question: Question, site: str) -> str:
        """`question_admin_url`, with the URL resolved once per site: every question's
        link is the same path around its id."""
        if site not in self._links:
            sample = _admin_url(LINK_SAMPLE_ID, site)
            self._links[site] = sample if sample.count(str(LINK_SAMPLE_ID)) == 1 else None
        pattern = self._links[site]
        if pattern is None:
            return _admin_url(question.pk, site)
        return pattern.replace(str(LINK_SAMPLE_ID), str(question.pk))

    @staticmethod
    def _render(kind, question, time_zone, never_warned, url) -> tuple[str, str]:
        # Formatted here rather than with {% timezone %} and a filter in the template:
        # the same text, for less than half the rendering time.
        zone = times.as_zone(time_zone)
        # Doctors and staff get the patient's label, never their name or e-mail,
        # and no health details: those stay behind the login.
        return render_email(
            kind,
            {
                "question": question,
                "patient_label": question.patient_label,
                "specialty": question.specialty.name,
                "clock_due_at": question.clock_due_at,
                "due": times.format_time(question.clock_due_at, times.LONG_DATE_TIME, zone),
                "due_time": times.format_time(question.clock_due_at, "H:i", zone),
                "is_follow_up": question.is_follow_up,
                "is_urgent": question.is_urgent,
                "never_warned": never_warned,
                "time_zone": time_zone,
                "url": url,
            },
        )


# An id no real question has, to resolve the link pattern once (see EscalationEmails.link).
LINK_SAMPLE_ID = 8_642_097_531


def _messages(level: str, question: Question, recipients: list, *, never_warned: bool, emails: EscalationEmails):
    """The e-mails of one question's escalation, one per recipient."""
    kind = NOTIFICATION_KIND[level]
    due = question.clock_due_at.isoformat()
    rows = []
    for user in recipients:
        subject, body = emails.render(kind, question, user, never_warned=never_warned)
        rows.append(
            OutgoingEmail(
                to_email=user.email,
                kind=kind,
                subject=subject,
                body=body,
                dedupe_key=f"{kind}:{question.pk}:{due}:{user.pk}",
                recipient_id=user.pk,
                question_id=question.pk,
            )
        )
    return rows


def _site_for(user) -> str:
    is_doctor = getattr(getattr(user, "doctor_profile", None), "is_verified", False)
    return "doctor_admin" if is_doctor else "admin"


def _admin_url(question_id: int, site: str) -> str:
    try:
        path = reverse(f"{site}:consultations_question_change", args=[question_id])
    except NoReverseMatch:
        path = reverse(f"{site}:index")
    return settings.SITE_URL + path


def question_admin_url(question: Question, user) -> str:
    """Where the recipient works on the question: the doctors' workbench, or the staff admin."""
    return _admin_url(question.pk, _site_for(user))


class Audience:
    """Who hears about each level. Looked up once per sweep: the staff group once, the
    doctors of the specialties a batch touches in one query, so a sweep's queries
    grow with its batches, not with the questions due or the people notified."""

    def __init__(self):
        self._staff = None
        self._seniors: dict[int, list] = {}
        self._doctors: dict[int, list] = {}

    def staff(self) -> list:
        if self._staff is None:
            self._staff = list(
                get_user_model()
                .objects.filter(groups__name=settings.SLA_STAFF_GROUP, is_active=True)
                # Which link each one gets depends on whether they are also a doctor.
                .select_related("doctor_profile")
                .distinct()
                .order_by("pk")
            )
        return self._staff

    def load(self, specialty_ids) -> None:
        """Fetch the verified doctors (seniors among them) of every specialty not looked up yet."""
        missing = sorted(set(specialty_ids) - self._doctors.keys())
        if not missing:
            return
        for specialty_id in missing:
            self._doctors[specialty_id], self._seniors[specialty_id] = [], []
        links = (
            DoctorProfile.specialties.through.objects.filter(
                specialty_id__in=missing,
                doctorprofile__in=DoctorProfile.objects.verified(),
            )
            .select_related("doctorprofile__user")
            .order_by("doctorprofile_id")
        )
        for link in links:
            user = link.doctorprofile.user
            self._doctors[link.specialty_id].append(user)
            if link.doctorprofile.is_senior:
                self._seniors[link.specialty_id].append(user)

    def seniors(self, specialty_id: int) -> list:
        self.load([specialty_id])
        return self._seniors[specialty_id]

    def doctors(self, specialty_id: int) -> list:
        self.load([specialty_id])
        return self._doctors[specialty_id]

    def at_risk(self, question: Question) -> list:
        """The claiming doctor; else the specialty's verified doctors; else staff, so someone knows."""
        claimant = question.claimed_by
        if claimant is not None and claimant.is_verified and claimant.user.is_active:
            return [claimant.user]
        return self.doctors(question.specialty_id) or self.staff()

    def for_level(self, level: str, question: Question, include_at_risk: bool = False) -> list:
        if level == EscalationLevel.AT_RISK:
            users = self.at_risk(question)
        else:
            users = self.staff() + self.seniors(question.specialty_id)
            if include_at_risk:
                users = users + self.at_risk(question)
        unique = {}
        for user in users:
            unique.setdefault(user.pk, user)
        return list(unique.values())


def _prune_quiet_runs(now: datetime) -> None:
    """Drop old sweeps that found nothing; one every interval would otherwise pile up forever."""
    SweepRun.objects.filter(
        started_at__lt=now - QUIET_RUN_RETENTION, warned=0, breached=0, lead_escalated=0, errors=0
    ).delete()


def last_finished_run() -> SweepRun | None:
    return SweepRun.objects.filter(finished_at__isnull=False).order_by("-started_at").first()
