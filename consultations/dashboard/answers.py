"""The period's answers: how many, how many within the guarantee, and the median and 90th
percentile of the time to first answer, overall, per specialty and per doctor.

Two implementations giving the same figures (tests/consultations/test_dashboard_agreement.py):
PostgreSQL's reads them with one grouped aggregate (`percentile_cont(...) WITHIN GROUP`
over GROUPING SETS); the portable one, for databases without percentile_cont (SQLite),
groups the counts in the database and interpolates the percentiles here with PostgreSQL's
formula from one query ordered by answer time.
"""

import math
from collections import defaultdict

from django.db import connection
from django.db.models import Count, F, Q

from consultations.dashboard import clock
from consultations.dashboard.db import PORTABLE, POSTGRESQL, AnswerSeconds, implementation
from consultations.models import Question

# The time to first answer is reported as its median and 90th percentile.
PERCENTILES = (0.5, 0.9)
ANSWER_COUNTS = ("answered", "within", "answered_late")

# {(scope, pk): {"answered": …, "within": …, "answered_late": …, "median_seconds": …, "p90_seconds": …}}
# for scope "all" (pk None), "specialty" and "doctor".
AnswerFigures = dict[tuple[str, int | None], dict]


def answer_aggregates(answered: Q) -> dict:
    """The counts of the answers selected by `answered`, as aggregates of a grouped query."""
    return {
        "answered": Count("pk", filter=answered),
        "within": Count("pk", filter=answered & clock.answered_on_time_q()),
        "answered_late": Count("pk", filter=answered & clock.answered_late_q()),
    }


def percentile_cont(sorted_values: list[float], fraction: float) -> float | None:
    """PostgreSQL's percentile_cont on an ascending list: linear interpolation between ranks."""
    if not sorted_values:
        return None
    position = fraction * (len(sorted_values) - 1)
    lower, upper = math.floor(position), math.ceil(position)
    low, high = sorted_values[lower], sorted_values[upper]
    return low + (high - low) * (position - lower)


def _grouping_sets_sql(answered: Q) -> tuple[str, list]:
    """Counts and percentiles of the answers for every scope at once: GROUPING SETS, which the
    ORM cannot say, over the ORM's own query for the answers (so it selects the very rows the
    other figures count)."""
    # Only what the aggregates need, computed before the sorts: narrow rows sort in less memory.
    answers = (
        Question.objects.filter(answered)
        .order_by()
        .annotate(seconds=AnswerSeconds(), on_time=clock.answered_on_time_q(), late=clock.answered_late_q())
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
    return sql, params


def postgresql_answer_figures(answered: Q) -> AnswerFigures:
    """PostgreSQL: the figures of every scope from one scan sorted once per grouping."""
    # GROUPING() has a bit set for each column a row is not grouped by.
    scopes = {0b11: "all", 0b01: "specialty", 0b10: "doctor"}
    figures = {}
    with connection.cursor() as cursor:
        cursor.execute(*_grouping_sets_sql(answered))
        for grouping, specialty_id, doctor_id, *counts, percentiles in cursor.fetchall():
            scope = scopes[grouping]
            pk = {"all": None, "specialty": specialty_id, "doctor": doctor_id}[scope]
            if scope == "doctor" and pk is None:
                continue  # answers whose doctor is no longer on record belong to no doctor's row
            figures[scope, pk] = dict(zip(ANSWER_COUNTS, counts, strict=True))
            # NULL for the overall row of a period without answers (the empty grouping set always yields a row).
            figures[scope, pk]["median_seconds"], figures[scope, pk]["p90_seconds"] = percentiles or (None, None)
    return figures


def portable_answer_figures(answered: Q) -> AnswerFigures:
    """Any database: the per-doctor counts grouped by the database, and the percentiles
    interpolated here from one query ordered by answer time."""
    figures = {
        ("doctor", row.pop("answered_by")): row
        for row in Question.objects.filter(answered, answered_by__isnull=False)
        .order_by()
        .values("answered_by")
        .annotate(**answer_aggregates(answered))
    }
    times = defaultdict(list)
    rows = (
        Question.objects.filter(answered)
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


_IMPLEMENTATIONS = {POSTGRESQL: postgresql_answer_figures, PORTABLE: portable_answer_figures}


def answer_figures(answered: Q, using: str | None = None) -> AnswerFigures:
    """The answers' figures by the implementation `using` (default: the database's own)."""
    return _IMPLEMENTATIONS[implementation(using)](answered)
