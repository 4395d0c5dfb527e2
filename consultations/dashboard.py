"""The staff SLA dashboard's figures: plain functions of `now`, computed by the database.

PostgreSQL is the production path: every count, and the median and 90th
percentile of the time to first answer, come from grouped aggregate queries
(`percentile_cont(...) WITHIN GROUP`), a fixed number per page, never one per
row: the period's answers are read once for every scope (GROUPING SETS), the
30-day trend is one statement of per-day index ranges. SQLite has no
`percentile_cont`; there (local runs and tests without DATABASE_URL), and only
there, the period's answer times are read by one values_list query and
interpolated in Python with PostgreSQL's formula, so both give the same numbers.

The definitions behind every figure (page, CSV, JSON and Prometheus alike):

- open: a doctor's answer is owed and its clock runs (`clock_due_at` set, not
  paused). On track before `clock_warn_at`, at risk from it, breached strictly
  after `clock_due_at` (the same boundaries as `sla.clock_state`).
- received in a period: submitted in it; answered: first answer given in it;
  within the guarantee: `first_answered_at <= due_at`; answered late: after it.
- open past due in a period: no first answer yet, waiting for a doctor, and its
  due time passed within the period.
- breaches = answered late + open past due.
- compliance = answered within the guarantee / (answered + open past due): a
  question nobody has answered counts against the promise as soon as it is late,
  not only once its late answer arrives.
"""

import itertools
import math
from collections import defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from functools import cached_property

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, FloatField, Func, Q
from django.db.models.lookups import GreaterThan, LessThanOrEqual
from django.urls import NoReverseMatch, reverse
from django.utils import dateformat, timezone

from consultations import forecast as forecast_model
from consultations import sla
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
from consultations.services import OPEN_STATUSES, clock_state_filter
from portal import health, times

PERIODS = {
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
}
DEFAULT_PERIOD = "24h"
TREND_DAYS = 30
LIST_LIMIT = 25
ESCALATION_LIMIT = 20
# The time to first answer is reported as its median and 90th percentile.
PERCENTILES = (0.5, 0.9)


# --- Database helpers ---------------------------------------------------------------


class AnswerSeconds(Func):
    """Seconds from submission to the first answer (PostgreSQL)."""

    output_field = FloatField()
    template = "EXTRACT(EPOCH FROM (%(expressions)s))::double precision"
    arg_joiner = " - "

    def __init__(self, **extra):
        super().__init__(F("first_answered_at"), F("submitted_at"), **extra)


@contextmanager
def _without_jit():
    """Run the enclosed queries with PostgreSQL's JIT compilation off.

    The planner estimates a range of parameters at 0.5 % of the table, so the
    trend's estimated cost grows with the stored questions although its work
    follows the last 30 days; the 30-day report's estimates grow with the
    period's answers. Past about 10^6 stored they cross `jit_above_cost`, and
    each request would spend 50-450 ms compiling statements that run in tens of
    milliseconds. SET LOCAL ends with the transaction opened here (or with the
    caller's, when there is one).
    """
    if connection.vendor != "postgresql":
        yield
        return
    # No savepoint when the caller has a transaction: there is nothing here to roll back to.
    with transaction.atomic(savepoint=False):
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")
        yield


def database_has_percentiles() -> bool:
    return connection.vendor == "postgresql"


def percentile_cont(sorted_values: list[float], fraction: float) -> float | None:
    """PostgreSQL's percentile_cont on an ascending list: linear interpolation between ranks."""
    if not sorted_values:
        return None
    position = fraction * (len(sorted_values) - 1)
    lower, upper = math.floor(position), math.ceil(position)
    low, high = sorted_values[lower], sorted_values[upper]
    return low + (high - low) * (position - lower)


def _open_questions():
    # Restricting to open statuses lets PostgreSQL use the partial queue index:
    # the cost follows the questions waiting, not the questions stored.
    return Question.objects.filter(status__in=OPEN_STATUSES).order_by()


def _now_counts(now: datetime) -> dict:
    return {
        "on_track": Count("pk", filter=clock_state_filter(sla.ON_TRACK, now)),
        "at_risk": Count("pk", filter=clock_state_filter(sla.AT_RISK, now)),
        "breached": Count("pk", filter=clock_state_filter(sla.BREACHED, now)),
        "waiting_for_patient": Count("pk", filter=clock_state_filter(sla.PAUSED, now)),
    }


# --- Formatting shared by the page, the CSV and the JSON ---------------------------


def format_duration(seconds: float | None) -> str:
    """A duration as staff read it: "2 h 05 min", "3 d 4 h", "12 min"; a dash for none."""
    if seconds is None:
        return "–"
    minutes = round(abs(seconds) / 60)
    if minutes == 0:
        return "< 1 min"
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min"


