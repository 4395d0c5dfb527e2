"""The figures of the present moment: open questions by SLA state, overall and per specialty,
the question waiting longest, and the sweep's heartbeat."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Count, Q

from consultations import heartbeat, sla
from consultations.dashboard import clock
from consultations.dashboard.db import open_questions
from consultations.dashboard.formatting import format_duration
from consultations.dashboard.lists import question_admin_url
from consultations.models import Specialty


@dataclass
class SpecialtyNow:
    pk: int
    name: str
    slug: str
    verified_doctors: int
    on_track: int = 0
    at_risk: int = 0
    breached: int = 0
    waiting_for_patient: int = 0

    @property
    def open(self) -> int:
        return self.on_track + self.at_risk + self.breached


@dataclass(frozen=True)
class OldestWaiting:
    question_id: int
    specialty: str
    waiting_since: datetime
    waiting_seconds: float
    is_follow_up: bool
    state: str

    @property
    def admin_url(self) -> str:
        return question_admin_url(self.question_id)

    @property
    def waiting_display(self) -> str:
        return format_duration(self.waiting_seconds)


@dataclass(frozen=True)
class SweepStatus:
    age_seconds: float | None
    stale_after_seconds: int
    stale: bool
    problem: str = ""

    @property
    def age_display(self) -> str:
        if self.age_seconds is None:
            return "never"
        if self.age_seconds < 60:
            return f"{self.age_seconds:.0f} s ago"
        return f"{format_duration(self.age_seconds)} ago"


@dataclass
class NowFigures:
    now: datetime
    on_track: int
    at_risk: int
    breached: int
    waiting_for_patient: int
    oldest: OldestWaiting | None
    sweep: SweepStatus
    specialties: list[SpecialtyNow]

    @property
    def open(self) -> int:
        return self.on_track + self.at_risk + self.breached


def _now_counts(now: datetime) -> dict:
    return {
        "on_track": Count("pk", filter=clock.state_q(sla.ON_TRACK, now)),
        "at_risk": Count("pk", filter=clock.state_q(sla.AT_RISK, now)),
        "breached": Count("pk", filter=clock.state_q(sla.BREACHED, now)),
        "waiting_for_patient": Count("pk", filter=clock.state_q(sla.PAUSED, now)),
    }


def sweep_status(now: datetime) -> SweepStatus:
    """The sweep's heartbeat judged exactly as /healthz judges it: stale after three intervals."""
    status = heartbeat.sweep_status(now)
    return SweepStatus(
        age_seconds=status.get("age_seconds"),
        stale_after_seconds=status.get("max_age_seconds", 3 * settings.SLA_SWEEP_SECONDS),
        stale=not status["ok"],
        problem=status.get("error", ""),
    )


def oldest_waiting(now: datetime) -> OldestWaiting | None:
    """The question whose running clock started first: the one waiting longest for a doctor."""
    question = (
        open_questions()
        .filter(clock_due_at__isnull=False, clock_paused_at__isnull=True)
        .select_related("specialty")
        .only("pk", "is_follow_up", "clock_started_at", "clock_warn_at", "clock_due_at", "specialty__name")
        .order_by("clock_started_at", "pk")
        .first()
    )
    if question is None:
        return None
    return OldestWaiting(
        question_id=question.pk,
        specialty=question.specialty.name,
        waiting_since=question.clock_started_at,
        waiting_seconds=(now - question.clock_started_at).total_seconds(),
        is_follow_up=question.is_follow_up,
        state=clock.clock_state(question.clock_warn_at, question.clock_due_at, now),
    )


def now_figures(now: datetime) -> NowFigures:
    """Open questions by SLA state, overall and per specialty, the oldest waiting, the sweep's age."""
    counts = _now_counts(now)
    per_specialty = {row.pop("specialty"): row for row in open_questions().values("specialty").annotate(**counts)}
    # Every question has exactly one specialty: the totals are the sums, no second scan needed.
    totals = {state: sum(row[state] for row in per_specialty.values()) for state in counts}
    specialties = []
    # Ordered explicitly: a grouped query does not take the model's ordering, and this table
    # should list specialties in the same order as the period's.
    for row in (
        Specialty.objects.annotate(
            verified_doctors=Count("doctors", filter=Q(doctors__is_verified=True, doctors__user__is_active=True))
        )
        .order_by(*Specialty._meta.ordering)
        .values("pk", "name", "slug", "verified_doctors")
    ):
        specialties.append(SpecialtyNow(**row, **per_specialty.get(row["pk"], {})))
    return NowFigures(
        now=now,
        **totals,
        oldest=oldest_waiting(now),
        sweep=sweep_status(now),
        specialties=specialties,
    )
