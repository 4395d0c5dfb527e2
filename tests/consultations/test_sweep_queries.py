"""Cheap: a sweep's cost follows the questions due, not the questions stored."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from consultations import levels, sweep
from consultations.models import Notification, Question
from tests.consultations.sweep_support import sla_staff_member, unsaved_questions

pytestmark = pytest.mark.django_db

ON_POSTGRESQL = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def add_due_questions(specialty, patient, now):
    """Two at risk, two breached, one owed the lead escalation."""
    Question.objects.bulk_create(
        unsaved_questions(2, specialty=specialty, patient=patient, started_at=now - timedelta(hours=3, minutes=30))
        + unsaved_questions(
            2,
            specialty=specialty,
            patient=patient,
            started_at=now - timedelta(hours=5),
            warned_at=now - timedelta(hours=2),
        )
        + unsaved_questions(
            1,
            specialty=specialty,
            patient=patient,
            started_at=now - timedelta(hours=9),
            warned_at=now - timedelta(hours=6),
            breached_at=now - timedelta(hours=5),
        )
    )


def add_answered_questions(count, specialty, patient, now):
    Question.objects.bulk_create(
        unsaved_questions(
            count, specialty=specialty, patient=patient, started_at=now - timedelta(days=3), answered=True
        ),
        batch_size=2000,
    )


def counted_sweep(now):
    with CaptureQueriesContext(connection) as queries:
        result = sweep.run_sweep(now=now)
    return result, len(queries)


def test_sweep_issues_the_same_queries_with_10_and_10000_stored_answered_questions(
    specialty, doctor, senior_doctor, patient
):
    sla_staff_member()
    now = timezone.now()
    add_answered_questions(10, specialty, patient, now)
    add_due_questions(specialty, patient, now)
    small, small_queries = counted_sweep(now)

    add_answered_questions(9_990, specialty, patient, now)
    add_due_questions(specialty, patient, now)
    large, large_queries = counted_sweep(now)

    assert Question.objects.count() == 10_000 + 10
    assert (small.warned, small.breached, small.lead_escalated) == (2, 2, 1)
    assert (large.warned, large.breached, large.lead_escalated) == (2, 2, 1)
    assert small_queries == large_queries


def test_an_idle_sweep_costs_a_handful_of_queries(specialty, patient):
    now = timezone.now()
    add_answered_questions(50, specialty, patient, now)

    result, queries = counted_sweep(now)

    assert (result.warned, result.breached, result.lead_escalated) == (0, 0, 0)
    # The run's row, one lookup per level, the run's counts, the pruning of old quiet runs.
    assert queries == 3 + len(levels.LEVELS)


@pytest.mark.skipif(not ON_POSTGRESQL, reason="partial indexes and EXPLAIN plans are checked on PostgreSQL")
@pytest.mark.parametrize("transition", levels.LEVELS, ids=[level.key for level in levels.LEVELS])
def test_sweep_lookups_use_the_partial_indexes(specialty, patient, transition):
    index = transition.index_name
    now = timezone.now()
    add_answered_questions(10_000, specialty, patient, now)
    add_due_questions(specialty, patient, now)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE consultations_question")

    plan = sweep.candidate_queryset(transition, now)[: settings.SLA_SWEEP_BATCH_SIZE].explain()

    assert index in plan, plan
    assert "Seq Scan" not in plan, plan


def add_breached_questions(count, specialty, patient, now):
    Question.objects.bulk_create(
        unsaved_questions(
            count,
            specialty=specialty,
            patient=patient,
            started_at=now - timedelta(hours=5),
            warned_at=now - timedelta(hours=2),
        )
    )


def counted_sweep_queries(now) -> tuple[sweep.SweepResult, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        result = sweep.run_sweep(now=now)
    return result, [query["sql"] for query in queries.captured_queries]


def without_inserts(statements: list[str]) -> list[str]:
    return [sql.split()[0] for sql in statements if not sql.startswith("INSERT")]


def test_a_batch_issues_the_same_queries_with_10_and_200_due_questions(specialty, senior_doctor, patient):
    """Escalating is set-based: locking, marking, recipients and inserts are a fixed
    number of statements per batch, whatever the batch holds."""
    sla_staff_member("sla.one@example.com")
    sla_staff_member("sla.two@example.com")
    now = timezone.now()
    add_breached_questions(10, specialty, patient, now)
    small, small_queries = counted_sweep_queries(now)

    add_breached_questions(200, specialty, patient, now)
    large, large_queries = counted_sweep_queries(now + timedelta(seconds=1))

    # One batch per level each (the breaches fit in one).
    assert (small.breached, large.breached) == (10, 200)
    assert small.batches == large.batches == len(levels.LEVELS)
    # Two staff, the senior doctor and the patient's apology per question.
    assert Notification.objects.count() == 4 * 210
    if ON_POSTGRESQL:
        assert len(small_queries) == len(large_queries)
    else:
        # SQLite caps a statement at 999 parameters, so Django splits the bulk inserts;
        # everything else is the same.
        assert without_inserts(small_queries) == without_inserts(large_queries)
        assert len(large_queries) - len(small_queries) <= 3 * 200 * 14 // 999 + 2
