"""The outbox sends in batches (issue 17): one statement claims up to CLAIM_BATCH rows
(FOR UPDATE SKIP LOCKED on PostgreSQL) and marks the previous batch sent, so a backlog
costs a few statements per hundred e-mails instead of one per e-mail, and concurrent
senders share it without waiting for each other. What must not change: every row is
sent once, a failing e-mail in a batch loses or repeats none of the others, a lease
that ends lets the re-send take the rows over, and no send starts that could outlast
its lease."""

import re
import threading
from dataclasses import replace
from datetime import timedelta
from unittest import mock

import pytest
from django.conf import settings
from django.core import mail
from django.db import connection, connections
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from consultations import notifications, outbox_send
from consultations.models import Notification, NotificationStatus
from tests.consultations.test_outbox import flaky_mail, outgoing, question  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db

postgresql_only = pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="one statement claims a batch and marks the previous one on PostgreSQL (elsewhere: row by row)",
)


def statuses(ids) -> set:
    return set(Notification.objects.filter(pk__in=ids).values_list("status", "attempts", "locked_until"))


@postgresql_only
def test_a_backlog_costs_one_statement_per_batch_each_marking_the_previous_one(question, monkeypatch):  # noqa: F811
    monkeypatch.setattr(outbox_send, "CLAIM_BATCH", 100)
    ids = notifications.queue_notifications(outgoing(question, 250))

    with CaptureQueriesContext(connection) as queries:
        assert outbox_send.drain_pending() == outbox_send.DrainOutcome(sent=250, more=False)

    writes = [query["sql"] for query in queries if query["sql"].lstrip().upper().startswith(("UPDATE", "WITH"))]
    # Three claims of 100, 100 and 50 (the second and third mark the batch before), a
    # fourth that finds nothing and marks the last batch: 4 statements for 250 e-mails.
    assert len(writes) == 4
    assert all("FOR UPDATE SKIP LOCKED" in sql for sql in writes)
    assert all("marked_first" in sql for sql in writes[1:])
    assert statuses(ids) == {(NotificationStatus.SENT, 1, None)}
    assert len(mail.outbox) == 250


def test_given_rows_are_claimed_a_batch_at_a_time_in_their_order(question, monkeypatch):  # noqa: F811
    monkeypatch.setattr(outbox_send, "CLAIM_BATCH", 2)
    ids = notifications.queue_notifications(outgoing(question, 5))

    assert outbox_send.deliver_many(list(reversed(ids))) == 5

    assert [m.to[0] for m in mail.outbox] == [f"reader{n}@example.com" for n in reversed(range(5))]
    assert statuses(ids) == {(NotificationStatus.SENT, 1, None)}


def test_the_portable_path_claims_row_by_row_and_sends_each_once(question, monkeypatch):  # noqa: F811
    """Where the database has no batch claim (claim_returning gives None) the batch
    sender marks, then claims each candidate with the single-row claim."""
    monkeypatch.setattr(outbox_send, "CLAIM_BATCH", 3)
    monkeypatch.setattr(outbox_send, "claim_returning", lambda *args: None)
    ids = notifications.queue_notifications(outgoing(question, 7))

    assert outbox_send.drain_pending().sent == 7
    assert outbox_send.drain_pending().sent == 0

    assert statuses(ids) == {(NotificationStatus.SENT, 1, None)}
    assert sorted(m.to[0] for m in mail.outbox) == sorted(f"reader{n}@example.com" for n in range(7))


def test_a_failing_email_in_the_middle_of_a_batch_loses_and_repeats_none_of_the_others(
    question,  # noqa: F811
    flaky_mail,  # noqa: F811
):
    ids = notifications.queue_notifications(outgoing(question, 5))
    real_send = flaky_mail.send_messages

    def fail_the_third(self, messages):
        if messages[0].to == ["reader2@example.com"]:
            raise OSError("mail server hiccup")
        return real_send(self, messages)

    now = timezone.now()
    with mock.patch.object(flaky_mail, "send_messages", fail_the_third):
        assert outbox_send.deliver_many(ids, now=now) == 4

    assert sorted(m.to[0] for m in mail.outbox) == [f"reader{n}@example.com" for n in (0, 1, 3, 4)]
    failed = Notification.objects.get(pk=ids[2])
    assert (failed.status, failed.attempts, failed.locked_until) == (NotificationStatus.PENDING, 1, None)
    assert failed.next_attempt_at == now + outbox_send.retry_delay(1)
    assert statuses(ids[:2] + ids[3:]) == {(NotificationStatus.SENT, 1, None)}
    # The re-send takes the failed one after its backoff, and only it.
    assert outbox_send.drain_pending(now=failed.next_attempt_at).sent == 1
    assert sorted(m.to[0] for m in mail.outbox) == sorted(f"reader{n}@example.com" for n in range(5))
    assert Notification.objects.get(pk=ids[2]).attempts == 2


