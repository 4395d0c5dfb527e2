"""The notification outbox: stored with the change that caused it, sent after commit,
retried with backoff, re-sent when a message was lost, never sent twice."""

import contextlib
import sqlite3
import time
from datetime import UTC, timedelta
from unittest import mock

import pytest
from django.conf import settings
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from consultations import notifications, outbox_send, services, tasks
from consultations.models import Notification, NotificationStatus
from portal import database
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


class FlakyBackend(BaseEmailBackend):
    """An e-mail backend that fails the first `failures` sends, like a busy SMTP relay,
    and counts the connections opened to it."""

    failures = 0
    opened = 0

    def open(self):
        FlakyBackend.opened += 1
        return True

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
    FlakyBackend.opened = 0
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
    assert "won't" in row.body
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

    def send_seeing_the_lock(notification):
        locks.append(held.values_list("locked_until", flat=True).get())

    locks = []
    with mock.patch("consultations.outbox_send._send_alone", side_effect=send_seeing_the_lock):
        assert notifications.deliver(row.pk, now=now) is True
    assert locks == [now + timedelta(seconds=45)]


@pytest.mark.parametrize("returning", [True, False], ids=["update-returning", "portable"])
def test_a_claim_leases_the_row_once_in_one_statement_where_the_database_returns_rows(question, returning):
    """Issue 17 (after issue 16 had taken it out): the claim is one UPDATE ... RETURNING where
    the database can (a backlog's drain is thousands of claims), else an UPDATE then a read;
    both lease the row and count the attempt alike."""
    row = queue(question)
    now = timezone.now()
    returns = connection.vendor == "postgresql" or sqlite3.sqlite_version_info >= (3, 35)
    with contextlib.ExitStack() as stack:
        if not returning:
            stack.enter_context(mock.patch.object(outbox_send, "update_returning", return_value=None))
        with CaptureQueriesContext(connection) as queries:
            claimed = outbox_send._claim(row.pk, now)
    expected = ["UPDATE"] if returning and returns else ["UPDATE", "SELECT"]
    assert [query["sql"].split()[0] for query in queries] == expected
    assert (claimed.pk, claimed.attempts, claimed.to_email) == (row.pk, 1, row.to_email)
    assert outbox_send._claim(row.pk, now) is None  # leased: nobody else gets it

    assert notifications.deliver(row.pk, now=now + notifications.send_lock() * 2) is True
    row.refresh_from_db()
    assert (row.status, row.attempts, len(mail.outbox)) == (NotificationStatus.SENT, 2, 1)


PRIVATE_ORM = {"query", "_state", "get_compiler", "as_sql", "chain", "add_update_values", "concrete_fields"}


def test_the_outbox_and_the_sweep_use_no_private_orm_internals():
    """Issue 16: the one helper that builds SQL from the ORM's private query classes,
    portal.database.update_returning, lives apart and says what it pays for; the outbox
    and the sweep only call it."""
    import ast
    from pathlib import Path

    from consultations import sweep

    offenders = set()
    for module in (notifications, outbox_send, sweep):
        for node in ast.walk(ast.parse(Path(module.__file__).read_text())):
            if isinstance(node, ast.Attribute) and node.attr in PRIVATE_ORM:
                offenders.add(f"{module.__name__}: .{node.attr}")
    assert offenders == set()


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


# --- Many at once: the sweep's bulk queue and the batch sender ---------------------------


def outgoing(question, count, kind="answer_posted"):
    return [
        notifications.OutgoingEmail(
            to_email=f"reader{n}@example.com",
            kind=kind,
            subject=f"Message {n}",
            body=f"Body of message {n}: don't worry.",
            dedupe_key=f"bulk:{question.pk}:{n}",
            recipient_id=question.patient_id,
            question_id=question.pk,
        )
        for n in range(count)
    ]


def test_bulk_queued_rows_are_stored_like_single_ones_and_sent_after_commit(
    question, django_capture_on_commit_callbacks
):
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        ids = notifications.queue_notifications(outgoing(question, 3))
        assert mail.outbox == []

    rows = list(Notification.objects.filter(pk__in=ids).order_by("pk"))
    assert [row.pk for row in rows] == ids
    assert [row.to_email for row in rows] == ["reader0@example.com", "reader1@example.com", "reader2@example.com"]
    for row in rows:
        assert (row.status, row.attempts, row.last_error, row.locked_until, row.sent_at) == (
            NotificationStatus.PENDING,
            0,
            "",
            None,
            None,
        )
        assert before <= row.created_at <= timezone.now()
        assert before <= row.next_attempt_at <= timezone.now()
        assert (row.kind, row.recipient, row.question) == ("answer_posted", question.patient, question)
        assert row.body.endswith("don't worry.")
    assert sorted(notifications.pending_ids()) == ids

    for callback in callbacks:
        callback()
    assert {row.status for row in Notification.objects.filter(pk__in=ids)} == {NotificationStatus.SENT}
    assert sorted(m.to[0] for m in mail.outbox) == [f"reader{n}@example.com" for n in range(3)]


