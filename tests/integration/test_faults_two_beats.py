"""Fault: two beat schedulers run at once (a second deploy, a forgotten process), each
sending the sweep every second to two workers, while 100 questions fall due.

Sweeps then race on the same rows all the time. The conditional updates must
still give each question one at-risk and one breach escalation, with their
e-mails each sent once, and without leaning on the database's unique
constraint (a sweep that hit it would record an error).
"""

from collections import Counter
from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from consultations import sla
from consultations.models import Escalation, EscalationLevel, Notification, NotificationStatus, Question, SweepRun
from tests.consultations.sweep_support import sla_staff_member, unsaved_questions
from tests.integration.conftest import requires_postgres_and_redis_server, wait_for

pytestmark = [pytest.mark.integration, requires_postgres_and_redis_server, pytest.mark.django_db(transaction=True)]

QUESTIONS = 100


def questions_falling_due(specialty, patient, doctor, first_due_in: float, spread: float) -> list[int]:
    """Claimed questions past their warning time, falling due one after another over `spread` seconds."""
    now = timezone.now()
    rows = []
    for number in range(QUESTIONS):
        due_in = timedelta(seconds=first_due_in + spread * number / QUESTIONS)
        started = now + due_in - sla.answer_window()
        rows += unsaved_questions(1, specialty=specialty, patient=patient, started_at=started, claimed_by=doctor)
    return [question.pk for question in Question.objects.bulk_create(rows)]


def sweeps_sent(log: str) -> int:
    return log.count("Sending due task sla-sweep")


def test_two_beats_at_once_still_escalate_each_question_once_per_level_and_email_once(
    cluster, redis_server, specialty, patient, doctor, senior_doctor
):
    sla_staff_member()
    broker = redis_server()
    env = {"SLA_SWEEP_SECONDS": "1", "NOTIFICATION_RESEND_SECONDS": "1"}
    for name in ("worker-1", "worker-2"):
        cluster.worker(name, broker.url, env)
    for name in ("beat-1", "beat-2"):
        cluster.beat(name, broker.url, env)
    wait_for(
        lambda: SweepRun.objects.filter(finished_at__isnull=False).count() >= 2,
        "the first sweeps",
        20,
        logs=cluster.logs,
    )
    before = {name: sweeps_sent(cluster.log(name)) for name in ("beat-1", "beat-2")}

    question_ids = questions_falling_due(specialty, patient, doctor, first_due_in=4, spread=5)
    escalations = Escalation.objects.filter(question_id__in=question_ids)
    wait_for(
        lambda: escalations.filter(level=EscalationLevel.BREACHED).count() == QUESTIONS,
        "every question to be breached",
        25,
        logs=cluster.logs,
    )
    notifications = Notification.objects.filter(question_id__in=question_ids)
    wait_for(
        lambda: not notifications.exclude(status=NotificationStatus.SENT).exists(),
        "every notification to be sent",
        20,
        logs=cluster.logs,
    )
    # Both beats kept the sweeps coming the whole time.
    for name, count in before.items():
        assert sweeps_sent(cluster.log(name)) >= count + 5, f"{name} stopped sending sweeps"

    levels = Counter(escalations.values_list("question_id", "level"))
    assert levels == {
        (pk, level): 1 for pk in question_ids for level in (EscalationLevel.AT_RISK, EscalationLevel.BREACHED)
    }
    # Warned before the due time, breached after it, each by whichever sweep got there first.
    for escalation in escalations.select_related("question"):
        if escalation.level == EscalationLevel.AT_RISK:
            assert escalation.created_at <= escalation.question.clock_due_at
            assert escalation.recipients == ["doctor@example.com"]
        else:
            assert escalation.created_at > escalation.question.clock_due_at
            assert sorted(escalation.recipients) == ["senior@example.com", "sla.staff@example.com"]
    assert SweepRun.objects.aggregate(errors=Sum("errors"))["errors"] == 0
    assert not Question.objects.filter(pk__in=question_ids).exclude(sweep_error="").exists()

    assert Counter(notifications.values_list("kind", "to_email")) == {
        ("sla_at_risk", "doctor@example.com"): QUESTIONS,
        ("sla_breached", "senior@example.com"): QUESTIONS,
        ("sla_breached", "sla.staff@example.com"): QUESTIONS,
        ("breach_apology", "patient@example.com"): QUESTIONS,  # the patient's apology, once per breach
    }
    assert set(notifications.values_list("status", "attempts")) == {(NotificationStatus.SENT, 1)}
    assert cluster.sent_emails() == Counter(notifications.values_list("to_email", "subject"))
