"""Single e-mails reach the workers through the hand-over list (consultations.notifications.
enqueue_delivery): one Celery message per run of e-mails instead of one per e-mail, and
no e-mail left behind: each is sent once, by the message that takes the list after it."""

from unittest import mock

import pytest
from django.core import mail

from consultations import notifications, tasks
from consultations.models import Notification, NotificationStatus
from tests.consultations.test_outbox import queue
from tests.factories import QuestionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _redis():
    if notifications._listing() is None:
        pytest.skip("the hand-over list needs Redis as the broker (set REDIS_URL)")


@pytest.fixture
def question(specialty, patient):
    return QuestionFactory(specialty=specialty, patient=patient, is_urgent=False)


def queued_while_the_worker_is_busy(question, count, django_capture_on_commit_callbacks, name="handover"):
    """`count` rows committed one by one while no worker runs: their on-commit hand-overs
    run, the messages they publish are caught, not run."""
    published = []
    with mock.patch.object(notifications.send_listed_notifications, "delay", lambda: published.append(1)):
        rows = []
        for n in range(count):
            with django_capture_on_commit_callbacks(execute=True):
                rows.append(queue(question, f"{name}:{n}"))
    return rows, published


def test_one_message_carries_every_email_listed_before_it_runs(question, django_capture_on_commit_callbacks):
    rows, published = queued_while_the_worker_is_busy(question, 5, django_capture_on_commit_callbacks)
    assert len(published) == 1  # before: five task messages

    assert tasks.send_listed_notifications() == 5  # the one message's task
    assert len(mail.outbox) == 5
    assert set(Notification.objects.filter(pk__in=[r.pk for r in rows]).values_list("status", flat=True)) == {
        NotificationStatus.SENT
    }
    assert tasks.send_listed_notifications() == 0  # a second delivery of that message sends nothing


def test_an_email_listed_after_the_take_publishes_its_own_message(question, django_capture_on_commit_callbacks):
    queued_while_the_worker_is_busy(question, 2, django_capture_on_commit_callbacks)
    taken = notifications.take_listed()  # a worker has just taken the list, and not sent yet
    assert len(taken) == 2
    later, published = queued_while_the_worker_is_busy(question, 1, django_capture_on_commit_callbacks, "later")
    assert len(published) == 1  # the list was empty again: the later e-mail does not wait on the taken run
    assert notifications.take_listed() == [later[0].pk]


def test_a_failed_publish_leaves_the_emails_to_the_resend_and_the_next_one_publishes(
    question, django_capture_on_commit_callbacks
):
    def broker_down():
        raise ConnectionError("broker down")

    with mock.patch.object(notifications.send_listed_notifications, "delay", broker_down):
        with django_capture_on_commit_callbacks(execute=True):
            stranded = queue(question, "stranded")
    # The list was emptied: without that, every later e-mail would wait for a message that never comes.
    _, published = queued_while_the_worker_is_busy(question, 1, django_capture_on_commit_callbacks, "later")
    assert len(published) == 1
    assert tasks.resend_pending_notifications() == 2  # the stranded row is in the outbox: sent
    assert Notification.objects.get(pk=stranded.pk).status == NotificationStatus.SENT
    assert len(mail.outbox) == 2


def test_the_scheduled_resend_empties_a_list_whose_message_was_lost(question, django_capture_on_commit_callbacks):
    rows, published = queued_while_the_worker_is_busy(question, 3, django_capture_on_commit_callbacks)
    assert len(published) == 1  # ... and that message is lost
    assert tasks.resend_pending_notifications() == 3
    _, published = queued_while_the_worker_is_busy(question, 1, django_capture_on_commit_callbacks, "later")
    assert len(published) == 1  # the next e-mail no longer waits for the lost message
    assert tasks.send_listed_notifications() == 1
    assert len(mail.outbox) == 4


def test_with_a_live_worker_each_email_is_sent_once(question, django_capture_on_commit_callbacks):
    """Celery eager mode (the tests' worker): the first e-mail's message runs at once."""
    for n in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            queue(question, f"live:{n}")
    assert len(mail.outbox) == 3
    assert tasks.resend_pending_notifications() == 0


def test_a_broker_failure_leaves_the_email_to_the_resend_without_a_second_wait(
    question, django_capture_on_commit_callbacks
):
    client, _ = notifications._listing()
    with (
        mock.patch.object(type(client), "rpush", side_effect=TimeoutError("Redis does not answer")),
        mock.patch.object(notifications.send_notification, "delay") as publish_one,
        mock.patch.object(notifications.send_listed_notifications, "delay") as publish_listed,
        django_capture_on_commit_callbacks(execute=True),
    ):
        row = queue(question, "hung")
    publish_one.assert_not_called()  # the list is on the broker: publishing would wait again
    publish_listed.assert_not_called()
    assert tasks.resend_pending_notifications() == 1
    assert Notification.objects.get(pk=row.pk).status == NotificationStatus.SENT


def test_without_a_redis_broker_each_email_has_its_own_message(settings, question, django_capture_on_commit_callbacks):
    settings.CELERY_BROKER_URL = "filesystem://"
    with (
        mock.patch.object(notifications.send_notification, "delay") as publish_one,
        django_capture_on_commit_callbacks(execute=True),
    ):
        rows = [queue(question, f"local:{n}") for n in range(2)]
    assert [call.args for call in publish_one.call_args_list] == [(rows[0].pk,), (rows[1].pk,)]
