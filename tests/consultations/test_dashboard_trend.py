"""The 30-day trend counts each question on the local day of its instant, exactly, across DST changes.

`daily_trend` counts per-day ranges of instants (so PostgreSQL can use its
indexes); these tests hold it to the plain definition, each row grouped by the
local date of its timestamp, on data placed on and around every day boundary.
"""

import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.models import Count, F, Q
from django.db.models.functions import TruncDate
from django.test.utils import CaptureQueriesContext

from consultations import dashboard
from consultations.models import Question, QuestionStatus
from tests.factories import QuestionFactory, UserFactory

pytestmark = pytest.mark.django_db

TICK = timedelta(microseconds=1)
SANTIAGO = zoneinfo.ZoneInfo("America/Santiago")  # changes clocks at local midnight
WARSAW = zoneinfo.ZoneInfo("Europe/Warsaw")  # changes clocks at night, not at midnight


def trend_by_local_date(now, tz, days=dashboard.TREND_DAYS):
    """The definition, computed the slow way: every row grouped by the local date of its timestamp."""
    today = now.astimezone(tz).date()
    first_day = today - timedelta(days=days - 1)
    start = dashboard.local_day_starts(first_day, 1, tz)[0]
    figures = {first_day + timedelta(days=n): [0, 0, 0, 0] for n in range(days)}

    def by_day(queryset, field_name, **aggregates):
        return (
            queryset.order_by()
            .annotate(day=TruncDate(field_name, tzinfo=tz))
            .values("day")
            .annotate(**aggregates)
            .values_list("day", *aggregates)
        )

    received = Question.objects.filter(submitted_at__gte=start, submitted_at__lte=now)
    for day, count in by_day(received, "submitted_at", n=Count("pk")):
        figures[day][0] = count
    answered = Question.objects.filter(first_answered_at__gte=start, first_answered_at__lte=now)
    for day, count, within in by_day(
        answered, "first_answered_at", n=Count("pk"), within=Count("pk", filter=Q(first_answered_at__lte=F("due_at")))
    ):
        figures[day][1:3] = [count, within]
    past_due = Question.objects.filter(
        status=QuestionStatus.OPEN, first_answered_at__isnull=True, due_at__gte=start, due_at__lt=now
    )
    for day, count in by_day(past_due, "due_at", n=Count("pk")):
        figures[day][3] = count
    return figures


def questions_on_every_boundary(now, tz, specialty):
    """Questions received, answered and falling due on, just before and just after each local midnight
    of the window (and of the day before it), and at `now` itself and just after it."""
    today = now.astimezone(tz).date()
    first_day = today - timedelta(days=dashboard.TREND_DAYS)
    boundaries = dashboard.local_day_starts(first_day, dashboard.TREND_DAYS, tz)
    instants = [b + offset for b in boundaries for offset in (-TICK, timedelta(0), TICK)] + [now, now + TICK]
    patient = UserFactory()
    questions = []
    for n, at in enumerate(instants):
        # Received at the instant (answered a little later, or still open).
        questions.append(
            QuestionFactory.build(
                patient=patient,
                specialty=specialty,
                submitted_at=at,
                answered_after=timedelta(minutes=30) if n % 2 else None,
            )
        )
        # First answered at the instant: by the due time (to the microsecond), or one tick late.
        for due_at in (at, at - TICK):
            questions.append(
                QuestionFactory.build(
                    patient=patient,
                    specialty=specialty,
                    submitted_at=at - timedelta(hours=3),
                    due_at=due_at,
                    answered_after=timedelta(hours=3),
                )
            )
        # Falling due at the instant without an answer: waiting for a doctor, or for the patient.
        for status in (QuestionStatus.OPEN, QuestionStatus.INFO_REQUESTED):
            questions.append(
                QuestionFactory.build(
                    patient=patient, specialty=specialty, submitted_at=at - timedelta(hours=4), due_at=at, status=status
                )
            )
    Question.objects.bulk_create(questions)
    return len(instants)


@pytest.mark.parametrize(
    ("tz", "now"),
    [
        (SANTIAGO, datetime(2025, 9, 20, 15, 0, tzinfo=UTC)),  # 7 Sep 2025: midnight skipped (00:00 -> 01:00)
        (SANTIAGO, datetime(2025, 4, 20, 15, 0, tzinfo=UTC)),  # 6 Apr 2025: 23:00-24:00 of the 5th repeated
        (WARSAW, datetime(2025, 10, 30, 12, 0, tzinfo=UTC)),  # 26 Oct 2025: 02:00-03:00 repeated
        (WARSAW, datetime(2025, 4, 10, 22, 30, tzinfo=UTC)),  # 30 Mar 2025: 02:00 -> 03:00; 00:30 local on the 11th
        (UTC, datetime(2025, 3, 10, 0, 0, tzinfo=UTC)),  # now exactly at midnight: today has just begun
    ],
)
def test_trend_matches_grouping_by_local_date_around_every_midnight(specialty, tz, now):
    questions_on_every_boundary(now, tz, specialty)
    expected = trend_by_local_date(now, tz)

    days = dashboard.daily_trend(now, tz)

    assert {day.day: [day.received, day.answered, day.within, day.open_past_due] for day in days} == expected
    # The data reaches every day of the window, so the comparison is not one of empty days.
    assert all(figures[0] and figures[1] and figures[3] for day, figures in expected.items() if day != days[-1].day)


def test_day_starts_follow_the_clock_changes():
    starts = dashboard.local_day_starts(datetime(2025, 9, 6).date(), 2, SANTIAGO)
    # 6 Sep starts at 00:00 -04; 7 Sep has no 00:00, it starts when the clocks jump to 01:00 -03.
    assert [start.astimezone(UTC) for start in starts] == [
        datetime(2025, 9, 6, 4, 0, tzinfo=UTC),
        datetime(2025, 9, 7, 4, 0, tzinfo=UTC),
        datetime(2025, 9, 8, 3, 0, tzinfo=UTC),
    ]
    assert (starts[1].astimezone(UTC) - starts[0].astimezone(UTC)) == timedelta(hours=24)
    assert (starts[2].astimezone(UTC) - starts[1].astimezone(UTC)) == timedelta(hours=23)


def test_trend_reads_the_questions_in_one_statement(specialty):
    questions_on_every_boundary(datetime(2025, 3, 10, 12, 0, tzinfo=UTC), UTC, specialty)
    with CaptureQueriesContext(connection) as queries:
        dashboard.daily_trend(datetime(2025, 3, 10, 12, 0, tzinfo=UTC), WARSAW)
    reading = [query["sql"] for query in queries.captured_queries if Question._meta.db_table in query["sql"]]
    assert len(reading) == 1
    if connection.vendor == "postgresql":
        # Its estimated cost grows with the table: compiling it (JIT) would cost more than running it.
        assert [query["sql"] for query in queries.captured_queries] == ["SET LOCAL jit = off", reading[0]]
