"""Fault: a Celery worker is killed with SIGKILL in the middle of a sweep or of a send.

Nothing of ours runs on SIGKILL: no clean-up, no ack. Recovery rests on the
database alone. The queue message the dead worker held stays unacknowledged
until Redis's visibility timeout (an hour), so it is the beat-scheduled sweeps
and the outbox re-send of another worker that must finish the job: every due
question escalated once, every e-mail sent.
"""

from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from consultations import sla
from consultations.models import (
    Escalation,
    EscalationLevel,
    Notification,
    NotificationStatus,
    Question,
    SweepRun,
)
from tests.consultations.sweep_support import sla_staff_member, unsaved_questions
from tests.integration.conftest import requires_postgres_and_redis_server, wait_for

pytestmark = [pytest.mark.integration, requires_postgres_and_redis_server, pytest.mark.django_db(transaction=True)]

# Short, so the test sees the re-send take over a dead sender's e-mail; longer than any send here.
SEND_LOCK_SECONDS = 4
# Questions per sweep batch in the mid-sweep kill (each escalation is slowed to 0.1 s there).
SWEEP_BATCH = 5


def breached_questions(count: int, specialty, patient) -> list[int]:
    """Questions a minute past due, warned long ago: each owes exactly one breach escalation."""
    now = timezone.now()
    started = now - sla.answer_window() - timedelta(minutes=1)
    rows = unsaved_questions(count, specialty=specialty, patient=patient, started_at=started, warned_at=started)
    return [question.pk for question in Question.objects.bulk_create(rows)]


def all_sent(question_ids, expected: int):
    rows = Notification.objects.filter(question_id__in=question_ids)
    return rows.count() == expected and not rows.exclude(status=NotificationStatus.SENT).exists()


def assert_one_breach_each_and_emailed(cluster, question_ids, copies=None):
    """One breach escalation per question, three notifications each (staff, senior, the
    patient's apology), each e-mailed once, except the (to, subject) pairs in `copies`
    with their own count."""
    breaches = Counter(Escalation.objects.filter(question_id__in=question_ids).values_list("question_id", "level"))
    assert breaches == {(pk, EscalationLevel.BREACHED): 1 for pk in question_ids}
    assert not Question.objects.filter(pk__in=question_ids, breached_at__isnull=True).exists()
    notifications = Notification.objects.filter(question_id__in=question_ids)
    assert Counter(notifications.values_list("to_email", flat=True)) == {
        "sla.staff@example.com": len(question_ids),
        "senior@example.com": len(question_ids),
        "patient@example.com": len(question_ids),
    }
    expected = Counter(notifications.values_list("to_email", "subject"))
    expected.update({pair: count - 1 for pair, count in (copies or {}).items()})
    assert cluster.sent_emails() == expected


@pytest.mark.parametrize(
    "pause, copies_of_the_interrupted_email",
    [
        pytest.param("before", 1, id="killed-before-handing-the-email-over"),
        pytest.param("after", 2, id="killed-after-handing-over-before-marking-it-sent"),
    ],
)
def test_worker_killed_mid_send_leaves_every_email_sent_and_only_the_handed_over_one_twice(
    cluster, redis_server, specialty, patient, senior_doctor, pause, copies_of_the_interrupted_email
):
    """The outbox's guarantee (consultations/notifications.py): every e-mail is sent,
    exactly once, except when its sender dies between handing it over and marking it
    sent. A sender claims a row (attempt 1, locked for NOTIFICATION_SEND_LOCK_SECONDS),
    hands the e-mail to the mail server, then marks the row sent.

    - Killed before handing over: nothing left the building; after the lock expires
      another worker sends it. Exactly once, on attempt 2.
    - Killed after handing over but before marking the row sent: the database cannot
      know the e-mail left, so after the lock expires it is sent again. This narrow
      window is the one place the guarantee is at-least-once: exactly two copies of
      that one e-mail, on attempt 2. Every other e-mail still goes out exactly once.
    """
    sla_staff_member()
    question_ids = breached_questions(5, specialty, patient)
    broker = redis_server()
    stuck = {
        "FAULT_MAIL_PAUSE": pause,
        "FAULT_MAIL_PAUSE_SECONDS": "60",  # an SMTP server that hangs: the worker is killed long before
        "NOTIFICATION_SEND_LOCK_SECONDS": str(SEND_LOCK_SECONDS),
    }
    cluster.worker("worker-1", broker.url, stuck)
    cluster.beat("beat", broker.url, {"NOTIFICATION_SEND_LOCK_SECONDS": str(SEND_LOCK_SECONDS)})

    # The beat-scheduled sweep escalates all five; the worker starts sending and hangs on the first e-mail.
    marker = wait_for(cluster.mail_markers, "worker-1 to be in the middle of a send", 25, 0.02, logs=cluster.logs)
    cluster.kill("worker-1")
    killed_at = timezone.now()

    [[when, to_email, subject]] = marker
    interrupted = Notification.objects.get(to_email=to_email, subject=subject)
    assert when == pause
    assert (interrupted.status, interrupted.attempts) == (NotificationStatus.PENDING, 1)
    held_until = interrupted.locked_until
    assert held_until > killed_at  # held by a sender that no longer exists
    assert SweepRun.objects.filter(breached=5, finished_at__isnull=False).count() == 1
    assert cluster.sent_emails()[(to_email, subject)] == (1 if pause == "after" else 0)

    cluster.worker("worker-2", broker.url, {"NOTIFICATION_SEND_LOCK_SECONDS": str(SEND_LOCK_SECONDS)})
    wait_for(lambda: all_sent(question_ids, 15), "every notification to be sent", 25, logs=cluster.logs)
    rounds = cluster.log("beat").count("resend-pending-notifications")
    wait_for(
        lambda: cluster.log("beat").count("resend-pending-notifications") >= rounds + 2,
        "two more re-send rounds",
        15,
        logs=cluster.logs,
    )

    assert_one_breach_each_and_emailed(
        cluster, question_ids, copies={(to_email, subject): copies_of_the_interrupted_email}
    )
    interrupted.refresh_from_db()
    assert (interrupted.status, interrupted.attempts, interrupted.last_error) == (NotificationStatus.SENT, 2, "")
    assert interrupted.sent_at > held_until  # taken over only once the dead sender's lock expired
    # The rest of the dead sender's batch (issue 17: rows are claimed a batch at a time)
    # was never handed over: each is sent once, on attempt 2, once the lease ended.
    others = Notification.objects.filter(question_id__in=question_ids).exclude(pk=interrupted.pk)
    assert set(others.values_list("status", "last_error")) == {(NotificationStatus.SENT, "")}
    assert set(others.values_list("attempts", flat=True)) <= {1, 2}
    assert not others.filter(attempts=2, sent_at__lte=held_until).exists()


