"""Sweeps running at once share a backlog (issue 17): each claims its own rows, keeps
going while any are due within its time budget, and a backlog brings in helpers."""

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from consultations import sweep
from consultations.models import Escalation, EscalationLevel, Notification, Question
from tests.consultations.sweep_support import sla_staff_member, unsaved_questions

ON_POSTGRESQL = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
needs_postgresql = pytest.mark.skipif(
    not ON_POSTGRESQL, reason="row locks and concurrent transactions need PostgreSQL (DATABASE_URL=postgres://...)"
)
BREACH = next(t for t in sweep.TRANSITIONS if t.key == EscalationLevel.BREACHED)


def overdue(count, specialty, patient, now, minutes_late=60):
    """`count` questions past due (most overdue first by id), warned earlier, not breached."""
    rows = []
    for number in range(count):
        late = timedelta(hours=4, minutes=minutes_late - number % 50)
        rows += unsaved_questions(
            1, specialty=specialty, patient=patient, started_at=now - late, warned_at=now - timedelta(hours=1)
        )
    return [question.pk for question in Question.objects.bulk_create(rows)]


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_claim_skips_the_rows_another_transaction_claimed(specialty, patient):
    now = timezone.now()
    ids = overdue(30, specialty, patient, now)
    claimed, release = threading.Event(), threading.Event()
    first = []

    def claim_and_hold():
        try:
            with transaction.atomic():
                first.extend(sweep.claim_batch(BREACH, now, 10))
                claimed.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    holder = threading.Thread(target=claim_and_hold)
    holder.start()
    try:
        assert claimed.wait(timeout=10)
        started = time.monotonic()
        with transaction.atomic():
            second = sweep.claim_batch(BREACH, now, 10)
            third = sweep.claim_batch(BREACH, now, 100)  # the same transaction already holds `second`
        elapsed = time.monotonic() - started
    finally:
        release.set()
        holder.join(timeout=30)

    assert elapsed < 5, "a claim waited for rows another transaction holds"
    assert len(first) == len(second) == 10
    assert not set(first) & set(second)
    # Most overdue first, among the rows nobody else holds.
    due = dict(Question.objects.filter(pk__in=ids).values_list("pk", "clock_due_at"))
    assert max(due[pk] for pk in first) <= min(due[pk] for pk in second)
    assert set(third) == set(ids) - set(first)  # a lock of one's own does not hide a row


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_each_escalate_part_of_a_backlog_and_nothing_twice(specialty, senior_doctor, patient):
    """Before issue 17 the second sweep found the first one's rows locked and left: one did everything."""
    sla_staff_member()
    now = timezone.now()
    ids = overdue(120, specialty, patient, now)
    slowed = sweep.escalate_batch

    def escalate_slowly(*args, **kwargs):
        time.sleep(0.05)  # a batch takes a while, as a real one of 500 does: the sweeps overlap
        return slowed(*args, **kwargs)

    barrier = threading.Barrier(2)
    results, errors = [], []

    def one_sweep():
        try:
            barrier.wait(timeout=10)
            results.append(sweep.run_sweep(now=now, batch_size=10))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sweep, "escalate_batch", escalate_slowly)
        threads = [threading.Thread(target=one_sweep) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)

    assert errors == []
    assert sorted(result.breached > 0 for result in results) == [True, True], [r.breached for r in results]
    assert sum(result.breached for result in results) == len(ids)
    assert not any(result.capped for result in results)
    levels = Counter(Escalation.objects.values_list("question_id", "level"))
    assert levels == {(pk, EscalationLevel.BREACHED): 1 for pk in ids}
    per_recipient = Counter(Notification.objects.values_list("question_id", "kind", "to_email"))
    assert len(per_recipient) == 3 * len(ids)  # staff, senior, the patient's apology
    assert set(per_recipient.values()) == {1}


