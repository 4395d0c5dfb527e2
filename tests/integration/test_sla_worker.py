"""The engine for real: Celery beat schedules the sweep, a worker consuming from Redis runs it
against PostgreSQL, the escalation is recorded and its e-mails are sent."""

from datetime import timedelta

import pytest
from django.utils import timezone

from consultations import sla
from consultations.models import Escalation, EscalationLevel, Notification, NotificationStatus, SweepRun
from tests.consultations.sweep_support import question_started, sla_staff_member
from tests.integration.conftest import requires_postgres_and_redis_server, wait_for

pytestmark = [pytest.mark.integration, requires_postgres_and_redis_server, pytest.mark.django_db(transaction=True)]


def finished_runs() -> int:
    return SweepRun.objects.filter(finished_at__isnull=False).count()


def test_beat_scheduled_sweep_in_a_worker_escalates_a_late_question_once_and_emails_it(
    celery_stack, specialty, senior_doctor
):
    sla_staff_member()
    stack = celery_stack()
    # Beat -> Redis -> worker -> database: the heartbeat appears without the test running anything.
    wait_for(lambda: finished_runs() >= 1, "a beat-scheduled sweep to finish", 25, logs=stack.logs)
    now = timezone.now()
    question = question_started(now - sla.answer_window() + timedelta(seconds=2), specialty, warned_at=now)

    escalation = wait_for(
        lambda: Escalation.objects.filter(question=question, level=EscalationLevel.BREACHED).first(),
        "the breach escalation",
        20,
        logs=stack.logs,
    )
    wait_for(
        lambda: Notification.objects.filter(question=question, status=NotificationStatus.SENT).count() == 3,
        "both breach e-mails and the patient's apology to be sent",
        20,
        logs=stack.logs,
    )

    assert escalation.created_at > question.clock_due_at
    assert sorted(escalation.recipients) == ["senior@example.com", "sla.staff@example.com"]
    run = SweepRun.objects.get(pk=escalation.sweep_id)
    assert (run.breached, run.host != "") == (1, True)
    assert "consultations.tasks.run_sla_sweep" in stack.log("worker")
    # A few more sweeps change nothing: one escalation, one e-mail per recipient.
    runs = finished_runs()
    wait_for(lambda: finished_runs() >= runs + 3, "three more sweeps", 15, logs=stack.logs)
    assert Escalation.objects.filter(question=question).count() == 1
    emails = [m for m in stack.emails() if f"#{question.pk}" in m["Subject"]]
    breached = [m for m in emails if m["Subject"].startswith("Breached: question #")]
    assert sorted(m["To"] for m in breached) == ["senior@example.com", "sla.staff@example.com"]
    [apology] = [m for m in emails if m not in breached]
    assert apology["To"] == question.patient.email and apology["Subject"].startswith("We are sorry")