@pytest.fixture
def slow_escalations(transactional_db):
    """Each escalation insert sleeps 0.1 s in PostgreSQL, so a sweep of many questions
    takes long enough to be killed half-way. Dropped again even if the test fails."""

    def drop():
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER IF EXISTS fault_slow_escalation ON consultations_escalation")
            cursor.execute("DROP FUNCTION IF EXISTS fault_slow_escalation()")

    drop()
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION fault_slow_escalation() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_sleep(0.1); RETURN NEW; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER fault_slow_escalation BEFORE INSERT ON consultations_escalation "
            "FOR EACH ROW EXECUTE FUNCTION fault_slow_escalation()"
        )
    yield drop
    drop()


def test_worker_killed_mid_sweep_leaves_every_question_escalated_once_and_emailed_once(
    cluster, redis_server, specialty, patient, senior_doctor, slow_escalations
):
    sla_staff_member()
    question_ids = breached_questions(60, specialty, patient)
    broker = redis_server()
    # A sweep commits a batch at a time: small batches, so there are committed ones to count
    # and a batch in flight to kill.
    small_batches = {"SLA_SWEEP_BATCH_SIZE": str(SWEEP_BATCH)}
    cluster.worker("worker-1", broker.url, small_batches)
    cluster.beat("beat", broker.url)

    escalated = Escalation.objects.filter(question_id__in=question_ids)
    wait_for(lambda: escalated.count() >= 10, "worker-1's sweep to be part-way", 30, 0.05, logs=cluster.logs)
    cluster.kill("worker-1")
    slow_escalations()  # the database is quick again for the next worker

    done_before_kill = escalated.count()
    assert 10 <= done_before_kill < 60, "the worker was killed in the middle of its sweep"
    killed_run = SweepRun.objects.get(finished_at__isnull=True)
    assert killed_run.escalations.count() == done_before_kill  # every committed escalation is whole
    assert done_before_kill % SWEEP_BATCH == 0  # whole batches: the one in flight left nothing behind

    cluster.worker("worker-2", broker.url, small_batches)
    wait_for(lambda: escalated.count() == 60, "the next sweeps to escalate the rest", 25, logs=cluster.logs)
    wait_for(lambda: all_sent(question_ids, 180), "every notification to be sent", 25, logs=cluster.logs)
    rounds = cluster.log("beat").count("sla-sweep")
    wait_for(lambda: cluster.log("beat").count("sla-sweep") >= rounds + 2, "two more sweeps", 15, logs=cluster.logs)

    assert_one_breach_each_and_emailed(cluster, question_ids)
    # The heartbeat tells the truth: the dead sweep never finished, the later ones counted the rest.
    finished = SweepRun.objects.filter(finished_at__isnull=False).values_list("breached", flat=True)
    assert sum(finished) == 60 - done_before_kill
    notifications = Notification.objects.filter(question_id__in=question_ids)
    assert set(notifications.values_list("status", "attempts")) == {(NotificationStatus.SENT, 1)}
