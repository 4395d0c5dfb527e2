"""Database helpers shared by the dashboard's figures."""

from contextlib import contextmanager

from django.db import connection, transaction
from django.db.models import F, FloatField, Func

from consultations.models import Question
from consultations.services import OPEN_STATUSES


class AnswerSeconds(Func):
    """Seconds from submission to the first answer (PostgreSQL)."""

    output_field = FloatField()
    template = "EXTRACT(EPOCH FROM (%(expressions)s))::double precision"
    arg_joiner = " - "

    def __init__(self, **extra):
        super().__init__(F("first_answered_at"), F("submitted_at"), **extra)


@contextmanager
def without_jit():
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


# Where a figure has two implementations: PostgreSQL's (what production runs) and a portable
# one (what SQLite runs; it runs on PostgreSQL too, so CI checks that both agree).
POSTGRESQL = "postgresql"
PORTABLE = "portable"
IMPLEMENTATIONS = (POSTGRESQL, PORTABLE)


def on_postgresql() -> bool:
    return connection.vendor == "postgresql"


def implementation(requested: str | None = None) -> str:
    """`requested`, or by default the database's own: PostgreSQL's there, the portable one elsewhere."""
    if requested is None:
        return POSTGRESQL if on_postgresql() else PORTABLE
    if requested not in IMPLEMENTATIONS:
        raise ValueError(f"Not an implementation: {requested!r}")
    return requested


def open_questions():
    # Restricting to open statuses lets PostgreSQL use the partial queue index:
    # the cost follows the questions waiting, not the questions stored.
    return Question.objects.filter(status__in=OPEN_STATUSES).order_by()
