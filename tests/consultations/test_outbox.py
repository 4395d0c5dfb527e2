"""The notification outbox: stored with the change that caused it, sent after commit,
retried with backoff, re-sent when a message was lost, never sent twice."""

from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from consultations import notifications, services, tasks
from consultations.models import Notification, NotificationStatus
from tests.factories import QuestionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def question(specialty, patient):
    return QuestionFactory(specialty=specialty, patient=patient, is_urgent=False, title="Itchy rash that won't go away")


def queue(question, key="test:1"):
    return notifications.queue_notification(
        recipient=question.patient,
        to_email=question.patient.email,
        kind="answer_posted",
        context={"question": question, "doctor": None, "url": "http://testserver/q/1/"},
        dedupe_key=key,
        question=question,
    )


class FlakyBackend:
    """An e-mail backend that fails the first `failures` sends, like a busy SMTP relay."""

    failures = 0

    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        if FlakyBackend.failures > 0:
            FlakyBackend.failures -= 1
            raise ConnectionRefusedError("SMTP relay refused the connection")
        mail.outbox.extend(messages)
        return len(messages)


@pytest.fixture
def flaky_mail(settings):
    settings.EMAIL_BACKEND = "tests.consultations.test_outbox.FlakyBackend"
    FlakyBackend.failures = 0
    return FlakyBackend


