"""Sending the outbox's rows (consultations.notifications stores and queues them).

Each send is: claim the row (a conditional UPDATE sets a lease,
`locked_until`, and counts the attempt), hand the e-mail to the mail server,
mark the row sent. `deliver` sends one row. A batch sender (`deliver_many`,
`deliver_chunk`, `drain_pending`) claims up to CLAIM_BATCH rows in one
statement (on PostgreSQL `FOR UPDATE SKIP LOCKED`: concurrent senders take
disjoint rows without waiting), sends them over one mail connection, and marks
them sent in the statement that claims the next batch (or on their own after
MARK_EVERY_SECONDS, or at the end): a backlog costs a few statements per
hundred e-mails. Nothing is claimed before the previous batch's mark is
committed. One lease covers a batch, so a batch sender starts a send only
within `send_budget()` of its claim (half of what the lease leaves after the
slowest send, EMAIL_TIMEOUT; the other half is for the mark) and gives back
the rows it did not try. A failed send is recorded on its row alone (backoff,
then FAILED after MAX_ATTEMPTS); the rest of the batch goes on. A database
error while marking (a killed connection, a failover) is retried on a fresh
connection for up to MARK_SENT_RETRY_SECONDS, well inside the lease, so a
database blip does not send an e-mail twice. Every e-mail carries a
Message-ID derived from its row (`message_id`), the same on every attempt, so
mail servers and clients that deduplicate by Message-ID show one copy.

The guarantee: every row is sent, exactly once, with one narrow exception that
SMTP cannot close (it has no idempotent submission). A sender that dies after
the mail server accepted e-mails and before their rows are marked (the process
is killed, the machine fails, or the database stays unreachable for longer
than MARK_SENT_RETRY_SECONDS), or a mail server that accepts a message but
whose reply is lost, leaves those rows pending; once their lease expires the
re-send sends them again, with the same Message-ID. A single send risks one
e-mail so; a batch sender at most the e-mails it sent since its last mark: one
batch, or MARK_EVERY_SECONDS' worth if that is fewer. The rest of a dead sender's
batch, never handed over, waits for the same lease (NOTIFICATION_SEND_LOCK_SECONDS)
and is then sent once, its attempt counted twice: the price of claiming in batches.
"""

import functools
import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db.models import F, Q
from django.utils import timezone

from consultations.models import Notification, NotificationStatus
from portal.database import claim_returning, retry_transient, update_returning

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
# A batch sender claims CLAIM_BATCH rows per statement (the claim also marks the
# previous batch sent), reconnects to the mail server after MESSAGES_PER_CONNECTION
# e-mails (servers cap messages per connection) and gives up after this many failures
# in a row (the server is down: the rows it did not try wait for the re-send, unclaimed).
CLAIM_BATCH = 250
MESSAGES_PER_CONNECTION = 100
MAX_CONSECUTIVE_FAILURES = 3
# What a batch sender has sent is marked sent at the next claim, or after this long
# if that comes later (a slow mail server): a sender killed mid-batch sends at most
# a batch, or this long's e-mails, a second time.
MARK_EVERY_SECONDS = 1.0
# A sender (a re-send run, a task's chunk of rows) keeps going until nothing is left,
# for at most RESEND_BUDGET_SECONDS per task run; with rows still due, the caller queues
# the next run at once, so a backlog drains at the mail server's speed and no single
# task nears the task time limit.
RESEND_BUDGET_SECONDS = 30
# After the mail server took an e-mail, marking its row sent is retried on a fresh
# database connection this long (never longer than half the lease, see send_lock).
MARK_SENT_RETRY_SECONDS = 30
# Claiming or recording a failure is retried briefly: giving up there sends nothing twice.
CLAIM_RETRY_SECONDS = 5
# Time budgets and batch leases are measured on this clock.
clock = time.monotonic