def format_share(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.1f} %"


def _minutes(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds / 60:.1f}"


def _percent(share: float | None) -> str:
    return "" if share is None else f"{share * 100:.1f}"


# --- Now ----------------------------------------------------------------------------


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


def sweep_status(now: datetime) -> SweepStatus:
    """The sweep's heartbeat judged exactly as /healthz judges it: stale after three intervals."""
    status = health.sweep_status(now)
    return SweepStatus(
        age_seconds=status.get("age_seconds"),
        stale_after_seconds=status.get("max_age_seconds", 3 * settings.SLA_SWEEP_SECONDS),
        stale=not status["ok"],
        problem=status.get("error", ""),
    )


def oldest_waiting(now: datetime) -> OldestWaiting | None:
    """The question whose running clock started first: the one waiting longest for a doctor."""
    question = (
        _open_questions()
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
        state=sla.clock_state(question.clock_warn_at, question.clock_due_at, now),
    )


def now_figures(now: datetime) -> NowFigures:
    """Open questions by SLA state, overall and per specialty, the oldest waiting, the sweep's age."""
    counts = _now_counts(now)
    per_specialty = {row.pop("specialty"): row for row in _open_questions().values("specialty").annotate(**counts)}
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


def now_as_dict(figures: NowFigures) -> dict:
    """The "now" figures for monitoring (JSON)."""
    oldest = figures.oldest
    return {
        "generated_at": figures.now.isoformat(),
        "open": {
            "total": figures.open,
            "on_track": figures.on_track,
            "at_risk": figures.at_risk,
            "breached": figures.breached,
        },
        "waiting_for_patient": figures.waiting_for_patient,
        "oldest_waiting": None
        if oldest is None
        else {
            "question_id": oldest.question_id,
            "specialty": oldest.specialty,
            "waiting_since": oldest.waiting_since.isoformat(),
            "waiting_seconds": round(oldest.waiting_seconds, 3),
            "is_follow_up": oldest.is_follow_up,
            "state": oldest.state,
        },
        "sweep": {
            "age_seconds": figures.sweep.age_seconds,
            "stale_after_seconds": figures.sweep.stale_after_seconds,
            "stale": figures.sweep.stale,
            "problem": figures.sweep.problem,
        },
        "specialties": [
            {
                "slug": row.slug,
                "name": row.name,
                "open": row.open,
                "on_track": row.on_track,
                "at_risk": row.at_risk,
                "breached": row.breached,
                "waiting_for_patient": row.waiting_for_patient,
                "verified_doctors": row.verified_doctors,
            }
            for row in figures.specialties
        ],
    }


def _prometheus_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def now_as_prometheus(figures: NowFigures) -> str:
    """The "now" figures in the Prometheus text exposition format (version 0.0.4)."""
    lines = [
        "# HELP portal_sla_open_questions Questions owed a doctor's answer, by SLA state.",
        "# TYPE portal_sla_open_questions gauge",
    ]
    for state in ("on_track", "at_risk", "breached"):
        lines.append(f'portal_sla_open_questions{{state="{state}"}} {getattr(figures, state)}')
    lines += [
        "# HELP portal_sla_waiting_for_patient_questions Questions whose clock is paused for the patient.",
        "# TYPE portal_sla_waiting_for_patient_questions gauge",
        f"portal_sla_waiting_for_patient_questions {figures.waiting_for_patient}",
        "# HELP portal_sla_oldest_waiting_seconds How long the longest-waiting question has waited.",
        "# TYPE portal_sla_oldest_waiting_seconds gauge",
        f"portal_sla_oldest_waiting_seconds {figures.oldest.waiting_seconds if figures.oldest else 0}",
        "# HELP portal_sla_sweep_age_seconds Seconds since an SLA sweep last finished or made progress (-1: never).",
        "# TYPE portal_sla_sweep_age_seconds gauge",
        f"portal_sla_sweep_age_seconds {-1 if figures.sweep.age_seconds is None else figures.sweep.age_seconds}",
        "# HELP portal_sla_sweep_stale 1 when the last sweep is older than three sweep intervals.",
        "# TYPE portal_sla_sweep_stale gauge",
        f"portal_sla_sweep_stale {int(figures.sweep.stale)}",
        "# HELP portal_sla_specialty_open_questions Questions owed an answer, by specialty and SLA state.",
        "# TYPE portal_sla_specialty_open_questions gauge",
    ]
    for row in figures.specialties:
        slug = _prometheus_label(row.slug)
        for state in ("on_track", "at_risk", "breached"):
            lines.append(
                f'portal_sla_specialty_open_questions{{specialty="{slug}",state="{state}"}} {getattr(row, state)}'
            )
    lines += [
        "# HELP portal_verified_doctors Verified, active doctors by specialty.",
        "# TYPE portal_verified_doctors gauge",
    ]
    lines += [
        f'portal_verified_doctors{{specialty="{_prometheus_label(row.slug)}"}} {row.verified_doctors}'
        for row in figures.specialties
    ]
    return "\n".join(lines) + "\n"