def test_rows_another_sender_holds_are_skipped_and_the_rest_marked(question, flaky_mail):  # noqa: F811
    first, held, third = notifications.queue_notifications(outgoing(question, 3))
    lease = timezone.now() + outbox_send.send_lock()
    Notification.objects.filter(pk=held).update(locked_until=lease, attempts=1)

    assert outbox_send.deliver_many([first, held, third]) == 2

    assert statuses([first, third]) == {(NotificationStatus.SENT, 1, None)}
    assert statuses([held]) == {(NotificationStatus.PENDING, 1, lease)}


def test_a_senders_batch_is_sent_again_only_once_its_lease_ends(question, flaky_mail, settings):  # noqa: F811,F811
    """A sender claims a batch, hands two of its three e-mails to the mail server and is
    killed before marking them. Nobody touches the batch while the lease lasts; then the
    re-send sends all three, the two again with their Message-IDs (SMTP's narrow
    exception, bounded by one batch or MARK_EVERY_SECONDS of e-mails)."""
    settings.NOTIFICATION_SEND_LOCK_SECONDS = 60
    ids = notifications.queue_notifications(outgoing(question, 3))
    now = timezone.now()
    batch = outbox_send._claim_batch(now, ids, [])
    for notification in batch[:2]:
        outbox_send.compose(notification).send()
    first_ids = [m.extra_headers["Message-ID"] for m in mail.outbox]

    assert outbox_send.drain_pending(now=now + timedelta(seconds=59)).sent == 0
    assert outbox_send.drain_pending(now=now + timedelta(seconds=61)).sent == 3

    assert statuses(ids) == {(NotificationStatus.SENT, 2, None)}
    assert [m.extra_headers["Message-ID"] for m in mail.outbox[2:4]] == first_ids
    assert len(mail.outbox) == 5


def test_no_send_starts_that_could_outlast_the_batchs_lease(question, monkeypatch, settings):  # noqa: F811
    """With a 60 s lease and a 20 s EMAIL_TIMEOUT a send may start up to 20 s after the
    claim (half of what the slowest send leaves, the other half for the mark). A mail
    server taking 8 s per e-mail gets three; the rest are given back, due at once, their
    attempt uncounted."""
    settings.NOTIFICATION_SEND_LOCK_SECONDS, settings.EMAIL_TIMEOUT = 60, 20
    assert outbox_send.send_budget() == 20
    ids = notifications.queue_notifications(outgoing(question, 6))
    seconds = [0.0]
    monkeypatch.setattr(outbox_send, "clock", lambda: seconds[0])
    real_compose = outbox_send.compose

    def slow_compose(*args, **kwargs):
        seconds[0] += 8
        return real_compose(*args, **kwargs)

    monkeypatch.setattr(outbox_send, "compose", slow_compose)
    outcome = outbox_send._deliver_batch(ids)

    assert outcome.sent == 3
    assert statuses(ids[:3]) == {(NotificationStatus.SENT, 1, None)}
    assert statuses(ids[3:]) == {(NotificationStatus.PENDING, 0, None)}
    assert sorted(outbox_send.pending_ids()) == ids[3:]