def send_lock() -> timedelta:
    """How long a sender holds a row. If it dies mid-send (a killed worker), the
    re-send takes the row over only after this, so it must outlast the slowest
    send (EMAIL_TIMEOUT)."""
    return timedelta(seconds=settings.NOTIFICATION_SEND_LOCK_SECONDS)


CLAIMED_FIELDS = ("id", "to_email", "subject", "body", "attempts", "dedupe_key", "next_attempt_at")


class Claimed(NamedTuple):
    """A claimed row, with what sending it takes (`compose`, `message_id`). Not a model
    instance: building one per e-mail was a sixth of the outbox's own CPU per e-mail."""

    pk: int
    to_email: str
    subject: str
    body: str
    attempts: int
    dedupe_key: str
    next_attempt_at: datetime


def retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


def message_id(notification: Notification | Claimed) -> str:
    """The e-mail's Message-ID: derived from the row, so every attempt to send it carries
    the same one and a mail server or client that deduplicates shows one copy. The id
    is there for whoever reads the headers; a digest of the row's unique key keeps
    another database (a staging copy, ids counted again) from reusing a Message-ID
    for a different e-mail, without showing the key."""
    digest = hashlib.sha256(notification.dedupe_key.encode()).hexdigest()[:16]
    return f"<notification.{notification.pk}.{digest}@{_message_domain(settings.SITE_URL)}>"


@functools.lru_cache(maxsize=4)
def _message_domain(site_url: str) -> str:
    """The Message-ID's domain: SITE_URL's host, split once per value, not once per e-mail."""
    return urlsplit(site_url).hostname or "localhost"


def compose(notification: Notification | Claimed, connection=None) -> EmailMessage:
    return EmailMessage(
        notification.subject,
        notification.body,
        None,  # DEFAULT_FROM_EMAIL
        [notification.to_email],
        connection=connection,
        headers={"Message-ID": message_id(notification)},
    )


def _send_alone(notification: Claimed) -> None:
    compose(notification).send()


def deliver(notification_id: int, now=None) -> bool:
    """Send one pending notification if no other sender holds it. True when sent."""
    now = now or timezone.now()
    notification = retry_transient(
        lambda: _claim(notification_id, now), within=CLAIM_RETRY_SECONDS, what="claiming an e-mail"
    )
    if notification is None or not _send_one(notification, now, _send_alone):
        return False
    _mark_sent([notification_id])
    return True


def _send_one(notification: Claimed, now, send) -> bool:
    """Hand a claimed row to `send`. A failure is recorded on the row (it ends the lease
    and is retried with backoff, or given up after MAX_ATTEMPTS); False then."""
    try:
        send(notification)
    except Exception as exc:  # noqa: BLE001 - recorded and retried with backoff
        error = f"{type(exc).__name__}: {exc}"[:2000]
        status = NotificationStatus.FAILED if notification.attempts >= MAX_ATTEMPTS else NotificationStatus.PENDING
        retry_transient(
            lambda: Notification.objects.filter(pk=notification.pk).update(
                status=status,
                last_error=error,
                locked_until=None,
                next_attempt_at=now + retry_delay(notification.attempts),
            ),
            within=CLAIM_RETRY_SECONDS,
            what="recording a failed send",
        )
        logger.warning("Sending notification %s failed: %s", notification.pk, exc)
        return False
    return True


def _sent_values() -> dict:
    return {"status": NotificationStatus.SENT, "sent_at": timezone.now(), "locked_until": None, "last_error": ""}


def _mark_window() -> float:
    return min(MARK_SENT_RETRY_SECONDS, send_lock().total_seconds() / 2)


def _mark_sent(notification_ids: list[int]) -> None:
    """The e-mails are out: only a row marked sent keeps the re-send from sending it
    again once the lease ends, so a lost connection must not stop this write."""
    retry_transient(
        lambda: Notification.objects.filter(pk__in=notification_ids).update(**_sent_values()),
        within=_mark_window(),
        what=f"marking {len(notification_ids)} e-mails sent",
    )