# --- Period report ----------------------------------------------------------------


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
        settled = self.answered + self.open_past_due
        return self.within / settled if settled else None

    @property
    def compliance_display(self) -> str:
        return format_share(self.compliance)

    @property
    def compliance_percent(self) -> str:
        return _percent(self.compliance)

    @property
    def median_display(self) -> str:
        return format_duration(self.median_seconds)

    @property
    def median_minutes(self) -> str:
        return _minutes(self.median_seconds)

    @property
    def p90_display(self) -> str:
        return format_duration(self.p90_seconds)

    @property
    def p90_minutes(self) -> str:
        return _minutes(self.p90_seconds)


@dataclass
class PeriodReport:
    period: Period
    total: PeriodRow
    specialties: list[PeriodRow]
    doctors: list[PeriodRow]


@dataclass(frozen=True)
class _PeriodFilters:
    received: Q
    answered: Q
    open_past_due: Q


def _period_filters(period: Period) -> _PeriodFilters:
    return _PeriodFilters(
        received=Q(submitted_at__gte=period.start, submitted_at__lte=period.end),
        answered=Q(first_answered_at__gte=period.start, first_answered_at__lte=period.end),
        # Waiting for a doctor (not for the patient) with its first answer late.
        open_past_due=Q(
            status=QuestionStatus.OPEN,
            first_answered_at__isnull=True,
            due_at__gte=period.start,
            due_at__lt=period.end,
        ),
    )


def _answer_aggregates(filters: _PeriodFilters) -> dict:
    return {
        "answered": Count("pk", filter=filters.answered),
        "within": Count("pk", filter=filters.answered & Q(first_answered_at__lte=F("due_at"))),
        "answered_late": Count("pk", filter=filters.answered & Q(first_answered_at__gt=F("due_at"))),
    }


def _question_aggregates(filters: _PeriodFilters) -> dict:
    return {
        "received": Count("pk", filter=filters.received),
        **_answer_aggregates(filters),
        "open_past_due": Count("pk", filter=filters.open_past_due),
    }


# The counts of a period row (every field of `_question_aggregates`).
_COUNTED = ("received", "answered", "within", "answered_late", "open_past_due")
_ANSWER_COUNTS = ("answered", "within", "answered_late")

# {(scope, pk): {"answered": …, "within": …, "answered_late": …, "median_seconds": …, "p90_seconds": …}}
# for scope "all" (pk None), "specialty" and "doctor".
AnswerFigures = dict[tuple[str, int | None], dict]


def _database_answer_figures(filters: _PeriodFilters) -> AnswerFigures:
    """PostgreSQL: counts and percentiles of the period's answers overall, per specialty and per
    doctor, from one scan sorted once per grouping (GROUPING SETS, which the ORM cannot say).

    Its input is the ORM's own query for the period's answers, so it selects the very
    rows the other figures count.
    """
    # Only what the aggregates need, computed before the sorts: narrow rows sort in less memory.
    answers = (
        Question.objects.filter(filters.answered)
        .order_by()
        .annotate(
            seconds=AnswerSeconds(),
            on_time=LessThanOrEqual(F("first_answered_at"), F("due_at")),
            late=GreaterThan(F("first_answered_at"), F("due_at")),
        )
        .values("specialty_id", "answered_by_id", "seconds", "on_time", "late")
    )
    inner, params = answers.query.sql_with_params()
    fractions = ", ".join(repr(float(fraction)) for fraction in PERCENTILES)
    sql = (
        "SELECT GROUPING(specialty_id, answered_by_id), specialty_id, answered_by_id, COUNT(*), "  # noqa: S608
        "COUNT(*) FILTER (WHERE on_time), COUNT(*) FILTER (WHERE late), "
        f"PERCENTILE_CONT(ARRAY[{fractions}]::double precision[]) WITHIN GROUP (ORDER BY seconds) "
        f"FROM ({inner}) AS answers GROUP BY GROUPING SETS ((), (specialty_id), (answered_by_id))"
    )
    # GROUPING() has a bit set for each column a row is not grouped by.
    scopes = {0b11: "all", 0b01: "specialty", 0b10: "doctor"}
    figures = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for grouping, specialty_id, doctor_id, *counts, percentiles in cursor.fetchall():
            scope = scopes[grouping]
            pk = {"all": None, "specialty": specialty_id, "doctor": doctor_id}[scope]
            if scope == "doctor" and pk is None:
                continue  # answers whose doctor is no longer on record belong to no doctor's row
            figures[scope, pk] = dict(zip(_ANSWER_COUNTS, counts, strict=True))
            # NULL for the overall row of a period without answers (the empty grouping set always yields a row).
            figures[scope, pk]["median_seconds"], figures[scope, pk]["p90_seconds"] = percentiles or (None, None)
    return figures


