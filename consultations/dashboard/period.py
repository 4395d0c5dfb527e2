"""The period report: for the last 24 hours, 7 or 30 days, overall, per specialty and per doctor,
the questions received and answered, compliance with the guarantee, the time to first answer,
breaches, escalations and breach credits."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Q

from consultations.dashboard import clock
from consultations.dashboard.answers import ANSWER_COUNTS, AnswerFigures, answer_aggregates, answer_figures
from consultations.dashboard.db import open_questions, without_jit
from consultations.dashboard.formatting import format_duration, format_share, minutes, percent
from consultations.models import (
    BreachCredit,
    CreditKind,
    DoctorProfile,
    Escalation,
    EscalationLevel,
    Question,
    QuestionStatus,
    Specialty,
)

PERIODS = {
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
}
DEFAULT_PERIOD = "24h"


@dataclass(frozen=True)
class Period:
    key: str
    label: str
    start: datetime
    end: datetime


def period_for(key: str | None, now: datetime) -> Period:
    """The reporting window ending at `now`; an unknown key falls back to the default."""
    if key not in PERIODS:
        key = DEFAULT_PERIOD
    label, length = PERIODS[key]
    return Period(key=key, label=label, start=now - length, end=now)


@dataclass
class PeriodRow:
    """One line of the period report: the whole service, a specialty or a doctor."""

    scope: str  # "all", "specialty" or "doctor"
    name: str
    pk: int | None = None
    received: int | None = 0
    answered: int = 0
    within: int = 0
    answered_late: int = 0
    open_past_due: int = 0
    median_seconds: float | None = None
    p90_seconds: float | None = None
    escalations: int | None = 0
    breach_escalations: int | None = 0
    open_claims: int | None = None
    # Breach credits recorded in the period, per kind (issue 14); None for doctors'
    # rows: a breach is the service's, not one doctor's.
    breach_credits: dict[str, int] | None = field(default_factory=dict)

    @property
    def breaches(self) -> int:
        return self.answered_late + self.open_past_due

    @property
    def compliance(self) -> float | None:
        return clock.compliance(self.within, self.answered, self.open_past_due)

    @property
    def compliance_display(self) -> str:
        return format_share(self.compliance)

    @property
    def compliance_percent(self) -> str:
        return percent(self.compliance)

    @property
    def median_display(self) -> str:
        return format_duration(self.median_seconds)

    @property
    def median_minutes(self) -> str:
        return minutes(self.median_seconds)

    @property
    def p90_display(self) -> str:
        return format_duration(self.p90_seconds)

    @property
    def p90_minutes(self) -> str:
        return minutes(self.p90_seconds)


@dataclass
class PeriodReport:
    period: Period
    total: PeriodRow
    specialties: list[PeriodRow]
    doctors: list[PeriodRow]


@dataclass(frozen=True)
class PeriodFilters:
    received: Q
    answered: Q
    open_past_due: Q


def period_filters(period: Period) -> PeriodFilters:
    return PeriodFilters(
        received=Q(submitted_at__gte=period.start, submitted_at__lte=period.end),
        answered=Q(first_answered_at__gte=period.start, first_answered_at__lte=period.end),
        # Waiting for a doctor (not for the patient) with its first answer late: fell due in the period.
        open_past_due=Q(status=QuestionStatus.OPEN, first_answered_at__isnull=True, due_at__gte=period.start)
        & clock.past_due_q(period.end),
    )


def _question_aggregates(filters: PeriodFilters) -> dict:
    return {
        "received": Count("pk", filter=filters.received),
        **answer_aggregates(filters.answered),
        "open_past_due": Count("pk", filter=filters.open_past_due),
    }


# The counts of a period row (every field of `_question_aggregates`).
_COUNTED = ("received", "answered", "within", "answered_late", "open_past_due")


def period_report(
    period: Period, specialties: list[tuple[int, str]] | None = None, using: str | None = None
) -> PeriodReport:
    """Received, answered, compliance, median and p90 time to first answer, breaches and
    escalations for `period`: overall, per specialty and per doctor.

    `specialties`, (pk, name) in display order, saves reading them again when the
    caller already has them (the page, from the "now" figures). `using` picks the
    implementation of the answers' figures (`answers.answer_figures`).
    """
    with without_jit():
        return _period_report(period, specialties, using)


def _period_report(period: Period, specialties: list[tuple[int, str]] | None, using: str | None) -> PeriodReport:
    if specialties is None:
        specialties = list(Specialty.objects.values_list("pk", "name"))
    filters = period_filters(period)
    touched = Question.objects.filter(filters.received | filters.answered | filters.open_past_due).order_by()
    by_specialty = {
        row.pop("specialty"): row for row in touched.values("specialty").annotate(**_question_aggregates(filters))
    }
    answers = answer_figures(filters.answered, using)
    # Every question has exactly one specialty, so the counts add up (percentiles do not).
    total = PeriodRow(
        scope="all",
        name="All specialties",
        **{name: sum(row[name] for row in by_specialty.values()) for name in _COUNTED},
        **_timings(answers, "all", None),
    )
    open_claims = _open_claims()
    escalations = _escalation_counts(period)
    credits = breach_credit_counts(period)
    specialty_rows = [
        PeriodRow(
            scope="specialty",
            name=name,
            pk=pk,
            **by_specialty.get(pk, {}),
            **_timings(answers, "specialty", pk),
            escalations=escalations[pk][0],
            breach_escalations=escalations[pk][1],
            breach_credits=dict(credits[pk]),
        )
        for pk, name in specialties
    ]
    total.escalations = sum(counts[0] for counts in escalations.values())
    total.breach_escalations = sum(counts[1] for counts in escalations.values())
    total.breach_credits = {
        kind: sum(by_kind.get(kind, 0) for by_kind in credits.values()) for kind in CreditKind.values
    }
    doctors = _doctor_rows(answers, open_claims)
    return PeriodReport(period=period, total=total, specialties=specialty_rows, doctors=doctors)


def _timings(answers: AnswerFigures, scope: str, pk: int | None) -> dict:
    figures = answers.get((scope, pk), {})
    return {"median_seconds": figures.get("median_seconds"), "p90_seconds": figures.get("p90_seconds")}


def _open_claims() -> dict[int, int]:
    """Open questions each doctor holds now."""
    return dict(
        open_questions()
        .filter(claimed_by__isnull=False)
        .values("claimed_by")
        .annotate(n=Count("pk"))
        .values_list("claimed_by", "n")
    )


def _escalation_counts(period: Period) -> dict[int, list[int]]:
    """{specialty id: [escalations of any level, breach escalations]} in the period."""
    escalations = defaultdict(lambda: [0, 0])
    for specialty_id, level, count in (
        Escalation.objects.filter(created_at__gte=period.start, created_at__lte=period.end)
        .order_by()
        .values("question__specialty", "level")
        .annotate(n=Count("pk"))
        .values_list("question__specialty", "level", "n")
    ):
        escalations[specialty_id][0] += count
        if level == EscalationLevel.BREACHED:
            escalations[specialty_id][1] += count
    return escalations


def _doctor_rows(answers: AnswerFigures, open_claims: dict[int, int]) -> list[PeriodRow]:
    """Every verified doctor (idle ones too); others only when they did something."""
    answered_by = {pk for scope, pk in answers if scope == "doctor"}
    return [
        PeriodRow(
            scope="doctor",
            name=doctor["display_name"],
            pk=doctor["pk"],
            received=None,
            escalations=None,
            breach_escalations=None,
            breach_credits=None,
            **{name: answers.get(("doctor", doctor["pk"]), {}).get(name, 0) for name in ANSWER_COUNTS},
            **_timings(answers, "doctor", doctor["pk"]),
            open_claims=open_claims.get(doctor["pk"], 0),
        )
        for doctor in DoctorProfile.objects.filter(
            Q(is_verified=True, user__is_active=True) | Q(pk__in=answered_by | set(open_claims))
        )
        .order_by("display_name", "pk")
        .values("pk", "display_name")
    ]


def breach_credit_counts(period) -> dict[int, dict[str, int]]:
    """Breach credits recorded in the period, per specialty (the question's) and kind."""
    counts = defaultdict(dict)
    for specialty_id, kind, count in (
        BreachCredit.objects.filter(breached_at__gte=period.start, breached_at__lte=period.end)
        .order_by()
        .values("question__specialty", "kind")
        .annotate(n=Count("pk"))
        .values_list("question__specialty", "kind", "n")
    ):
        counts[specialty_id][kind] = count
    return counts