def _free(now, *, by_id: bool = False):
    """Rows a sender may take: pending, and no live sender holds them. `by_id`: the caller
    names the rows (see `_pending`)."""
    return Notification.objects.filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now), **_pending(by_id))


def _pending(by_id: bool = False) -> dict:
    """The filter "status is pending". For rows named by id it is written as a range of one
    value: the same rows, but PostgreSQL can no longer read them from the pending index
    (its condition is `status = 'pending'`), so it reads the ids by primary key. After an
    outage the outbox grows by 10^5 rows within a minute; on a table last analyzed nearly
    empty, the planner took the pending index for tiny and walked all of it for a delivery
    message's 250 ids: 0.4-0.7 s a claim at 500,000 rows against 1 ms, until the next
    ANALYZE (autovacuum's, a minute later at best). The drain, which wants the oldest due
    rows, keeps the equality and the index."""
    if by_id:
        return {"status__gte": NotificationStatus.PENDING, "status__lte": NotificationStatus.PENDING}
    return {"status": NotificationStatus.PENDING}


def _lease(now) -> dict:
    return {"locked_until": now + send_lock(), "attempts": F("attempts") + 1}


def _claim(notification_id: int, now) -> Claimed | None:
    """Take the row for one send if it is pending and no live sender holds it: lease it
    for `send_lock()` and count the attempt. The row as claimed, or None. Repeating a
    claim whose reply was lost finds the row leased and returns None: the e-mail waits
    for the lease to end, it is not sent twice."""
    free = _free(now, by_id=True).filter(pk=notification_id)
    # One round trip instead of two where the database returns rows.
    claimed = update_returning(free, _lease(now), CLAIMED_FIELDS)
    if claimed is None:
        if free.update(**_lease(now)) != 1:
            return None
        return Claimed(*Notification.objects.values_list(*CLAIMED_FIELDS).get(pk=notification_id))
    if not claimed:
        return None
    return Claimed(*claimed[0])


def _claim_batch(now, ids: list[int] | None, sent: list[int], after: tuple | None = None) -> list[Claimed]:
    """Lease up to CLAIM_BATCH rows at once, as `_claim` leases one: `ids` (those of them
    pending and free, in that order), or with None the due rows, oldest first, and only
    those after `after` (the (next_attempt_at, id) of this run's last claim) when given.
    Rows another claimer holds are skipped, not waited for. `sent`, rows this sender has
    handed to the mail server, are marked sent by the same statement on PostgreSQL
    (first, elsewhere): nothing new is claimed before their mark is committed."""
    free = _free(now, by_id=ids is not None)
    if ids is None:
        candidates = free.filter(next_attempt_at__lte=now).exclude(pk__in=sent)
        if after is not None:
            # The lower bound alone is what the pending index can start its scan at; the
            # OR only leaves out, among rows due at that same moment, those already passed.
            at, pk = after
            candidates = candidates.filter(next_attempt_at__gte=at).filter(Q(next_attempt_at__gt=at) | Q(pk__gt=pk))
        candidates = candidates.order_by("next_attempt_at", "pk")[:CLAIM_BATCH]
    else:
        candidates = free.filter(pk__in=ids).order_by("pk")
    mark = (Notification.objects.filter(pk__in=sent), _sent_values()) if sent else None
    claimed = claim_returning(candidates, _lease(now), CLAIMED_FIELDS, mark)
    if claimed is None:  # not PostgreSQL: mark, then claim row by row
        if sent:
            _mark_sent(sent)
        rows = [row for row in map(lambda pk: _claim(pk, now), list(candidates.values_list("pk", flat=True))) if row]
    else:
        rows = [Claimed(*row) for row in claimed]
    position = {pk: n for n, pk in enumerate(ids)} if ids is not None else {}
    return sorted(rows, key=lambda row: position.get(row.pk, row.pk))