def test_bulk_queue_finds_its_ids_where_the_database_does_not_return_them(question, monkeypatch):
    """The portable path (bulk_create, not PostgreSQL's COPY) on a database whose
    bulk INSERT returns no ids (SQLite before 3.35)."""
    monkeypatch.setattr(database, "_copies_rows", lambda connection: False)
    monkeypatch.setattr(type(connection.features), "can_return_rows_from_bulk_insert", False)

    ids = notifications.queue_notifications(outgoing(question, 3))

    assert ids == sorted(Notification.objects.values_list("pk", flat=True))
    assert None not in ids


def test_bulk_queue_rejects_a_message_queued_before(question):
    notifications.queue_notifications(outgoing(question, 2))

    with pytest.raises(IntegrityError), transaction.atomic():
        notifications.queue_notifications(outgoing(question, 3))
    assert Notification.objects.count() == 2


def test_send_notifications_task_sends_each_row_once_over_one_connection(question, flaky_mail):
    ids = notifications.queue_notifications(outgoing(question, 5))

    tasks.send_notifications.delay(ids)
    tasks.send_notifications.delay(ids)  # a redelivered message

    assert len(mail.outbox) == 5
    assert flaky_mail.opened == 1  # and none for the redelivery: nothing was left to send
    assert set(Notification.objects.values_list("status", "attempts")) == {(NotificationStatus.SENT, 1)}


def test_batch_sender_renews_its_connection_every_so_many_emails(question, flaky_mail, monkeypatch):
    monkeypatch.setattr(outbox_send, "MESSAGES_PER_CONNECTION", 2)

    assert notifications.deliver_many(notifications.queue_notifications(outgoing(question, 5))) == 5

    assert flaky_mail.opened == 3


def test_one_failed_send_in_a_batch_is_retried_later_and_the_others_go_out(question, flaky_mail):
    flaky_mail.failures = 1
    ids = notifications.queue_notifications(outgoing(question, 4))
    now = timezone.now()

    assert notifications.deliver_many(ids, now=now) == 3

    failed = Notification.objects.get(pk=ids[0])
    assert (failed.status, failed.attempts, failed.next_attempt_at) == (
        NotificationStatus.PENDING,
        1,
        now + timedelta(seconds=30),
    )
    assert "SMTP relay refused" in failed.last_error
    assert flaky_mail.opened == 2  # the failed connection was dropped and a new one opened
    assert notifications.deliver_many(notifications.pending_ids(now=failed.next_attempt_at)) == 1
    assert len(mail.outbox) == 4


def test_batch_sender_stops_when_the_mail_server_keeps_failing_and_leaves_the_rest_unclaimed(question, flaky_mail):
    flaky_mail.failures = 100
    ids = notifications.queue_notifications(outgoing(question, 8))
    now = timezone.now()

    assert notifications.deliver_many(ids, now=now) == 0

    tried = outbox_send.MAX_CONSECUTIVE_FAILURES
    rows = {row.pk: row for row in Notification.objects.filter(pk__in=ids)}
    assert [rows[pk].attempts for pk in ids] == [1] * tried + [0] * (8 - tried)
    assert {rows[pk].status for pk in ids} == {NotificationStatus.PENDING}
    # The untried rows are due for the re-send at once; the failed ones after their backoff.
    assert sorted(notifications.pending_ids(now=now)) == ids[tried:]
    flaky_mail.failures = 0
    assert tasks.resend_pending_notifications() == 8 - tried
    assert notifications.deliver_many(notifications.pending_ids(now=now + timedelta(seconds=30))) == tried
    assert len(mail.outbox) == 8


# --- Draining a backlog (Issue 13 item 3) --------------------------------------------


def test_one_resend_run_drains_a_backlog_of_several_batches(question, flaky_mail, monkeypatch):
    """Issue 13 item 3: the re-send no longer stops after one batch (200 rows per run,
    one run a minute): it takes batch after batch until nothing is due."""
    monkeypatch.setattr(outbox_send, "CLAIM_BATCH", 4)
    ids = notifications.queue_notifications(outgoing(question, 11))

    with mock.patch.object(notifications, "enqueue_resend") as carry_on:
        assert tasks.resend_pending_notifications() == 11

    carry_on.assert_not_called()  # nothing left: no further run is queued
    assert set(Notification.objects.filter(pk__in=ids).values_list("status", "attempts")) == {
        (NotificationStatus.SENT, 1)
    }
    assert sorted(m.to[0] for m in mail.outbox) == sorted(f"reader{n}@example.com" for n in range(11))
    assert flaky_mail.opened == 1  # one mail connection for the run (renewed every MESSAGES_PER_CONNECTION)