def _python_answer_figures(filters: _PeriodFilters) -> AnswerFigures:
    """Other databases (SQLite has no percentile_cont): the per-doctor counts grouped by the
    database, and the percentiles interpolated here from one query ordered by answer time."""
    figures = {
        ("doctor", row.pop("answered_by")): row
        for row in Question.objects.filter(filters.answered, answered_by__isnull=False)
        .order_by()
        .values("answered_by")
        .annotate(**_answer_aggregates(filters))
    }
    times = defaultdict(list)
    rows = (
        Question.objects.filter(filters.answered)
        .order_by(F("first_answered_at") - F("submitted_at"), "pk")
        .values_list("specialty_id", "answered_by_id", "submitted_at", "first_answered_at")
    )
    for specialty_id, doctor_id, submitted_at, answered_at in rows:
        # Exact from the two datetimes: SQLite's date arithmetic goes through floats.
        seconds = (answered_at - submitted_at).total_seconds()
        times["all", None].append(seconds)
        times["specialty", specialty_id].append(seconds)
        if doctor_id is not None:
            times["doctor", doctor_id].append(seconds)
    for key, values in times.items():
        median, p90 = (percentile_cont(values, fraction) for fraction in PERCENTILES)
        figures.setdefault(key, {}).update(median_seconds=median, p90_seconds=p90)
    return figures


def period_report(period: Period, specialties: list[tuple[int, str]] | None = None) -> PeriodReport:
    """Received, answered, compliance, median and p90 time to first answer, breaches and
    escalations for `period`: overall, per specialty and per doctor.

    `specialties`, (pk, name) in display order, saves reading them again when the
    caller already has them (the page, from the "now" figures).
    """
    with _without_jit():
        return _period_report(period, specialties)


