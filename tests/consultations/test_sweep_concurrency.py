"""Exactly once under concurrency: several sweeps racing over the same due questions on PostgreSQL."""

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.db import connections, transaction
from django.utils import timezone

from consultations import sweep
from consultations.models import Escalation, EscalationLevel, Notification, Question, SweepRun
from tests.consultations.sweep_support import sla_staff_member, unsaved_questions
from tests.factories import UserFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="row locks and concurrent transactions need PostgreSQL (set DATABASE_URL=postgres://...)",
    ),
]

SWEEPS = 4
DUE = 200


def run_sweeps_in_parallel(now, count, **kwargs):
    """Start `count` sweeps at the same instant, each in its own thread with its own connection."""
    barrier = threading.Barrier(count)
    results, errors = [], []

    def one_sweep():
        try:
            barrier.wait(timeout=10)
            results.append(sweep.run_sweep(now=now, **kwargs))
        except Exception as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one_sweep) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a sweep hung"
    assert errors == []
    return results


def test_four_parallel_sweeps_escalate_200_due_questions_exactly_once(specialty, senior_doctor, patient):
    sla_staff_member("sla.one@example.com")
    sla_staff_member("sla.two@example.com")
    now = timezone.now()
    Question.objects.bulk_create(
        unsaved_questions(
            DUE,
            specialty=specialty,
            patient=patient,
            started_at=now - timedelta(hours=5),
            warned_at=now - timedelta(hours=2),
        )
    )

    results = run_sweeps_in_parallel(now, SWEEPS, batch_size=20)

    assert sum(result.breached for result in results) == DUE
    assert sum(result.errors for result in results) == 0
    escalations = Escalation.objects.filter(level=EscalationLevel.BREACHED)
    assert escalations.count() == DUE
    assert escalations.values("question").distinct().count() == DUE
    expected = {"senior@example.com", "sla.one@example.com", "sla.two@example.com"}
    notifications = list(
        Notification.objects.filter(kind="sla_breached").values_list("question_id", "to_email", "status")
    )
    assert len(notifications) == DUE * len(expected)
    assert Counter((q, to) for q, to, _ in notifications).most_common(1)[0][1] == 1
    assert {to for _, to, _ in notifications} == expected
    assert {status for _, _, status in notifications} == {"sent"}
    # The e-mails themselves: one per recipient per question, none twice.
    sent = Counter((m.to[0], m.subject) for m in mail.outbox if m.to[0] != patient.email)
    assert len(sent) == DUE * len(expected)
    assert max(sent.values()) == 1
    assert SweepRun.objects.filter(finished_at__isnull=False).count() == SWEEPS


def test_parallel_sweeps_warn_and_breach_a_mixed_queue_exactly_once(specialty, doctor):
    sla_staff_member()
    patient = UserFactory()
    now = timezone.now()
    Question.objects.bulk_create(
        unsaved_questions(60, specialty=specialty, patient=patient, started_at=now - timedelta(hours=3, minutes=30))
        + unsaved_questions(60, specialty=specialty, patient=patient, started_at=now - timedelta(hours=4, minutes=1))
        + unsaved_questions(
            60,
            specialty=specialty,
            patient=patient,
            started_at=now - timedelta(hours=9),
            breached_at=now - timedelta(hours=5),
        )
    )

    results = run_sweeps_in_parallel(now, SWEEPS, batch_size=7)

    totals = Counter()
    for result in results:
        totals.update({"warned": result.warned, "breached": result.breached, "lead": result.lead_escalated})
    assert dict(totals) == {"warned": 60, "breached": 60, "lead": 60}
    per_question_level = Counter(Escalation.objects.values_list("question_id", "level"))
    assert len(per_question_level) == 180
    assert max(per_question_level.values()) == 1


def test_a_sweep_skips_a_row_another_transaction_holds_instead_of_waiting(specialty, senior_doctor, patient):
    """A doctor saving an answer holds the question's row: the sweep escalates the rest
    without waiting, and a later sweep settles the held one, once."""
    sla_staff_member()
    now = timezone.now()
    held, *others = [
        question.pk
        for question in Question.objects.bulk_create(
            unsaved_questions(
                5,
                specialty=specialty,
                patient=patient,
                started_at=now - timedelta(hours=5),
                warned_at=now - timedelta(hours=2),
            )
        )
    ]
    locked, release = threading.Event(), threading.Event()

    def hold_the_row():
        try:
            with transaction.atomic():
                Question.objects.select_for_update().get(pk=held)
                locked.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    try:
        assert locked.wait(timeout=10)
        started = time.monotonic()
        first = sweep.run_sweep(now=now)
        elapsed = time.monotonic() - started
    finally:
        release.set()
        holder.join(timeout=30)

    assert elapsed < 10, "the sweep waited for the held row"
    assert (first.breached, first.errors) == (4, 0)
    assert set(Escalation.objects.values_list("question_id", flat=True)) == set(others)
    second = sweep.run_sweep(now=now + timedelta(seconds=30))
    third = sweep.run_sweep(now=now + timedelta(seconds=60))
    assert (second.breached, third.breached) == (1, 0)
    assert Escalation.objects.filter(question_id=held).count() == 1