def _release(rows: list[Claimed], lease_until) -> None:
    """Give back claimed rows that were not tried (the mail server is down, the time is
    up): due again at once, their attempt uncounted. Only rows still under this
    sender's lease: one that expired may be another sender's by now."""
    ids = [row.pk for row in rows]
    retry_transient(
        lambda: Notification.objects.filter(pk__in=ids, locked_until=lease_until, **_pending(by_id=True)).update(
            locked_until=None, attempts=F("attempts") - 1
        ),
        within=CLAIM_RETRY_SECONDS,
        what="giving back unsent e-mails",
    )


def send_budget() -> float:
    """Seconds after its claim during which a batch sender may start a send. The slowest
    send (EMAIL_TIMEOUT) and the mark after it must end before the batch's lease does;
    the budget is half of what the lease leaves after that send, the other half for the
    mark (and its retries)."""
    return (send_lock().total_seconds() - (settings.EMAIL_TIMEOUT or 0)) / 2


class _SharedConnection:
    """One mail-server connection for a run of sends: opened at the first e-mail actually
    sent, renewed every MESSAGES_PER_CONNECTION e-mails, dropped after a failure so the
    next send starts afresh."""

    def __init__(self):
        self.backend = None
        self.used = 0

    def send(self, notification: Claimed) -> None:
        if self.backend is None or self.used >= MESSAGES_PER_CONNECTION:
            self.close()
            self.backend = get_connection()
            self.backend.open()
        self.used += 1
        compose(notification, connection=self.backend).send()

    def close(self) -> None:
        backend, self.backend, self.used = self.backend, None, 0
        if backend is not None:
            try:
                backend.close()
            except Exception:  # noqa: BLE001 - a connection that broke mid-batch may not close cleanly
                logger.info("Closing the mail connection failed", exc_info=True)


def deliver_many(notification_ids, now=None) -> int:
    """Send each of these rows that is still pending and free, over one mail-server
    connection, claiming them CLAIM_BATCH per statement. Returns how many were sent."""
    return _deliver_batch(list(notification_ids), now).sent


def deliver_chunk(notification_ids) -> "BatchOutcome":
    """A delivery message's rows, for at most RESEND_BUDGET_SECONDS (`out_of_time`: the
    rest was left for the re-send)."""
    return _deliver_batch(list(notification_ids), deadline=clock() + RESEND_BUDGET_SECONDS)


@dataclass
class BatchOutcome:
    sent: int = 0
    # Sends that failed in a row at the end of the run.
    failures: int = 0
    # The mail server failed MAX_CONSECUTIVE_FAILURES times in a row: the rest were not tried.
    mail_server_down: bool = False
    # The deadline passed before every row was tried.
    out_of_time: bool = False