def _period_report(period: Period, specialties: list[tuple[int, str]] | None) -> PeriodReport:
    if specialties is None:
        specialties = list(Specialty.objects.values_list("pk", "name"))
    filters = _period_filters(period)
    touched = Question.objects.filter(filters.received | filters.answered | filters.open_past_due).order_by()

    by_specialty = {
        row.pop("specialty"): row for row in touched.values("specialty").annotate(**_question_aggregates(filters))
    }
    answers = (_database_answer_figures if database_has_percentiles() else _python_answer_figures)(filters)

    def timings(scope, pk):
        figures = answers.get((scope, pk), {})
        return {"median_seconds": figures.get("median_seconds"), "p90_seconds": figures.get("p90_seconds")}

    # Every question has exactly one specialty, so the counts add up (percentiles do not).
    total = PeriodRow(
        scope="all",
        name="All specialties",
        **{name: sum(row[name] for row in by_specialty.values()) for name in _COUNTED},
        **timings("all", None),
    )
    open_claims = dict(
        _open_questions()
        .filter(claimed_by__isnull=False)
        .values("claimed_by")
        .annotate(n=Count("pk"))
        .values_list("claimed_by", "n")
    )
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

    credits = breach_credit_counts(period)
    specialty_rows = [
        PeriodRow(
            scope="specialty",
            name=name,
            pk=pk,
            **by_specialty.get(pk, {}),
            **timings("specialty", pk),
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

    # Every verified doctor is listed (idle ones too); others only when they did something.
    answered_by = {pk for scope, pk in answers if scope == "doctor"}
    doctors = [
        PeriodRow(
            scope="doctor",
            name=doctor["display_name"],
            pk=doctor["pk"],
            received=None,
            escalations=None,
            breach_escalations=None,
            breach_credits=None,
            **{name: answers.get(("doctor", doctor["pk"]), {}).get(name, 0) for name in _ANSWER_COUNTS},
            **timings("doctor", doctor["pk"]),
            open_claims=open_claims.get(doctor["pk"], 0),
        )
        for doctor in DoctorProfile.objects.filter(
            Q(is_verified=True, user__is_active=True) | Q(pk__in=answered_by | set(open_claims))
        )
        .order_by("display_name", "pk")
        .values("pk", "display_name")
    ]
    return PeriodReport(period=period, total=total, specialties=specialty_rows, doctors=doctors)


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


# Credits per kind, after the existing columns (whose order stays as it was).
CREDIT_COLUMNS = {f"breach_credits_{kind}": kind for kind in CreditKind.values if kind != CreditKind.NONE}

CSV_COLUMNS = [
    "period",
    "period_start",
    "period_end",
    "scope",
    "name",
    "received",
    "answered",
    "answered_within_guarantee",
    "answered_late",
    "open_past_due",
    "breaches",
    "compliance_percent",
    "median_minutes_to_first_answer",
    "p90_minutes_to_first_answer",
    "escalations",
    "breach_escalations",
    "open_claims",
    "breach_credits",
    *CREDIT_COLUMNS,
]


def period_report_rows(report: PeriodReport) -> list[dict[str, str]]:
    """The period report as CSV rows (same numbers as the page; blanks where a figure does not apply)."""

    def blank_if_none(value):
        return "" if value is None else str(value)

    rows = []
    for row in [report.total, *report.specialties, *report.doctors]:
        rows.append(
            {
                "period": report.period.key,
                "period_start": report.period.start.isoformat(),
                "period_end": report.period.end.isoformat(),
                "scope": row.scope,
                "name": row.name,
                "received": blank_if_none(row.received),
                "answered": str(row.answered),
                "answered_within_guarantee": str(row.within),
                "answered_late": str(row.answered_late),
                "open_past_due": str(row.open_past_due),
                "breaches": str(row.breaches),
                "compliance_percent": row.compliance_percent,
                "median_minutes_to_first_answer": row.median_minutes,
                "p90_minutes_to_first_answer": row.p90_minutes,
                "escalations": blank_if_none(row.escalations),
                "breach_escalations": blank_if_none(row.breach_escalations),
                "open_claims": blank_if_none(row.open_claims),
                **credit_cells(row.breach_credits),
            }
        )
    return rows


def credit_cells(credits: dict[str, int] | None) -> dict[str, str]:
    """The credit columns of one CSV row: all of them, per kind; blanks where they do not apply."""
    if credits is None:
        return {"breach_credits": "", **dict.fromkeys(CREDIT_COLUMNS, "")}
    return {
        "breach_credits": str(sum(credits.values())),
        **{column: str(credits.get(kind, 0)) for column, kind in CREDIT_COLUMNS.items()},
    }


# --- Trend ----------------------------------------------------------------------------


@dataclass
class TrendDay:
    day: date
    received: int = 0
    answered: int = 0
    within: int = 0
    open_past_due: int = 0

    @property
    def compliance(self) -> float | None:
        settled = self.answered + self.open_past_due
        return self.within / settled if settled else None

    @property
    def compliance_display(self) -> str:
        return format_share(self.compliance)

    # The day's labels, formatted once: the chart and its table show each day three times.
    @cached_property
    def short_label(self) -> str:
        return dateformat.format(self.day, "j M")

    @cached_property
    def long_label(self) -> str:
        return dateformat.format(self.day, "D j M")

    @cached_property
    def iso(self) -> str:
        return self.day.isoformat()


def local_day_starts(first_day: date, days: int, tz: tzinfo) -> list[datetime]:
    """The instant each of `days` local days from `first_day` begins in `tz`, plus the start of the day after.

    Local midnight through `make_aware` (fold 0): on a day whose midnight is
    skipped by a DST change, that is the change's instant, the first moment
    of the day, so each day is exactly the instants whose local date it is.
    """
    return [timezone.make_aware(datetime.combine(first_day + timedelta(days=n), time.min), tz) for n in range(days + 1)]


def _trend_sql(starts: list[datetime], now: datetime) -> tuple[str, list]:
    """The whole trend in one statement: a row per day (received, answered, answered within the
    guarantee) and a row per day with open questions that fell due unanswered.

    Each day is a range of instants, counted by subqueries correlated to that
    day's row of a VALUES list. PostgreSQL plans such a range of parameters as a
    narrow index range whatever the table's size, so the cost follows the
    questions of the 30 days, with no time-zone arithmetic and no hashing per
    question: received through `question_submitted_idx` (an index-only count
    once the table is vacuumed), answered through `question_first_answered_idx`,
    both of that day's counts from one LATERAL scan. (A plain join of the days
    to the questions is not safe: its estimate can tip the planner into a
    sequential scan compared against every day. One BitmapOr scan of received
    OR answered per day measured about the same, slightly faster at 10^5
    stored and slower at 10^6; separate ranges can each become index-only.)
    Other databases, without LATERAL, count answers in two subqueries. The open
    questions past due are few (they sit in the partial queue index), so they are
    joined to the days directly. Plain SQL because the ORM cannot join a list of
    ranges; it runs on SQLite too.
    """
    ops = connection.ops
    table = ops.quote_name(Question._meta.db_table)
    submitted, answered, due, status = (
        "q." + ops.quote_name(Question._meta.get_field(name).column)
        for name in ("submitted_at", "first_answered_at", "due_at", "status")
    )
    until = ops.adapt_datetimefield_value(now)
    days_params = []
    for index, (start, stop) in enumerate(itertools.pairwise(starts)):
        days_params += [index, ops.adapt_datetimefield_value(start), ops.adapt_datetimefield_value(stop)]

    def on_the_day(column):
        return f"{column} >= days.day_start AND {column} < days.day_stop AND {column} <= %s"

    # Table and column names come from the model, values are parameters: nothing typed by a user.
    received = f"(SELECT COUNT(*) FROM {table} q WHERE {on_the_day(submitted)})"  # noqa: S608
    if connection.vendor == "postgresql":
        answers = "answers.answered, answers.within"
        answers_join = (
            f"CROSS JOIN LATERAL (SELECT COUNT(*) AS answered, COUNT(*) FILTER (WHERE {answered} <= {due}) AS within "  # noqa: S608
            f"FROM {table} q WHERE {on_the_day(answered)}) AS answers"
        )
        answers_params = [until]
    else:
        answers = (
            f"(SELECT COUNT(*) FROM {table} q WHERE {on_the_day(answered)}), "  # noqa: S608
            f"(SELECT COUNT(*) FROM {table} q WHERE {on_the_day(answered)} AND {answered} <= {due})"
        )
        answers_join = ""
        answers_params = [until, until]
    sql = (
        f"WITH days (day_index, day_start, day_stop) AS (VALUES {', '.join(['(%s, %s, %s)'] * (len(starts) - 1))}) "  # noqa: S608
        f"SELECT 'day', days.day_index, {received}, {answers} FROM days {answers_join} "
        "UNION ALL "
        "SELECT 'open_past_due', days.day_index, COUNT(*), 0, 0 "
        f"FROM days INNER JOIN {table} q ON {due} >= days.day_start AND {due} < days.day_stop "
        f"WHERE {status} = %s AND {answered} IS NULL AND {due} < %s "
        "GROUP BY days.day_index"
    )
    return sql, [*days_params, until, *answers_params, QuestionStatus.OPEN.value, until]


def daily_trend(now: datetime, tz: tzinfo, days: int = TREND_DAYS) -> list[TrendDay]:
    """Volume and compliance per calendar day (in `tz`) for the last `days` days, today included.

    A day's compliance uses the period definitions: answers given that day, and
    questions that fell due that day and are still unanswered. All of it comes
    from one statement (`_trend_sql`).
    """
    today = timezone.localtime(now, tz).date()
    first_day = today - timedelta(days=days - 1)
    trend = [TrendDay(day=first_day + timedelta(days=offset)) for offset in range(days)]
    sql, params = _trend_sql(local_day_starts(first_day, days, tz), now)
    with _without_jit(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    for kind, index, count, answered, within in rows:
        day = trend[index]
        if kind == "day":
            day.received, day.answered, day.within = int(count), int(answered), int(within)
        else:
            day.open_past_due = int(count)
    return trend


@dataclass(frozen=True)
class ChartBar:
    x: float
    y: float
    width: float
    height: float
    day: TrendDay


@dataclass(frozen=True)
class ChartPoint:
    x: float
    y: float
    day: TrendDay


@dataclass(frozen=True)
class ChartLabel:
    x: float
    y: float
    text: str


@dataclass
class TrendChart:
    """Geometry of the server-rendered SVG: volume bars and a compliance line."""

    width: int
    height: int
    plot_left: float
    plot_right: float
    plot_top: float
    plot_bottom: float
    max_volume: int = 0
    bars: list[ChartBar] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # SVG `points`, broken where a day has no figure
    points: list[ChartPoint] = field(default_factory=list)
    x_labels: list[ChartLabel] = field(default_factory=list)
    volume_labels: list[ChartLabel] = field(default_factory=list)
    share_labels: list[ChartLabel] = field(default_factory=list)
    gridlines: list[float] = field(default_factory=list)


def nice_ceiling(value: int) -> int:
    """The axis maximum: the smallest of 2, 4, 6, 8, 10, 20, 40, 50, 60, 80, 100, 200… not below
    `value`, so the halfway gridline falls on a whole number too."""
    magnitude = 1
    while True:
        for step in (2, 4, 5, 6, 8, 10) if magnitude > 1 else (2, 4, 6, 8, 10):
            if step * magnitude >= value:
                return step * magnitude
        magnitude *= 10


def trend_chart(days: list[TrendDay], width: int = 720, height: int = 240) -> TrendChart:
    left, right, top, bottom = 44.0, width - 48.0, 12.0, height - 28.0
    chart = TrendChart(width, height, left, right, top, bottom)
    if not days:
        return chart
    plot_height = bottom - top
    slot = (right - left) / len(days)
    max_volume = chart.max_volume = nice_ceiling(max(day.received for day in days))
    segment: list[str] = []
    for index, day in enumerate(days):
        bar_height = plot_height * day.received / max_volume
        chart.bars.append(
            ChartBar(
                x=round(left + index * slot + slot * 0.15, 1),
                y=round(bottom - bar_height, 1),
                width=round(slot * 0.7, 1),
                height=round(bar_height, 1),
                day=day,
            )
        )
        centre = round(left + index * slot + slot / 2, 1)
        if day.compliance is None:
            if segment:
                chart.lines.append(" ".join(segment))
            segment = []
        else:
            y = round(bottom - plot_height * day.compliance, 1)
            segment.append(f"{centre},{y}")
            chart.points.append(ChartPoint(x=centre, y=y, day=day))
        # Weekly labels counted back from today, so the last day is always labelled.
        if (len(days) - 1 - index) % 7 == 0:
            chart.x_labels.append(ChartLabel(x=centre, y=height - 8, text=day.day.strftime("%d %b")))
    if segment:
        chart.lines.append(" ".join(segment))
    for fraction in (0.0, 0.5, 1.0):
        y = round(bottom - plot_height * fraction, 1)
        chart.gridlines.append(y)
        chart.share_labels.append(ChartLabel(x=right + 6, y=y + 4, text=f"{fraction * 100:.0f}%"))
        chart.volume_labels.append(ChartLabel(x=left - 6, y=y + 4, text=f"{max_volume * fraction:.0f}"))
    return chart


# --- Lists ------------------------------------------------------------------------------


class LocalTime:
    """A moment in the viewer's time zone, as the lists show it: formatted once per row in Python
    (the same output as the template's `date` filter, without its cost on every row)."""

    def __init__(self, moment: datetime):
        self.moment = timezone.localtime(moment)

    @cached_property
    def iso(self) -> str:
        return dateformat.format(self.moment, "c")

    @cached_property
    def display(self) -> str:
        return times.format_time(self.moment, "j M, H:i")


# A number no question id reaches, reversed in its place and then swapped for each row's id:
# the lists need dozens of URLs per page, and reverse() is the costly part of each.
_ID_SLOT = 987654321987


def _url_for_any_id(url_with_slot: str) -> Callable[[int], str]:
    head, slot, tail = url_with_slot.rpartition(str(_ID_SLOT))
    if not slot:
        raise ValueError(f"{url_with_slot!r} does not carry the id")
    return lambda pk: f"{head}{pk}{tail}"


def question_admin_urls() -> Callable[[int], str]:
    """A function from a question id to its change page in the staff admin (one reverse() for all)."""
    try:
        url = reverse("admin:consultations_question_change", args=[_ID_SLOT])
    except NoReverseMatch:
        # Same place by the admin's URL convention, should the model not be registered yet.
        url = f"{reverse('admin:index')}consultations/question/{_ID_SLOT}/change/"
    return _url_for_any_id(url)


def question_admin_url(question_id: int) -> str:
    """The question's change page in the staff admin."""
    return question_admin_urls()(question_id)


@dataclass(frozen=True)
class DoctorChoice:
    pk: int
    name: str


@dataclass(frozen=True)
class ReassignOption:
    value: str
    label: str
    selected: bool


@dataclass
class AttentionItem:
    """An at-risk or breached question, with the doctors it may be reassigned to."""

    question: Question
    seconds_left: float
    doctors: list[DoctorChoice]
    admin_url: str = ""
    reassign_url: str = ""
    # Set when reassigning this question was refused: shown next to its field, the choice kept.
    error: str = ""
    selected: str = ""

    @property
    def time_display(self) -> str:
        suffix = "left" if self.seconds_left >= 0 else "over"
        return f"{format_duration(self.seconds_left)} {suffix}"

    @cached_property
    def due(self) -> LocalTime:
        return LocalTime(self.question.clock_due_at)

    @property
    def options(self) -> list[ReassignOption]:
        holder = self.question.claimed_by_id
        return [
            ReassignOption(
                value=str(doctor.pk),
                label=f"{doctor.name} (holds it now)" if doctor.pk == holder else doctor.name,
                selected=bool(self.error) and self.selected == str(doctor.pk),
            )
            for doctor in self.doctors
        ]


def reassign_choices(specialty_ids) -> dict[int, list[DoctorChoice]]:
    """Verified, active doctors of each specialty, in one query over the M2M table."""
    through = DoctorProfile.specialties.through
    choices = defaultdict(list)
    for specialty_id, doctor_id, name in (
        through.objects.filter(
            specialty_id__in=set(specialty_ids),
            doctorprofile__is_verified=True,
            doctorprofile__user__is_active=True,
        )
        .order_by("doctorprofile__display_name", "doctorprofile_id")
        .values_list("specialty_id", "doctorprofile_id", "doctorprofile__display_name")
    ):
        choices[specialty_id].append(DoctorChoice(pk=doctor_id, name=name))
    return choices


def _attention_questions(state: str, now: datetime, limit: int) -> list[Question]:
    # The most urgent ids first, then the joins for those rows only: joining the
    # patient, specialty and doctor of every late question before keeping 25
    # costs three lookups per late question (a thousand in a bad hour).
    most_urgent = (
        _open_questions().filter(clock_state_filter(state, now)).order_by("clock_due_at", "pk").values("pk")[:limit]
    )
    # Only what the list shows: patients appear as "Patient #CODE", so neither
    # their names nor their questions' text are loaded.
    return list(
        Question.objects.filter(pk__in=most_urgent)
        .select_related("specialty", "patient", "claimed_by")
        .only(
            "pk",
            "is_urgent",
            "is_follow_up",
            "clock_due_at",
            "claimed_at",
            "specialty__name",
            "patient__patient_code",
            "claimed_by__display_name",
        )
        .order_by("clock_due_at", "pk")
    )


def attention_lists(now: datetime, limit: int = LIST_LIMIT) -> dict[str, list[AttentionItem]]:
    """{"breached": [...], "at_risk": [...]}: most overdue / closest to due first."""
    questions = {state: _attention_questions(state, now, limit) for state in (sla.BREACHED, sla.AT_RISK)}
    choices = reassign_choices(q.specialty_id for items in questions.values() for q in items)
    admin_url = question_admin_urls()
    reassign_url = _url_for_any_id(reverse("staff:sla_reassign", args=[_ID_SLOT]))
    return {
        state: [
            AttentionItem(
                question=q,
                seconds_left=(q.clock_due_at - now).total_seconds(),
                doctors=choices.get(q.specialty_id, []),
                admin_url=admin_url(q.pk),
                reassign_url=reassign_url(q.pk),
            )
            for q in items
        ]
        for state, items in questions.items()
    }


@dataclass
class ForecastItem(AttentionItem):
    """A question forecast to breach within the hour: its row, why, and when it would be answered."""

    forecast: forecast_model.Forecast | None = None

    @cached_property
    def expected(self) -> LocalTime | None:
        expected_at = self.forecast.expected_at if self.forecast else None
        return LocalTime(expected_at) if expected_at else None


def likely_to_breach(now: datetime, limit: int = LIST_LIMIT) -> tuple[list[ForecastItem], int]:
    """The questions forecast to breach in the next hour (consultations.forecast), soonest
    due first, as reassignable rows, and how many there are. Seven queries in all, whatever
    the number of open questions."""
    likely = forecast_model.likely_to_breach(forecast_model.open_forecast(now), now)
    shown = {item.question_id: item for item in likely[:limit]}
    questions = (
        Question.objects.filter(pk__in=list(shown))
        .select_related("specialty", "patient", "claimed_by")
        .only(
            "pk",
            "is_urgent",
            "is_follow_up",
            "clock_due_at",
            "claimed_at",
            "specialty__name",
            "patient__patient_code",
            "claimed_by__display_name",
        )
        .order_by("clock_due_at", "pk")
        if shown
        else []
    )
    questions = list(questions)
    choices = reassign_choices(q.specialty_id for q in questions) if questions else {}
    admin_url = question_admin_urls()
    reassign_url = _url_for_any_id(reverse("staff:sla_reassign", args=[_ID_SLOT]))
    items = [
        ForecastItem(
            question=q,
            seconds_left=(q.clock_due_at - now).total_seconds(),
            doctors=choices.get(q.specialty_id, []),
            admin_url=admin_url(q.pk),
            reassign_url=reassign_url(q.pk),
            forecast=shown[q.pk],
        )
        for q in questions
    ]
    return items, len(likely)


def mark_reassign_error(lists: dict[str, list[AttentionItem]], question_id: int, selected: str, message: str) -> None:
    """Show a refused reassign next to its question's field, with the doctor that was chosen."""
    for items in lists.values():
        for item in items:
            if item.question.pk == question_id:
                item.error, item.selected = message, selected


@dataclass(frozen=True)
class EscalationItem:
    escalation: Escalation
    admin_url: str

    @cached_property
    def created(self) -> LocalTime:
        return LocalTime(self.escalation.created_at)


def latest_escalations(limit: int = ESCALATION_LIMIT) -> list[EscalationItem]:
    """The most recent escalations of any level, newest first, with who was told."""
    admin_url = question_admin_urls()
    return [
        EscalationItem(escalation, admin_url(escalation.question_id))
        for escalation in Escalation.objects.select_related("question__specialty", "question__patient")
        .only(
            "pk",
            "level",
            "is_follow_up",
            "created_at",
            "clock_due_at",
            "recipients",
            "question__id",
            "question__specialty__name",
            "question__patient__patient_code",
        )
        .order_by("-created_at", "-pk")[:limit]
    ]
