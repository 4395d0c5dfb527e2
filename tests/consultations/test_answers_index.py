"""The answers' index (migration 0012, issue 17): built by hand-written SQL (CONCURRENTLY on
PostgreSQL), so the database is checked against the model, not only the migration state;
and the two readers it serves can count from it alone."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from consultations import forecast
from consultations.dashboard.trend import daily_trend
from consultations.models import Question

pytestmark = pytest.mark.django_db


def test_every_index_of_the_question_model_is_in_the_database_with_its_columns():
    with connection.cursor() as cursor:
        in_database = connection.introspection.get_constraints(cursor, Question._meta.db_table)
    for index in Question._meta.indexes:
        assert index.name in in_database, f"{index.name} is missing from the database"
        columns = [Question._meta.get_field(name.lstrip("-")).column for name in index.fields]
        assert in_database[index.name]["columns"] == columns, index.name
    assert "question_first_answered_idx" not in in_database, "the index 0012 replaces is still there"


def _statements(read) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        read()
    return [query["sql"] for query in captured.captured_queries if "first_answered_at" in query["sql"]]


READERS = {
    "trend": lambda now: daily_trend(now, timezone.get_current_timezone()),
    "pace": lambda now: forecast.minutes_per_answer(now, pace=forecast.postgresql_pace),
}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner")
@pytest.mark.parametrize("reader", READERS)
def test_the_trend_and_the_pace_read_the_answers_index_alone(reader):
    """With sequential and bitmap scans off (the test table is tiny), the statement each
    reader sends finds its answers by an index-only scan of question_answered_idx: every
    column it reads of them is in the index."""
    (sql,) = _statements(lambda: READERS[reader](timezone.now()))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("EXPLAIN " + sql)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Only Scan using question_answered_idx" in plan, plan
