"""Issue 17: an outage backlog is shared by every worker. One sweep message reaches two
real Celery workers (PostgreSQL, Redis); the sweep that takes it finds a backlog and
queues a helper, which the idle worker takes: both workers escalate part of it, and
the database shows every question escalated once and every e-mail stored and sent once.

Before issue 17 the second sweep found the first one's batch locked and left, so one
worker did everything (and only 20 batches per sweep).
"""

import ast
import re
from collections import Counter
from datetime import timedelta

from django.utils import timezone

from consultations.models import Escalation, EscalationLevel, Notification, NotificationStatus, Question, SweepRun
from portal.celery import app
from tests.consultations.sweep_support import sla_staff_member, unsaved_questions
from tests.integration.conftest import WORKER_TEST_MARKS, wait_for

pytestmark = WORKER_TEST_MARKS

OVERDUE = 600
BATCH = 20
WORKERS = ("worker-1", "worker-2")
SWEEP_DONE = re.compile(r"run_sla_sweep\[[^\]]+\] succeeded in [\d.]+s: (\{[^}]*\})")


def overdue_backlog(specialty, patient) -> list[int]:
    """Questions that fell due during an outage, over its last hour, warned before it."""
    now = timezone.now()
    rows = []
    for number in range(OVERDUE):
        started = now - timedelta(hours=4, minutes=1 + number % 60)
        rows += unsaved_questions(
            1, specialty=specialty, patient=patient, started_at=started, warned_at=now - timedelta(hours=1)
        )
    return [question.pk for question in Question.objects.bulk_create(rows, batch_size=500)]


def sweeps_that_escalated(log: str) -> list[dict]:
    """The run_sla_sweep results a worker logged that breached at least one question."""
    results = [ast.literal_eval(found) for found in SWEEP_DONE.findall(log)]
    return [result for result in results if result["breached"] > 0]


def test_one_sweep_message_brings_in_the_idle_worker_and_nothing_is_escalated_or_sent_twice(
    cluster, redis_server, specialty, patient, senior_doctor
):
    sla_staff_member()
    broker = redis_server()
    env = {
        "SLA_SWEEP_BATCH_SIZE": str(BATCH),
        "SLA_SWEEP_PARALLEL": "2",
        # The beat stays out of it: one sweep message, sent below, starts the catch-up.
        "SLA_SWEEP_SECONDS": "30",
    }
    for name in WORKERS:
        cluster.worker(name, broker.url, env)
    question_ids = overdue_backlog(specialty, patient)

    with app.connection_for_write(broker.url) as connection:
        app.send_task("consultations.tasks.run_sla_sweep", connection=connection)

    escalations = Escalation.objects.filter(question_id__in=question_ids)
    wait_for(lambda: escalations.count() >= OVERDUE, "every question to be escalated", 90, logs=cluster.logs)
    notifications = Notification.objects.filter(question_id__in=question_ids)
    wait_for(
        lambda: not notifications.exclude(status=NotificationStatus.SENT).exists(),
        "every e-mail to be sent",
        90,
        logs=cluster.logs,
    )

    # Both workers' sweeps did part of the work, recorded on their SweepRun rows.
    by_worker = {name: sweeps_that_escalated(cluster.log(name)) for name in WORKERS}
    assert all(by_worker.values()), {name: len(found) for name, found in by_worker.items()}
    for name, results in by_worker.items():
        for result in results:
            assert SweepRun.objects.get(pk=result["run"]).breached == result["breached"] > 0, name
    assert sum(result["breached"] for results in by_worker.values() for result in results) == OVERDUE
    assert sum(SweepRun.objects.values_list("errors", flat=True)) == 0

    # Duplicates counted from the database: one escalation per question and level, one
    # e-mail row per question, kind and recipient, each sent once (one attempt).
    assert Counter(escalations.values_list("question_id", "level")) == {
        (pk, EscalationLevel.BREACHED): 1 for pk in question_ids
    }
    assert Counter(notifications.values_list("kind", "to_email")) == {
        ("sla_breached", "senior@example.com"): OVERDUE,
        ("sla_breached", "sla.staff@example.com"): OVERDUE,
        ("breach_apology", "patient@example.com"): OVERDUE,
    }
    assert max(Counter(notifications.values_list("question_id", "kind", "to_email")).values()) == 1
    assert set(notifications.values_list("status", "attempts")) == {(NotificationStatus.SENT, 1)}
    # And the mail folder agrees: each e-mail handed over once.
    assert cluster.sent_emails() == Counter(notifications.values_list("to_email", "subject"))