def test_a_resend_run_goes_forward_and_leaves_a_row_freed_behind_it_to_the_next_run(question, monkeypatch):
    """Issue 17: each claim of a run starts after the last one's rows, so it does not walk
    again past the rows the run (or others) sent, which stay in the pending index until
    PostgreSQL vacuums them: after an outage, claiming from the oldest took 0.2-1 s."""
    monkeypatch.setattr(outbox_send, "CLAIM_BATCH", 2)
    ids = notifications.queue_notifications(outgoing(question, 5))
    now = timezone.now()
    Notification.objects.filter(pk__in=ids).update(next_attempt_at=now - timedelta(minutes=1))
    held = Notification.objects.filter(pk=ids[0])
    held.update(locked_until=now + timedelta(minutes=5))  # another sender holds the oldest
    real_compose = outbox_send.compose

    def compose_then_free_the_held_row(*args, **kwargs):
        held.update(locked_until=None)  # ... and gives it back, unsent, once this run began
        return real_compose(*args, **kwargs)

    monkeypatch.setattr(outbox_send, "compose", compose_then_free_the_held_row)
    with CaptureQueriesContext(connection) as captured:
        assert notifications.drain_pending(now=now).sent == 4

    assert sorted(m.to[0] for m in mail.outbox) == [f"reader{n}@example.com" for n in range(1, 5)]
    claims = [sql for sql in (query["sql"] for query in captured.captured_queries) if '"next_attempt_at" <= ' in sql]
    assert len(claims) >= 2 and '"next_attempt_at" >= ' not in claims[0] and '"next_attempt_at" >= ' in claims[1]
    monkeypatch.undo()
    assert notifications.drain_pending(now=now).sent == 1  # the next run starts from the oldest again
    assert Notification.objects.filter(pk__in=ids, status=NotificationStatus.SENT).count() == 5


def test_a_resend_runs_position_is_an_aware_time_whatever_the_database_returns(monkeypatch, settings):
    """SQLite's RETURNING rows come without Django's converters (naive UTC times); read as
    local time west of UTC, the position would lie hours ahead and end the run early."""
    settings.TIME_ZONE = "America/New_York"
    due = timezone.now().replace(tzinfo=None)  # as SQLite returns it: naive, in UTC
    rows = [outbox_send.Claimed(7, "a@example.com", "S", "B", 1, "k:7", due)]
    monkeypatch.setattr(outbox_send, "_claim_batch", lambda *args: rows)
    monkeypatch.setattr(outbox_send, "_send_one", lambda *args: True)
    sender = outbox_send._BatchSender(None, None, 0)
    sender.claim_and_send(None)
    assert sender.after == (due.replace(tzinfo=UTC), 7)


def test_a_resend_run_stops_at_its_time_budget_and_queues_the_next_run(question, monkeypatch):
    """Issue 13 item 3: a run is bounded in time (well inside the task time limit); with
    rows still due it queues the next run at once instead of waiting for beat."""
    monkeypatch.setattr(outbox_send, "CLAIM_BATCH", 3)
    ids = notifications.queue_notifications(outgoing(question, 8))
    seconds = [0.0]
    monkeypatch.setattr(outbox_send, "clock", lambda: seconds[0])
    real_send = outbox_send.compose

    def compose_taking_ten_seconds(*args, **kwargs):
        seconds[0] += 10  # each e-mail takes 10 s: the 30 s budget is spent after three
        return real_send(*args, **kwargs)

    monkeypatch.setattr(outbox_send, "compose", compose_taking_ten_seconds)
    with mock.patch.object(notifications, "enqueue_resend") as carry_on:
        assert tasks.resend_pending_notifications() == 3

    carry_on.assert_called_once_with(count=settings.SLA_SWEEP_PARALLEL)  # every worker joins in
    rows = Notification.objects.filter(pk__in=ids)
    assert rows.filter(status=NotificationStatus.SENT).count() == 3
    # The rest were never claimed: the next run takes them at once.
    assert set(rows.exclude(status=NotificationStatus.SENT).values_list("attempts", "locked_until")) == {(0, None)}
    monkeypatch.undo()
    assert notifications.drain_pending() == notifications.DrainOutcome(sent=5, more=False)
    assert len(mail.outbox) == 8