@pytest.mark.django_db
def test_a_sweep_keeps_going_while_work_is_due_then_stops_at_its_time_budget(specialty, patient, monkeypatch):
    now = timezone.now()
    overdue(50, specialty, patient, now)
    ticks = iter(range(1000))
    monkeypatch.setattr(sweep, "clock", lambda: float(next(ticks)))  # one "second" per look at the clock

    # Budget of 3.5 "seconds": the deadline is read once, then before each batch.
    first = sweep.run_sweep(now=now, batch_size=10, budget_seconds=3.5)
    assert (first.breached, first.capped) == (30, True)

    # No fixed cap on batches: with time to spare, a sweep takes the whole backlog.
    second = sweep.run_sweep(now=now, batch_size=10, budget_seconds=100)
    assert (second.breached, second.capped) == (20, False)
    assert Question.objects.filter(breached_at__isnull=True).count() == 0


@pytest.mark.django_db
def test_a_full_batch_calls_for_help_once_and_a_small_one_does_not(specialty, patient):
    now = timezone.now()
    overdue(25, specialty, patient, now)
    calls = []

    sweep.run_sweep(now=now, batch_size=10, on_backlog=lambda: calls.append("help"))
    assert calls == ["help"]

    overdue(3, specialty, patient, now)
    sweep.run_sweep(now=now, batch_size=10, on_backlog=lambda: calls.append("again"))
    assert calls == ["help"]


def test_helpers_are_queued_up_to_the_parallel_setting_and_expire_with_the_interval(settings):
    settings.SLA_SWEEP_PARALLEL, settings.SLA_SWEEP_SECONDS = 3, 30
    sent = []
    assert sweep.queue_helpers(lambda **options: sent.append(options)) == 2
    assert sent == [{"expires": 30.0}] * 2

    settings.SLA_SWEEP_PARALLEL = 1
    assert sweep.queue_helpers(lambda **options: sent.append(options)) == 0


def test_a_broker_failure_leaves_the_sweep_working_alone(settings):
    settings.SLA_SWEEP_PARALLEL = 4
    attempts = []

    def broken(**options):
        attempts.append(options)
        raise ConnectionError("broker down")

    assert sweep.queue_helpers(broken) == 0
    assert len(attempts) == 1  # not retried against a dead broker


@pytest.mark.django_db
def test_the_beat_sweep_queues_helpers_that_do_not_queue_more(specialty, patient, monkeypatch, settings):
    from consultations import tasks

    settings.SLA_SWEEP_PARALLEL, settings.SLA_SWEEP_BATCH_SIZE = 3, 5
    overdue(12, specialty, patient, timezone.now())
    queued = []
    monkeypatch.setattr(tasks.run_sla_sweep, "apply_async", lambda **options: queued.append(options))

    tasks.run_sla_sweep()
    assert [options["kwargs"] for options in queued] == [{"fan_out": False}] * 2

    overdue(12, specialty, patient, timezone.now())
    tasks.run_sla_sweep(fan_out=False)
    assert len(queued) == 2


@pytest.mark.django_db
def test_a_sweep_out_of_time_with_work_left_queues_its_successor_at_once(specialty, patient, monkeypatch, settings):
    from consultations import tasks

    settings.SLA_SWEEP_PARALLEL, settings.SLA_SWEEP_BATCH_SIZE = 2, 5
    overdue(30, specialty, patient, timezone.now())
    queued = []
    monkeypatch.setattr(tasks.run_sla_sweep, "apply_async", lambda **options: queued.append(options))
    monkeypatch.setattr(sweep, "SWEEP_BUDGET_SECONDS", 0)

    tasks.run_sla_sweep(fan_out=False)  # nothing claimed: the budget was spent before the first batch
    assert [options["kwargs"] for options in queued] == [{"fan_out": False}]

    monkeypatch.setattr(sweep, "SWEEP_BUDGET_SECONDS", 100)
    tasks.run_sla_sweep(fan_out=False)  # the rest, within its budget: no successor
    assert len(queued) == 1
    assert Question.objects.filter(breached_at__isnull=True).count() == 0
