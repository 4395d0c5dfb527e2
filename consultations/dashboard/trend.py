"""The 30-day trend: per calendar day in the viewer's time zone, questions received, answers
given, answers within the guarantee and questions that fell due unanswered."""

import itertools
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from functools import cached_property

from django.db import connection
from django.utils import dateformat, timezone

from consultations.dashboard import clock
from consultations.dashboard.db import POSTGRESQL, implementation, without_jit
from consultations.dashboard.formatting import format_share
from consultations.models import Question, QuestionStatus

TREND_DAYS = 30


@dataclass
class TrendDay:
    day: date
    received: int = 0
    answered: int = 0
    within: int = 0
    open_past_due: int = 0

    @property
    def compliance(self) -> float | None:
        return clock.compliance(self.within, self.answered, self.open_past_due)

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


def _columns() -> tuple[str, dict[str, str]]:
    """The questions' table and its columns, quoted, as `q.<column>`."""
    ops = connection.ops
    names = ("submitted_at", "first_answered_at", "due_at", "status")
    columns = {name: "q." + ops.quote_name(Question._meta.get_field(name).column) for name in names}
    return ops.quote_name(Question._meta.db_table), columns


def _on_the_day(column: str) -> str:
    return f"{column} >= days.day_start AND {column} < days.day_stop AND {column} <= %s"


def _answers_sql(using: str, table: str, answered: str, due: str) -> tuple[str, str, int]:
    """The day's answers and answers within the guarantee: (select list, join, parameters for `now`).

    PostgreSQL counts both from one LATERAL scan of the day's answers; the portable
    form (no LATERAL in SQLite) counts them in two subqueries.
    """
    within = clock.answered_on_time_sql(answered, due)
    # Table and column names come from the model, values are parameters: nothing typed by a user.
    if using == POSTGRESQL:
        join = (
            f"CROSS JOIN LATERAL (SELECT COUNT(*) AS answered, COUNT(*) FILTER (WHERE {within}) AS within "  # noqa: S608
            f"FROM {table} q WHERE {_on_the_day(answered)}) AS answers"
        )
        return "answers.answered, answers.within", join, 1
    select = (
        f"(SELECT COUNT(*) FROM {table} q WHERE {_on_the_day(answered)}), "  # noqa: S608
        f"(SELECT COUNT(*) FROM {table} q WHERE {_on_the_day(answered)} AND {within})"
    )
    return select, "", 2


def trend_sql(starts: list[datetime], now: datetime, using: str | None = None) -> tuple[str, list]:
    """The whole trend in one statement: a row per day (received, answered, answered within the
    guarantee) and a row per day with open questions that fell due unanswered.

    Each day is a range of instants, counted by subqueries correlated to that
    day's row of a VALUES list. PostgreSQL plans such a range of parameters as a
    narrow index range whatever the table's size, so the cost follows the
    questions of the 30 days, with no time-zone arithmetic and no hashing per
    question: received through `question_submitted_idx` (an index-only count
    once the table is vacuumed), answered through `question_answered_idx`, which
    also holds due_at, so both of that day's counts come from one index-only
    LATERAL scan. (A plain join of the days
    to the questions is not safe: its estimate can tip the planner into a
    sequential scan compared against every day. One BitmapOr scan of received
    OR answered per day measured about the same, slightly faster at 10^5
    stored and slower at 10^6; separate ranges can each become index-only.)
    The portable form, without LATERAL, counts answers in two subqueries. The open
    questions past due are few (they sit in the partial queue index), so they are
    joined to the days directly. Plain SQL because the ORM cannot join a list of
    ranges; it runs on SQLite too.
    """
    ops = connection.ops
    table, column = _columns()
    submitted, answered, due = column["submitted_at"], column["first_answered_at"], column["due_at"]
    until = ops.adapt_datetimefield_value(now)
    days_params = []
    for index, (start, stop) in enumerate(itertools.pairwise(starts)):
        days_params += [index, ops.adapt_datetimefield_value(start), ops.adapt_datetimefield_value(stop)]
    received = f"(SELECT COUNT(*) FROM {table} q WHERE {_on_the_day(submitted)})"  # noqa: S608
    answers, answers_join, answers_nows = _answers_sql(implementation(using), table, answered, due)
    sql = (
        f"WITH days (day_index, day_start, day_stop) AS (VALUES {', '.join(['(%s, %s, %s)'] * (len(starts) - 1))}) "  # noqa: S608
        f"SELECT 'day', days.day_index, {received}, {answers} FROM days {answers_join} "
        "UNION ALL "
        "SELECT 'open_past_due', days.day_index, COUNT(*), 0, 0 "
        f"FROM days INNER JOIN {table} q ON {due} >= days.day_start AND {due} < days.day_stop "
        f"WHERE {column['status']} = %s AND {answered} IS NULL AND {clock.past_due_sql(due, '%s')} "
        "GROUP BY days.day_index"
    )
    return sql, [*days_params, until, *[until] * answers_nows, QuestionStatus.OPEN.value, until]


def daily_trend(now: datetime, tz: tzinfo, days: int = TREND_DAYS, using: str | None = None) -> list[TrendDay]:
    """Volume and compliance per calendar day (in `tz`) for the last `days` days, today included.

    A day's compliance uses the period definitions: answers given that day, and
    questions that fell due that day and are still unanswered. All of it comes
    from one statement (`trend_sql`, by the implementation `using`, default the database's own).
    """
    today = timezone.localtime(now, tz).date()
    first_day = today - timedelta(days=days - 1)
    trend = [TrendDay(day=first_day + timedelta(days=offset)) for offset in range(days)]
    sql, params = trend_sql(local_day_starts(first_day, days, tz), now, using)
    with without_jit(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    for kind, index, count, answered, within in rows:
        day = trend[index]
        if kind == "day":
            day.received, day.answered, day.within = int(count), int(answered), int(within)
        else:
            day.open_past_due = int(count)
    return trend