def test_a_resend_run_stops_when_the_mail_server_keeps_failing(question, flaky_mail, monkeypatch):
    """Issue 13 item 3: draining does not hammer a mail server that is down: after
    MAX_CONSECUTIVE_FAILURES failures the run ends and queues nothing more."""
    monkeypatch.setattr(outbox_send, "CLAIM_BATCH", 2)
    flaky_mail.failures = 100
    ids = notifications.queue_notifications(outgoing(question, 9))

    with mock.patch.object(notifications, "enqueue_resend") as carry_on:
        assert tasks.resend_pending_notifications() == 0

    carry_on.assert_not_called()
    tried = Notification.objects.filter(pk__in=ids, attempts=1).count()
    assert tried == outbox_send.MAX_CONSECUTIVE_FAILURES
    assert mail.outbox == []


# --- Database blips and Message-IDs (Issue 13 item 4) --------------------------------


def test_every_email_carries_a_message_id_derived_from_its_row_the_same_on_each_attempt(question, flaky_mail, settings):
    """Issue 13 item 4: a re-sent e-mail carries the Message-ID of the first attempt, so
    mail servers and clients can tell it is the same message."""
    settings.SITE_URL = "https://portal.example.com"
    first, second = (queue(question, key=f"answer_posted:{n}") for n in range(2))
    flaky_mail.failures = 1
    assert notifications.deliver(first.pk) is False  # the relay refused: retried later
    first.refresh_from_db()
    assert notifications.deliver(first.pk, now=first.next_attempt_at) is True
    assert notifications.deliver_many([second.pk]) == 1

    ids = [message["Message-ID"] for message in (m.message() for m in mail.outbox)]
    assert ids == [notifications.message_id(first), notifications.message_id(second)]
    assert ids[0].startswith(f"<notification.{first.pk}.") and ids[0].endswith("@portal.example.com>")
    assert ids[0] != ids[1]
    # Derived from the row alone: the same on every attempt.
    assert notifications.message_id(Notification.objects.get(pk=first.pk)) == ids[0]


def _kill_own_database_connection():
    """pg_terminate_backend on this process's connection, from another connection, as a
    failover or an administrator would."""
    import psycopg

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    db = connection.settings_dict
    with psycopg.connect(
        dbname=db["NAME"],
        user=db["USER"],
        password=db["PASSWORD"],
        host=db["HOST"] or None,
        port=db["PORT"] or None,
        autocommit=True,  # pg_stat_activity is read afresh by each statement
    ) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        # The backend gets a signal: wait until it is gone, so the next query surely fails.
        deadline = time.monotonic() + 10
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
            assert time.monotonic() < deadline, "the killed backend did not exit"
            time.sleep(0.01)


@pytest.mark.django_db(transaction=True)
def test_a_connection_killed_while_sending_does_not_send_the_email_twice(question, monkeypatch):
    """Issue 13 item 4: the database connection dies after the mail server took the
    e-mail and before the row is marked sent. The sender marks it on a fresh connection,
    so the re-send never sends it again (before: the task failed, and once the lease
    ended the e-mail went out a second time)."""
    if connection.vendor != "postgresql":
        pytest.skip("kills a PostgreSQL backend")
    with mock.patch.object(notifications, "enqueue_delivery"):  # committed; the message was lost
        row = queue(question)
    real_send = outbox_send._send_alone

    def send_then_lose_the_database(notification):
        real_send(notification)
        _kill_own_database_connection()

    monkeypatch.setattr(outbox_send, "_send_alone", send_then_lose_the_database)
    assert notifications.deliver(row.pk) is True
    monkeypatch.undo()

    row.refresh_from_db()
    assert (row.status, row.attempts, row.locked_until) == (NotificationStatus.SENT, 1, None)
    later = timezone.now() + notifications.send_lock() + timedelta(seconds=1)
    assert notifications.pending_ids(now=later) == []
    assert tasks.resend_pending_notifications() == 0
    assert len(mail.outbox) == 1


@pytest.mark.django_db(transaction=True)
def test_a_connection_lost_before_the_claim_is_replaced_and_the_email_sent_once(question):
    """Issue 13 item 4: a sender whose idle connection was killed reconnects and sends."""
    if connection.vendor != "postgresql":
        pytest.skip("kills a PostgreSQL backend")
    with mock.patch.object(notifications, "enqueue_delivery"):
        rows = [queue(question, key=f"k:{n}") for n in range(3)]
    _kill_own_database_connection()

    assert notifications.deliver_many([row.pk for row in rows]) == 3
    assert len(mail.outbox) == 3
    assert set(Notification.objects.values_list("status", "attempts")) == {(NotificationStatus.SENT, 1)}