def test_answer_stores_the_patients_email_and_sends_it_after_commit(
    question, doctor, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.post_answer(question, doctor, "Use an emollient twice a day.")
        row = Notification.objects.get(kind="answer_posted")
        assert (row.status, row.to_email) == (NotificationStatus.PENDING, "patient@example.com")
        assert mail.outbox == []  # nothing leaves before the answer is committed

    for callback in callbacks:
        callback()

    row.refresh_from_db()
    assert row.status == NotificationStatus.SENT
    assert [m.to for m in mail.outbox] == [["patient@example.com"]]


def test_nothing_is_sent_when_the_causing_transaction_rolls_back(question, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            queue(question)
            raise RuntimeError("the answer failed to save")

    assert not Notification.objects.exists()
    assert mail.outbox == []


def test_the_same_message_is_never_queued_twice(question):
    assert queue(question, key="answer_posted:7") is not None
    assert queue(question, key="answer_posted:7") is None
    assert Notification.objects.count() == 1


def test_plain_text_emails_are_not_html_escaped(question):
    row = queue(question)
    assert "won't" in row.subject
    assert "&#x27;" not in row.subject + row.body


def test_failed_send_is_recorded_and_retried_with_growing_backoff(question, flaky_mail):
    flaky_mail.failures = 2
    row = queue(question)
    now = timezone.now()

    assert notifications.deliver(row.pk, now=now) is False
    row.refresh_from_db()
    assert (row.status, row.attempts, row.locked_until) == (NotificationStatus.PENDING, 1, None)
    assert "SMTP relay refused" in row.last_error
    assert row.next_attempt_at == now + timedelta(seconds=30)
    assert notifications.pending_ids(now=now) == []  # not before its backoff

    later = row.next_attempt_at
    assert notifications.deliver(row.pk, now=later) is False
    row.refresh_from_db()
    assert (row.attempts, row.next_attempt_at) == (2, later + timedelta(seconds=60))

    assert notifications.pending_ids(now=row.next_attempt_at) == [row.pk]
    assert notifications.deliver(row.pk, now=row.next_attempt_at) is True
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == (NotificationStatus.SENT, 3, "")
    assert len(mail.outbox) == 1


def test_sender_gives_up_after_max_attempts(question, flaky_mail):
    flaky_mail.failures = notifications.MAX_ATTEMPTS + 5
    row = queue(question)
    now = timezone.now()

    for _ in range(notifications.MAX_ATTEMPTS):
        notifications.deliver(row.pk, now=now)
        now += timedelta(hours=2)

    row.refresh_from_db()
    assert (row.status, row.attempts) == (NotificationStatus.FAILED, notifications.MAX_ATTEMPTS)
    assert notifications.deliver(row.pk, now=now) is False
    assert notifications.pending_ids(now=now) == []
    assert mail.outbox == []


def test_backoff_is_capped_at_an_hour():
    assert notifications.retry_delay(1) == timedelta(seconds=30)
    assert notifications.retry_delay(4) == timedelta(minutes=4)
    assert notifications.retry_delay(20) == timedelta(hours=1)


def test_a_sent_notification_is_never_sent_again(question):
    row = queue(question)
    assert notifications.deliver(row.pk) is True

    assert notifications.deliver(row.pk) is False
    assert tasks.resend_pending_notifications() == 0
    assert len(mail.outbox) == 1


def test_a_notification_held_by_another_sender_is_left_alone_until_its_lock_expires(question):
    row = queue(question)
    now = timezone.now()
    Notification.objects.filter(pk=row.pk).update(locked_until=now + timedelta(minutes=5))

    assert notifications.deliver(row.pk, now=now) is False
    assert notifications.pending_ids(now=now) == []
    # The other sender crashed mid-send: after the lock expires the re-send delivers it.
    later = now + timedelta(minutes=5, seconds=1)
    assert notifications.pending_ids(now=later) == [row.pk]
    assert notifications.deliver(row.pk, now=later) is True
    assert len(mail.outbox) == 1


def test_a_crashed_senders_row_is_taken_over_once_the_configured_send_lock_expires(question, settings):
    settings.NOTIFICATION_SEND_LOCK_SECONDS = 20
    row = queue(question)
    now = timezone.now()
    # A sender claimed the row (attempt 1) and died before sending: nothing marks it.
    Notification.objects.filter(pk=row.pk).update(locked_until=now + timedelta(seconds=20), attempts=1)

    assert notifications.pending_ids(now=now + timedelta(seconds=19)) == []
    assert notifications.pending_ids(now=now + timedelta(seconds=21)) == [row.pk]
    assert notifications.deliver(row.pk, now=now + timedelta(seconds=21)) is True
    row.refresh_from_db()
    assert (row.status, row.attempts, len(mail.outbox)) == (NotificationStatus.SENT, 2, 1)


def test_a_sender_holds_its_row_for_the_configured_send_lock(question, settings):
    settings.NOTIFICATION_SEND_LOCK_SECONDS = 45
    row = queue(question)
    now = timezone.now()
    held = Notification.objects.filter(pk=row.pk)

    def send_mail_seeing_the_lock(*args, **kwargs):
        locks.append(held.values_list("locked_until", flat=True).get())
        return 1

    locks = []
    with mock.patch("consultations.notifications.send_mail", side_effect=send_mail_seeing_the_lock):
        assert notifications.deliver(row.pk, now=now) is True
    assert locks == [now + timedelta(seconds=45)]


def test_periodic_resend_delivers_what_a_lost_message_left_behind(question):
    lost = [queue(question, key=f"lost:{n}") for n in range(3)]  # committed, but no task ever arrived

    assert tasks.resend_pending_notifications() == 3
    assert tasks.resend_pending_notifications() == 0

    assert {row.status for row in Notification.objects.filter(pk__in=[r.pk for r in lost])} == {"sent"}
    assert len(mail.outbox) == 3


def test_send_task_delivers_one_row(question):
    row = queue(question)

    tasks.send_notification.delay(row.pk)
    tasks.send_notification.delay(row.pk)  # a redelivered message

    row.refresh_from_db()
    assert row.status == NotificationStatus.SENT
    assert len(mail.outbox) == 1


def test_resend_now_revives_a_failed_notification_but_never_resends_a_sent_one(
    question, flaky_mail, django_capture_on_commit_callbacks
):
    failed = queue(question, key="failed")
    sent = queue(question, key="sent")
    Notification.objects.filter(pk=failed.pk).update(status=NotificationStatus.FAILED, attempts=8, last_error="x")
    notifications.deliver(sent.pk)

    with django_capture_on_commit_callbacks(execute=True):
        queued = notifications.requeue([failed.pk, sent.pk])

    assert queued == 1
    failed.refresh_from_db()
    assert (failed.status, failed.attempts) == (NotificationStatus.SENT, 1)
    assert len(mail.outbox) == 2