def test_what_a_slow_batch_has_sent_is_marked_every_so_often(question, monkeypatch):  # noqa: F811
    """A slow mail server must not leave a whole batch unmarked: every MARK_EVERY_SECONDS
    what was sent is marked, so a crash repeats at most that long's e-mails."""
    ids = notifications.queue_notifications(outgoing(question, 4))
    seconds = [0.0]
    monkeypatch.setattr(outbox_send, "clock", lambda: seconds[0])
    seen = []
    real_compose = outbox_send.compose

    def compose_noting_what_is_marked(notification, connection=None):
        seen.append(Notification.objects.filter(pk__in=ids, status=NotificationStatus.SENT).count())
        seconds[0] += 0.6
        return real_compose(notification, connection=connection)

    monkeypatch.setattr(outbox_send, "compose", compose_noting_what_is_marked)
    assert outbox_send.deliver_many(ids) == 4

    # Marked after the second e-mail (1.2 s) and the fourth (2.4 s), at the latest.
    assert seen == [0, 0, 2, 2]
    assert statuses(ids) == {(NotificationStatus.SENT, 1, None)}


def test_giving_back_leaves_a_row_another_sender_has_taken_over(question):  # noqa: F811
    (row,) = notifications.queue_notifications(outgoing(question, 1))
    now = timezone.now()
    (claimed,) = outbox_send._claim_batch(now, [row], [])
    # Our lease ended; another sender took the row over with its own.
    theirs = now + outbox_send.send_lock() * 2
    Notification.objects.filter(pk=row).update(locked_until=theirs, attempts=2)

    outbox_send._release([claimed], now + outbox_send.send_lock())

    assert statuses([row]) == {(NotificationStatus.PENDING, 2, theirs)}


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_drainers_share_a_backlog_and_send_each_email_once(question, monkeypatch):  # noqa: F811
    """Two senders drain at once, each on its own database connection. Each holds its
    first batch until the other has claimed one too: their batches are disjoint (SKIP
    LOCKED, the lease), both send, and every row is sent exactly once."""
    monkeypatch.setattr(outbox_send, "CLAIM_BATCH", 20)
    with mock.patch.object(notifications, "enqueue_deliveries"):
        ids = notifications.queue_notifications(outgoing(question, 200))
    both_claimed = threading.Barrier(2, timeout=20)
    sent_by, lock = {}, threading.Lock()
    real_compose = outbox_send.compose

    def compose_noting_the_sender(notification, connection=None):
        name = threading.current_thread().name
        with lock:
            first = name not in sent_by
            sent_by.setdefault(name, []).append(notification.pk)
        if first:
            both_claimed.wait()
        return real_compose(notification, connection=connection)

    monkeypatch.setattr(outbox_send, "compose", compose_noting_the_sender)
    results, errors = {}, []

    def drain(name):
        try:
            results[name] = outbox_send.drain_pending().sent
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=drain, args=(name,), name=name) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    assert results["a"] > 0 and results["b"] > 0
    assert results["a"] + results["b"] == 200
    assert sorted(sent_by["a"] + sent_by["b"]) == ids
    assert statuses(ids) == {(NotificationStatus.SENT, 1, None)}
    assert sorted(m.to[0] for m in mail.outbox) == sorted(f"reader{n}@example.com" for n in range(200))


def test_a_claim_that_fails_still_leaves_the_batch_before_it_marked(question, monkeypatch):  # noqa: F811
    """The previous batch's mark rides on the next claim; if that claim fails for good,
    the sender marks the batch on its own before giving up, so it is not sent again."""
    monkeypatch.setattr(outbox_send, "CLAIM_BATCH", 2)
    ids = notifications.queue_notifications(outgoing(question, 4))
    real_claim = outbox_send._claim_batch
    calls = []

    def claim_failing_the_second_time(now, batch_ids, sent, after=None):
        calls.append(list(sent))
        if len(calls) == 2:
            raise RuntimeError("a bug in the claim")
        return real_claim(now, batch_ids, sent, after)

    monkeypatch.setattr(outbox_send, "_claim_batch", claim_failing_the_second_time)
    with pytest.raises(RuntimeError):
        outbox_send.deliver_many(ids)

    assert calls == [[], ids[:2]]
    assert statuses(ids[:2]) == {(NotificationStatus.SENT, 1, None)}
    assert statuses(ids[2:]) == {(NotificationStatus.PENDING, 0, None)}
    assert len(mail.outbox) == 2