class _BatchSender:
    """Claims a batch, sends it over one mail connection, claims the next (which marks
    the batch sent) until there is nothing left to claim, the mail server keeps failing,
    or the deadline (on `clock`) has passed. What it has sent is marked at the latest
    MARK_EVERY_SECONDS later, so a sender killed mid-batch leaves at most a batch (or
    that long's e-mails) sent but not marked: those go out again when their lease ends,
    with the same Message-ID (the exception in the module's guarantee)."""

    def __init__(self, now, deadline: float | None, failures: int):
        self.now, self.deadline = now, deadline
        self.connection = _SharedConnection()
        self.outcome = BatchOutcome(failures=failures)
        self.unmarked: list[int] = []
        self.marked_at = clock()
        # A run over the due rows goes forward: each claim starts after the last one's rows.
        # Rows sent meanwhile stay behind in the pending index until PostgreSQL vacuums
        # them, so claiming from the oldest again walked past every one of them: after an
        # outage, 0.2-1 s a claim. A row freed behind the position (another sender gave it
        # back) waits for the next run, as one held by another sender does.
        self.after: tuple | None = None

    def claim_and_send(self, ids: list[int] | None) -> bool:
        """One batch: `ids`, or the due rows. False once nothing more should be claimed."""
        if self.outcome.mail_server_down or self._out_of_time():
            return False
        now = self.now or timezone.now()
        sent = list(self.unmarked)
        window, what = (_mark_window(), "marking e-mails sent") if sent else (CLAIM_RETRY_SECONDS, "claiming e-mails")
        send_until = clock() + send_budget()
        # Until this claim succeeds, `finish` still owes the previous batch its mark.
        batch = retry_transient(lambda: _claim_batch(now, ids, sent, self.after), within=window, what=what)
        self.unmarked, self.marked_at = [], clock()
        if ids is None and batch:
            at, pk = max((row.next_attempt_at, row.pk) for row in batch)
            # SQLite's RETURNING rows come without Django's converters: a naive UTC time.
            self.after = (at if timezone.is_aware(at) else timezone.make_aware(at, UTC), pk)
        for position, notification in enumerate(batch):
            if self.outcome.mail_server_down or self._out_of_time() or clock() >= send_until:
                _release(batch[position:], now + send_lock())
                return False
            self._send(notification, now)
        return ids is not None or bool(batch)

    def _out_of_time(self) -> bool:
        self.outcome.out_of_time = self.deadline is not None and clock() >= self.deadline
        return self.outcome.out_of_time

    def _send(self, notification: Claimed, now) -> None:
        if _send_one(notification, now, self.connection.send):
            self.unmarked.append(notification.pk)
            self.outcome.sent += 1
            self.outcome.failures = 0
            if clock() - self.marked_at >= MARK_EVERY_SECONDS:
                self.mark()
            return
        self.connection.close()
        self.outcome.failures += 1
        if self.outcome.failures >= MAX_CONSECUTIVE_FAILURES:
            logger.warning("%d sends failed in a row; the rest waits for the re-send", self.outcome.failures)
            self.outcome.mail_server_down = True

    def mark(self) -> None:
        sent, self.unmarked = self.unmarked, []
        if sent:
            _mark_sent(sent)
        self.marked_at = clock()

    def finish(self) -> None:
        try:
            self.mark()
        finally:
            self.connection.close()


def _deliver_batch(notification_ids, now=None, deadline: float | None = None, failures: int = 0) -> BatchOutcome:
    """Send `notification_ids` (None: every due row), CLAIM_BATCH per claim, stopping
    early when the mail server keeps failing (counting on from `failures` in a row) or
    `deadline` has passed. The rows not tried stay (or are given back) unclaimed, due
    for the re-send at once."""
    sender = _BatchSender(now, deadline, failures)
    try:
        if notification_ids is None:
            while sender.claim_and_send(None):
                pass
        else:
            for start in range(0, len(notification_ids), CLAIM_BATCH):
                if not sender.claim_and_send(notification_ids[start : start + CLAIM_BATCH]):
                    break
    finally:
        sender.finish()
    return sender.outcome


@dataclass
class DrainOutcome:
    sent: int
    # Rows were still due when the time budget ran out: the caller should carry on.
    more: bool


def drain_pending(now=None) -> DrainOutcome:
    """The re-send: send every due row, CLAIM_BATCH per claim, until none is left, the
    mail server keeps failing (the next scheduled re-send tries again), or
    RESEND_BUDGET_SECONDS have passed (then `more` is True). Several drains may run at
    once: each claims rows the others do not hold, so no e-mail goes out twice."""
    outcome = _deliver_batch(None, now, deadline=clock() + RESEND_BUDGET_SECONDS)
    more = outcome.out_of_time and not outcome.mail_server_down and bool(pending_ids(now=now, limit=1))
    return DrainOutcome(outcome.sent, more=more)


def pending_ids(now=None, limit: int = 200) -> list[int]:
    """Notifications due for a (re-)send: never sent, not held by a live sender."""
    now = now or timezone.now()
    return list(
        Notification.objects.filter(status=NotificationStatus.PENDING, next_attempt_at__lte=now)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
