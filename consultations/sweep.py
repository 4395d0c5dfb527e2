"""The SLA sweep: finds the guarantee clocks that changed state and escalates each exactly once.

Celery beat runs it every SLA_SWEEP_SECONDS (`tasks.run_sla_sweep`) and so does
`manage.py sla_sweep`. Everything is derived from the database, so after an
outage the next sweeps catch up on whatever fell due meanwhile, in bounded
batches. Any number of sweeps may run at once:

- each transition is a conditional UPDATE (`... WHERE id = %s AND breached_at IS
  NULL AND <clock still running and due>`); only the sweep whose UPDATE changed
  the row records the escalation and queues its notifications, in the same
  transaction;
- each row gets its own short transaction (a savepoint when the caller already
  holds one), so a sweep never holds more than one question's lock and sweeps
  racing on the same rows cannot deadlock;
- a row that fails is rolled back on its own, marked with `sweep_error` and
  retried after `sweep_retry_at`; the rest of the sweep carries on.

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
from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from consultations import sla
from consultations.models import DoctorProfile, Escalation, EscalationLevel, Question, SweepRun
from consultations.notifications import queue_notification

logger = logging.getLogger(__name__)

# Batches per transition in one sweep: bounds a single run after a long outage;
# the next sweep carries on where this one stopped.
MAX_BATCHES = 20
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

# What an escalation needs to know about a question; nothing of the patient but the label's code.
ESCALATION_FIELDS = (
    "clock_due_at",
    "is_follow_up",
    "is_urgent",
    "specialty__name",
    "patient__patient_code",
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
    batches: int = 0
    # True when a transition hit MAX_BATCHES: more may be due; the next sweep continues.
    capped: bool = False
    question_errors: dict[int, str] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"{self.warned} at risk, {self.breached} breached, {self.lead_escalated} lead escalations, "
            f"{self.errors} errors"
        )


def retry_after() -> timedelta:
    """How long a row that failed waits before the sweep tries it again."""
    return timedelta(seconds=10 * settings.SLA_SWEEP_SECONDS)


def run_sweep(
    now: datetime | None = None, batch_size: int | None = None, max_batches: int = MAX_BATCHES
) -> SweepResult:
    """One sweep: apply every due transition once, record the run (the heartbeat), return what it did."""
    now = now or timezone.now()
    batch_size = batch_size or settings.SLA_SWEEP_BATCH_SIZE
    started = time.monotonic()
    run = SweepRun.objects.create(started_at=now, host=socket.gethostname()[:200])
    result = SweepResult(run_id=run.pk)
    audience = Audience()
    for transition in TRANSITIONS:
        _sweep_transition(transition, now, run, audience, result, batch_size, max_batches)
    SweepRun.objects.filter(pk=run.pk).update(
        finished_at=now + timedelta(seconds=time.monotonic() - started),
        warned=result.warned,
        breached=result.breached,
        lead_escalated=result.lead_escalated,
        errors=result.errors,
    )
    _prune_quiet_runs(now)
    if result.warned or result.breached or result.lead_escalated or result.errors:
        logger.info("SLA sweep %s: %s", run.pk, result.summary())
    return result


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
    return list(candidate_queryset(transition, now)[:limit])


def _sweep_transition(transition, now, run, audience, result, batch_size, max_batches) -> None:
    for _ in range(max_batches):
        ids = candidates(transition, now, batch_size)
        result.batches += 1
        for question_id in ids:
            try:
                applied = escalate(transition, question_id, now, run, audience)
            except Exception as exc:  # noqa: BLE001 - one bad row must not stop the sweep
                logger.exception("SLA sweep: %s of question %s failed", transition.level, question_id)
                message = f"{transition.level}: {type(exc).__name__}: {exc}"[:2000]
                Question.objects.filter(pk=question_id).update(sweep_error=message, sweep_retry_at=now + retry_after())
                result.errors += 1
                result.question_errors[question_id] = message
                continue
            if applied:
                setattr(result, transition.counter, getattr(result, transition.counter) + 1)
        if len(ids) < batch_size:
            return
    result.capped = True


def escalate(transition: Transition, question_id: int, now: datetime, run: SweepRun, audience: "Audience") -> bool:
    """Apply one transition to one question, exactly once. False when another sweep (or an answer) got there first."""
    with transaction.atomic():
        changed = Question.objects.filter(transition.due(now), pk=question_id).update(
            **{transition.marker: now}, sweep_error="", sweep_retry_at=None
        )
        if changed != 1:
            return False
        never_warned = False
        if transition.level == EscalationLevel.BREACHED:
            # We hold the row's lock now, so this tells exactly whether a warning ever went out.
            never_warned = Question.objects.filter(pk=question_id, warned_at__isnull=True).update(warned_at=now) == 1
        question = (
            Question.objects.select_related("patient", "specialty", "claimed_by__user")
            .only(*ESCALATION_FIELDS)
            .get(pk=question_id)
        )
        recipients = audience.for_level(transition.level, question, include_at_risk=never_warned)
        Escalation.objects.create(
            question=question,
            level=transition.level,
            is_follow_up=question.is_follow_up,
            clock_due_at=question.clock_due_at,
            created_at=now,
            recipients=[user.email for user in recipients],
            sweep=run,
        )
        if not recipients:
            logger.warning("SLA %s of question %s: nobody to notify", transition.level, question_id)
        for user in recipients:
            _notify(transition.level, question, user, never_warned=never_warned)
    return True


def _notify(level: str, question: Question, user, *, never_warned: bool) -> None:
    kind = NOTIFICATION_KIND[level]
    # Doctors and staff get the patient's label, never their name or e-mail,
    # and no health details: those stay behind the login.
    queue_notification(
        recipient=user,
        to_email=user.email,
        kind=kind,
        context={
            "question": question,
            "patient_label": question.patient_label,
            "specialty": question.specialty.name,
            "clock_due_at": question.clock_due_at,
            "is_follow_up": question.is_follow_up,
            "is_urgent": question.is_urgent,
            "never_warned": never_warned,
            "time_zone": user.time_zone or settings.TIME_ZONE,
            "url": question_admin_url(question, user),
        },
        dedupe_key=f"{kind}:{question.pk}:{question.clock_due_at.isoformat()}:{user.pk}",
        question=question,
    )


def question_admin_url(question: Question, user) -> str:
    """Where the recipient works on the question: the doctors' workbench, or the staff admin."""
    is_doctor = getattr(getattr(user, "doctor_profile", None), "is_verified", False)
    site = "doctor_admin" if is_doctor else "admin"
    try:
        path = reverse(f"{site}:consultations_question_change", args=[question.pk])
    except NoReverseMatch:
        path = reverse(f"{site}:index")
    return settings.SITE_URL + path


class Audience:
    """Who hears about each level. Looked up once per sweep (per specialty), so
    a sweep's queries grow with the questions due, not the people notified."""

    def __init__(self):
        self._staff = None
        self._seniors: dict[int, list] = {}
        self._doctors: dict[int, list] = {}

    def staff(self) -> list:
        if self._staff is None:
            self._staff = list(
                get_user_model()
                .objects.filter(groups__name=settings.SLA_STAFF_GROUP, is_active=True)
                .distinct()
                .order_by("pk")
            )
        return self._staff

    def _doctor_users(self, cache: dict, specialty_id: int, **filters) -> list:
        if specialty_id not in cache:
            cache[specialty_id] = [
                profile.user
                for profile in DoctorProfile.objects.verified()
                .filter(specialties=specialty_id, **filters)
                .select_related("user")
                .order_by("pk")
            ]
        return cache[specialty_id]

    def seniors(self, specialty_id: int) -> list:
        return self._doctor_users(self._seniors, specialty_id, is_senior=True)

    def doctors(self, specialty_id: int) -> list:
        return self._doctor_users(self._doctors, specialty_id)

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