def test_a_backlog_brings_in_every_worker_once_and_each_run_then_carries_on_alone(
    question,  # noqa: F811
    monkeypatch,
    settings,
):
    """A scheduled re-send that runs out of time with rows still due queues
    SLA_SWEEP_PARALLEL runs (its successor and helpers for the idle workers); those
    runs queue one successor each, never more helpers, and expire after a re-send
    interval so they cannot pile up behind busy workers."""
    settings.SLA_SWEEP_PARALLEL, settings.NOTIFICATION_RESEND_SECONDS = 3, 60
    monkeypatch.setattr(notifications, "drain_pending", lambda: outbox_send.DrainOutcome(sent=5, more=True))
    with mock.patch.object(notifications.resend_pending_notifications, "apply_async") as publish:
        assert notifications.resend_pending_notifications() == 5
        assert publish.call_count == 3
        assert notifications.resend_pending_notifications(join_in=False) == 5
        assert publish.call_count == 4

    for call in publish.call_args_list:
        assert call.kwargs == {
            "kwargs": {"join_in": False},
            "priority": notifications.BULK_DELIVERY_PRIORITY,
            "expires": 60.0,
        }


@postgresql_only
def test_a_claim_by_ids_reads_them_by_primary_key_whatever_the_statistics_say(question):  # noqa: F811
    """Issue 17: after an outage the outbox grows by 10^5 pending rows in a minute. With
    statistics from before (a history of sent e-mails, nearly nothing pending), PostgreSQL
    took the pending index for tiny and walked all of it to find a delivery message's 250
    ids: 0.4-0.7 s a claim at 500,000 rows against 1 ms by primary key, until the next
    ANALYZE (autovacuum's waits for 10 % of the table to change, and a minute at least).
    The plans of the claim and the give-back by ids must not depend on that."""
    history = notifications.queue_notifications(outgoing(question, 5000))
    Notification.objects.filter(pk__in=history).update(status=NotificationStatus.SENT, dedupe_key=F("pk"))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE consultations_notification")  # the statistics before the outage
    ids = notifications.queue_notifications(outgoing(question, 5000))
    now = timezone.now()

    def plan_of(operation) -> str:
        with CaptureQueriesContext(connection) as captured:
            operation()
        (statement,) = [query["sql"] for query in captured.captured_queries]
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN {statement}")
            return "\n".join(row[0] for row in cursor.fetchall())

    claimed = []
    claim = plan_of(lambda: claimed.extend(outbox_send._claim_batch(now, ids[2000:2250], [])))
    assert len(claimed) == 250
    give_back = plan_of(lambda: outbox_send._release(claimed, now + outbox_send.send_lock()))
    for plan in (claim, give_back):
        assert "notification_pending_idx" not in plan and "consultations_notification_pkey" in plan, plan
    # The drain, which takes the oldest due rows, reads them from the pending index, and a
    # run's later claims start that index scan at the run's position.
    assert "notification_pending_idx" in plan_of(lambda: outbox_send._claim_batch(now, None, []))
    later = plan_of(lambda: outbox_send._claim_batch(now, None, [], after=(now - timedelta(seconds=1), ids[10])))
    assert re.search(r"Index Cond: .*next_attempt_at >= ", later), later


@postgresql_only
def test_a_claim_rewrites_its_rows_in_place_without_new_index_entries(question):  # noqa: F811
    """Issue 17: after an outage each e-mail's two row updates, not the mail server, set
    the pace. The claim changes no indexed column, so on a page with room PostgreSQL
    keeps the new row version on that page and adds no index entries (a HOT update);
    the table leaves half of each page free for that (migration 0013)."""
    body = "Question #123456 has passed its answer guarantee. Open it: https://example.com/x/\n" * 6
    ids = notifications.queue_notifications([replace(email, body=body) for email in outgoing(question, 1000)])

    def hot_updates() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_get_xact_tuples_hot_updated('consultations_notification'::regclass)")
            return cursor.fetchone()[0]

    before = hot_updates()
    claimed = outbox_send._claim_batch(timezone.now(), ids[500:750], [])
    assert len(claimed) == 250
    assert hot_updates() - before == 250


@postgresql_only
def test_the_outbox_has_no_index_its_queries_do_not_use():
    """The unique dedupe_key's LIKE twin (varchar_pattern_ops, made for unique=True on a
    CharField) cost every row write an index entry and served no query."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'consultations_notification'")
        definitions = [row[0] for row in cursor.fetchall()]
    assert len(definitions) == 5, definitions
    assert not [definition for definition in definitions if "pattern_ops" in definition], definitions
