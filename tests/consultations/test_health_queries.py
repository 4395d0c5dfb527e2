"""/healthz's sweep check costs the same with 10 or 10^7 stored questions (issue 17, growth).

Before any sweep has run, the check asks whether a running clock started more
than three intervals ago. Without the open-status condition that question had
no index to use: a sequential scan of the whole table (4 s at 10^7 stored) on
every probe, just when beat is down.
"""

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from consultations.heartbeat import sweep_status
from consultations.models import Question
from tests.consultations.sweep_support import unsaved_questions

pytestmark = pytest.mark.django_db

ON_POSTGRESQL = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


@pytest.mark.skipif(not ON_POSTGRESQL, reason="partial indexes and EXPLAIN plans are checked on PostgreSQL")
def test_the_no_sweep_yet_check_reads_the_open_questions_index_not_the_whole_table(specialty, patient):
    now = timezone.now()
    Question.objects.bulk_create(
        unsaved_questions(5000, specialty=specialty, patient=patient, started_at=now - timedelta(days=3), answered=True)
        + unsaved_questions(2, specialty=specialty, patient=patient, started_at=now - timedelta(hours=1)),
        batch_size=2000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE consultations_question")
    with CaptureQueriesContext(connection) as queries:
        status = sweep_status(now)
    waiting = [q["sql"] for q in queries.captured_queries if 'FROM "consultations_question"' in q["sql"]]

    assert status["ok"] is False  # questions wait and no sweep ever ran
    assert len(waiting) == 1, waiting
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + waiting[0])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "question_queue_idx" in plan, plan
    assert "Seq Scan" not in plan, plan
