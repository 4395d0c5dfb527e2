"""Outbox notifications: a row per message, written in the caller's transaction.

`queue_notification` renders the e-mail, stores it and asks Celery to send it
once the transaction commits; `queue_notifications` does the same for many
rows at once (the SLA sweep), with one Celery message per chunk of rows. If
the broker is unreachable at that moment (or loses the messages) the rows
simply wait: the periodic re-send (`drain_pending`) sends every due row, batch
after batch, until none is left. `deliver` sends one row at most once per
claim; `deliver_many` sends a list of rows over one mail-server connection,
still claiming and marking each row on its own.

Each send is: claim the row (a conditional UPDATE sets a lease,
`locked_until`), hand the e-mail to the mail server, mark the row sent. In a
batch, on PostgreSQL, the mark travels with the next row's claim (one
statement per e-mail instead of two), so it is still committed before
anything else is claimed or sent. A
database error while marking (a killed connection, a failover) is retried on
a fresh connection for up to MARK_SENT_RETRY_SECONDS, well inside the lease,
so a database blip does not send an e-mail twice. Every e-mail carries a
Message-ID derived from its row (`message_id`), the same on every attempt, so
mail servers and clients that deduplicate by Message-ID show one copy.

The guarantee: every row is sent, exactly once, with one narrow exception that
SMTP cannot close (it has no idempotent submission). A sender that dies after
the mail server accepted the e-mail and before the row is marked (the process
is killed, the machine fails, or the database stays unreachable for longer
than MARK_SENT_RETRY_SECONDS), or a mail server that accepts a message but
whose reply is lost, leaves the row pending; once its lease expires the
re-send sends it again, with the same Message-ID.

The outbox's Celery tasks are defined here, beside the functions that queue them, so
this module never imports `consultations.tasks` (which imports it, with the sweep);
their names stay `consultations.tasks.*`, as in messages already queued.
"""

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import IntegrityError, connections, router, transaction
from django.db.models import F, Q
from django.template import Context
from django.template.loader import get_template
from django.utils import timezone

from consultations.models import Notification, NotificationStatus
from portal.database import retry_transient, update_returning

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
# Rows per Celery message when many are queued at once: few enough messages that
# publishing stays cheap, enough that a pool of workers shares a burst.
DELIVERY_CHUNK = 200
# Those messages wait behind everything else in the queue: a burst of thousands of
# escalation e-mails must not hold back the next sweep (the next escalations). The
# Redis transport serves lower numbers first (0, the default, before 3, 6, 9).
BULK_DELIVERY_PRIORITY = 6
# A batch sender reconnects after this many e-mails (mail servers cap messages
# per connection) and gives up its batch after this many failures in a row (the
# server is down: the rows it did not try wait for the re-send, unclaimed).
MESSAGES_PER_CONNECTION = 100
MAX_CONSECUTIVE_FAILURES = 3
# The re-send takes the due rows RESEND_BATCH at a time and keeps going until none is
# left, for at most RESEND_BUDGET_SECONDS per task run; with rows still due, the run
# queues the next one at once, so a backlog drains at the mail server's speed and no
# single task nears the task time limit.
RESEND_BATCH = 200
RESEND_BUDGET_SECONDS = 30
# After the mail server took an e-mail, marking its row sent is retried on a fresh
# database connection this long (never longer than half the lease, see send_lock).
MARK_SENT_RETRY_SECONDS = 30
# Claiming or recording a failure is retried briefly: giving up there sends nothing twice.
CLAIM_RETRY_SECONDS = 5
# The re-send's time budget is measured on this clock.
clock = time.monotonic


def send_lock() -> timedelta:
    """How long a sender holds a row. If it dies mid-send (a killed worker), the
    re-send takes the row over only after this, so it must outlast the slowest
    send (EMAIL_TIMEOUT)."""
    return timedelta(seconds=settings.NOTIFICATION_SEND_LOCK_SECONDS)


def _render_text(template_name: str, context: dict) -> str:
    # Plain-text e-mail: HTML escaping would turn a patient's "don't" into "don&#x27;t".
    template = get_template(template_name).template
    return template.render(Context(context, autoescape=False))


def render_email(kind: str, context: dict) -> tuple[str, str]:
    context = {"SITE_URL": settings.SITE_URL, "SLA_ANSWER_HOURS": settings.SLA_ANSWER_HOURS, **context}
    subject = " ".join(_render_text(f"emails/{kind}_subject.txt", context).split())
    body = _render_text(f"emails/{kind}.txt", context)
    return subject[:200], body


def queue_notification(*, to_email, kind, context, dedupe_key, recipient=None, question=None, key_is_new=False):
    """Store one outgoing e-mail; send it after commit. Returns the row, or None if already queued.

    `key_is_new`: the caller knows no row can hold `dedupe_key` yet (it names a row
    created in the caller's transaction), so no savepoint guards the INSERT (two
    round trips fewer); a duplicate would then fail the caller's transaction.
    """
    subject, body = render_email(kind, context)
    fields = {
        "recipient": recipient,
        "to_email": to_email,
        "kind": kind,
        "subject": subject,
        "body": body,
        "question": question,
        "dedupe_key": dedupe_key[:200],
    }
    if key_is_new:
        notification = Notification.objects.create(**fields)
    else:
        try:
            with transaction.atomic():
                notification = Notification.objects.create(**fields)
        except IntegrityError:
            logger.info("Notification %s already queued", dedupe_key)
            return None
    transaction.on_commit(lambda: enqueue_delivery(notification.pk))
    return notification


@dataclass(frozen=True)
class OutgoingEmail:
    """One rendered e-mail for `queue_notifications` (`render_email` gives subject and body)."""

    to_email: str
    kind: str
    subject: str
    body: str
    dedupe_key: str
    recipient_id: int | None = None
    question_id: int | None = None


def queue_notifications(emails: list[OutgoingEmail]) -> list[int]:
    """Store many outgoing e-mails at once; send them after commit, a chunk of rows
    per Celery message. Returns the new rows' ids.

    Unlike `queue_notification` there is no savepoint per row: the caller
    guarantees each message is new (the sweep's conditional update does). A
    duplicate dedupe_key raises IntegrityError and fails the caller's transaction.
    """
    if not emails:
        return []
    ids = _insert(emails)
    transaction.on_commit(lambda: enqueue_deliveries(ids))
    return ids


def _insert(emails: list[OutgoingEmail]) -> list[int]:
    """INSERT the rows in one statement; their ids, in the order given.

    On PostgreSQL the rows travel as one JSON document unpacked by
    `jsonb_to_recordset`: quoting one string is several times cheaper for the
    driver than quoting a dozen arrays of them (bulk_create's way), and inserting
    a sweep's e-mails is a good part of its time: bulk_create takes about twice as
    long (x1.96 for a 1,000-breach sweep's 4,000 e-mails, 0.52 s -> 1.03 s on a loaded
    machine; bench/outbox_internals.py), time the sweep holds its questions' row locks.
    The statement is built from the model through the documented _meta API
    (get_fields, db_table), so a new column gets its default as in bulk_create.
    """
    rows = [{**asdict(email), "dedupe_key": email.dedupe_key[:200]} for email in emails]
    connection = connections[router.db_for_write(Notification)]
    if connection.vendor != "postgresql":
        created = Notification.objects.bulk_create([Notification(**row) for row in rows])
        if all(notification.pk is not None for notification in created):
            return [notification.pk for notification in created]
        # A database that cannot return them (SQLite before 3.35): look them up.
        keys = [row["dedupe_key"] for row in rows]
        return sorted(Notification.objects.filter(dedupe_key__in=keys).values_list("pk", flat=True))
    quote = connection.ops.quote_name
    given, defaults, params = [], [], []
    for model_field in Notification._meta.get_fields():
        if not model_field.concrete or model_field.primary_key:
            continue
        if model_field.attname in rows[0]:
            given.append(model_field)
        else:
            defaults.append(model_field)
            params.append(model_field.get_db_prep_save(model_field.get_default(), connection))
    columns = ", ".join(quote(f.column) for f in given + defaults)
    selected = ", ".join([f"r.{quote(f.attname)}" for f in given] + ["%s"] * len(defaults))
    record = ", ".join(f"{quote(f.attname)} {f.db_type(connection)}" for f in given)
    sql = (
        # Names and types come from the model, values are parameters.
        f"INSERT INTO {quote(Notification._meta.db_table)} ({columns}) "  # noqa: S608
        f"SELECT {selected} FROM jsonb_to_recordset(%s::jsonb) AS r({record}) "
        f"RETURNING {quote(Notification._meta.get_field('id').column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, json.dumps(rows)])
        # The rows are inserted in the document's order, drawing ids from the sequence.
        return sorted(row[0] for row in cursor.fetchall())


@shared_task(name="consultations.tasks.send_notification", ignore_result=True)
def send_notification(notification_id: int) -> None:
    """Queued after commit for one outbox row; failures are recorded on the row and retried by the re-send."""
    deliver(notification_id)


@shared_task(name="consultations.tasks.send_notifications", ignore_result=True)
def send_notifications(notification_ids: list[int]) -> int:
    """Queued after commit for a chunk of outbox rows (the SLA sweep's): sent over one
    mail connection, each row claimed and marked on its own."""
    return deliver_many(notification_ids)


@shared_task(name="consultations.tasks.resend_pending_notifications", ignore_result=True)
def resend_pending_notifications() -> int:
    """Periodic safety net: send whatever a lost message, a broker outage or a crash left
    unsent. A backlog is drained in bounded runs, each queueing the next while rows remain."""
    outcome = drain_pending()
    if outcome.more:
        enqueue_resend()
    return outcome.sent


def enqueue_delivery(notification_id: int) -> None:
    """Ask a worker to send; a broker outage only delays the e-mail."""
    try:
        send_notification.delay(notification_id)
    except Exception:  # noqa: BLE001 - any broker failure: the re-send task recovers it
        logger.warning("Broker unavailable; notification %s waits for the re-send", notification_id, exc_info=True)


def enqueue_deliveries(notification_ids: list[int]) -> None:
    """Ask workers to send many rows, DELIVERY_CHUNK per message. At the first broker
    failure the rest are left to the re-send: trying every chunk against a dead
    broker would only make the caller wait."""
    for start in range(0, len(notification_ids), DELIVERY_CHUNK):
        try:
            send_notifications.apply_async(
                (notification_ids[start : start + DELIVERY_CHUNK],), priority=BULK_DELIVERY_PRIORITY
            )
        except Exception:  # noqa: BLE001 - any broker failure: the re-send task recovers them
            logger.warning(
                "Broker unavailable; %d notifications wait for the re-send",
                len(notification_ids) - start,
                exc_info=True,
            )
            return


def retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


def message_id(notification: Notification) -> str:
    """The e-mail's Message-ID: derived from the row, so every attempt to send it carries
    the same one and a mail server or client that deduplicates shows one copy. The id
    is there for whoever reads the headers; a digest of the row's unique key keeps
    another database (a staging copy, ids counted again) from reusing a Message-ID
    for a different e-mail, without showing the key."""
    digest = hashlib.sha256(notification.dedupe_key.encode()).hexdigest()[:16]
    domain = urlsplit(settings.SITE_URL).hostname or "localhost"
    return f"<notification.{notification.pk}.{digest}@{domain}>"


def compose(notification: Notification, connection=None) -> EmailMessage:
    return EmailMessage(
        notification.subject,
        notification.body,
        None,  # DEFAULT_FROM_EMAIL
        [notification.to_email],
        connection=connection,
        headers={"Message-ID": message_id(notification)},
    )


def _send_alone(notification: Notification) -> None:
    compose(notification).send()


def deliver(notification_id: int, now=None) -> bool:
    """Send one pending notification if no other sender holds it. True when sent."""
    return _deliver(notification_id, now, _send_alone) == SENT


SENT, FAILED, NOT_CLAIMED = "sent", "failed", "not claimed"


def _deliver(notification_id: int, now, send, *, sent_before: int | None = None, mark: bool = True) -> str:
    """Claim the row, hand it to `send`, mark it sent; a failed send is recorded on the
    row and retried with backoff.

    A batch sends row after row: `sent_before` is the row it handed over just before,
    marked sent by the same statement that claims this one (one round trip per e-mail,
    and nothing is claimed before the previous mark is committed), and with
    `mark=False` this row's mark is left to the next claim or to `_mark_sent`."""
    now = now or timezone.now()
    if sent_before is None:
        claim_window, what = CLAIM_RETRY_SECONDS, "claiming an e-mail"
    else:
        claim_window, what = _mark_window(), f"marking notification {sent_before} sent"
    notification = retry_transient(lambda: _claim(notification_id, now, sent_before), within=claim_window, what=what)
    if notification is None:
        return NOT_CLAIMED
    try:
        send(notification)
    except Exception as exc:  # noqa: BLE001 - recorded and retried with backoff
        error = f"{type(exc).__name__}: {exc}"[:2000]
        status = NotificationStatus.FAILED if notification.attempts >= MAX_ATTEMPTS else NotificationStatus.PENDING
        retry_transient(
            lambda: Notification.objects.filter(pk=notification_id).update(
                status=status,
                last_error=error,
                locked_until=None,
                next_attempt_at=now + retry_delay(notification.attempts),
            ),
            within=CLAIM_RETRY_SECONDS,
            what="recording a failed send",
        )
        logger.warning("Sending notification %s failed: %s", notification_id, exc)
        return FAILED
    if mark:
        _mark_sent(notification_id)
    return SENT


def _sent_values() -> dict:
    return {"status": NotificationStatus.SENT, "sent_at": timezone.now(), "locked_until": None, "last_error": ""}


def _mark_window() -> float:
    return min(MARK_SENT_RETRY_SECONDS, send_lock().total_seconds() / 2)


def _mark_sent(notification_id: int) -> None:
    """The e-mail is out: only a row marked sent keeps the re-send from sending it again
    once the lease ends, so a lost connection must not stop this write."""
    retry_transient(
        lambda: Notification.objects.filter(pk=notification_id).update(**_sent_values()),
        within=_mark_window(),
        what=f"marking notification {notification_id} sent",
    )


def _claim(notification_id: int, now, sent_before: int | None = None) -> Notification | None:
    """Take the row for one send if it is pending and no live sender holds it: lease it
    for `send_lock()` and count the attempt. The row as claimed, or None. Repeating a
    claim whose reply was lost finds the row leased and returns None: the e-mail waits
    for the lease to end, it is not sent twice. With `sent_before`, that row is marked
    sent first, in the same statement (repeating that is harmless)."""
    free = Notification.objects.filter(
        Q(locked_until__isnull=True) | Q(locked_until__lt=now),
        pk=notification_id,
        status=NotificationStatus.PENDING,
    )
    values = {"locked_until": now + send_lock(), "attempts": F("attempts") + 1}
    fields = ("id", "to_email", "subject", "body", "attempts", "dedupe_key")
    # One round trip instead of two (or three): a burst of e-mails is thousands of claims.
    if sent_before is None:
        claimed = update_returning(free, values, fields)
    else:
        claimed = update_returning(
            free, values, fields, first=(Notification.objects.filter(pk=sent_before), _sent_values())
        )
    if claimed is None:
        if sent_before is not None:
            _mark_sent(sent_before)
        if free.update(**values) != 1:
            return None
        return Notification.objects.only(*fields).get(pk=notification_id)
    if not claimed:
        return None
    return Notification(**dict(zip(fields, claimed[0], strict=True)))


class _SharedConnection:
    """One mail-server connection for a run of sends: opened at the first e-mail actually
    sent, renewed every MESSAGES_PER_CONNECTION e-mails, dropped after a failure so the
    next send starts afresh."""

    def __init__(self):
        self.backend = None
        self.used = 0

    def send(self, notification: Notification) -> None:
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
    connection. Each row is claimed, sent and marked on its own, as `deliver` does, so
    a sender killed mid-batch leaves only the row it was sending locked. Returns how
    many were sent."""
    return _deliver_batch(notification_ids, now).sent


@dataclass
class BatchOutcome:
    sent: int = 0
    # Sends that failed in a row at the end of the batch.
    failures: int = 0
    # The mail server failed MAX_CONSECUTIVE_FAILURES times in a row: the rest were not tried.
    mail_server_down: bool = False


def _deliver_batch(notification_ids, now=None, deadline: float | None = None, failures: int = 0) -> BatchOutcome:
    """`deliver_many`, stopping early when the mail server keeps failing (counting on
    from `failures` in a row before this batch) or, before claiming the next row, once
    `deadline` (on `clock`) has passed. The rows not tried stay unclaimed, due for the
    re-send at once."""
    connection = _SharedConnection()
    outcome = BatchOutcome()
    unmarked = None  # the row just handed over: its mark rides on the next claim
    try:
        for notification_id in notification_ids:
            if deadline is not None and clock() >= deadline:
                break
            result = _deliver(notification_id, now, connection.send, sent_before=unmarked, mark=False)
            unmarked = notification_id if result == SENT else None
            if result == FAILED:
                connection.close()
                failures += 1
                if failures >= MAX_CONSECUTIVE_FAILURES:
                    logger.warning("%d sends failed in a row; the rest of this batch waits for the re-send", failures)
                    outcome.mail_server_down = True
                    break
            elif result == SENT:
                outcome.sent += 1
                failures = 0
    finally:
        if unmarked is not None:
            _mark_sent(unmarked)
        connection.close()
    outcome.failures = failures
    return outcome


@dataclass
class DrainOutcome:
    sent: int
    # Rows were still due when the time budget ran out: the caller should carry on.
    more: bool


def drain_pending(now=None) -> DrainOutcome:
    """The re-send: send every due row, RESEND_BATCH at a time, until none is left, the
    mail server keeps failing (the next scheduled re-send tries again), or
    RESEND_BUDGET_SECONDS have passed (then `more` is True). Several drains may run at
    once: each row is still claimed on its own, so no e-mail goes out twice."""
    deadline = clock() + RESEND_BUDGET_SECONDS
    sent = failures = 0
    while True:
        ids = pending_ids(now=now, limit=RESEND_BATCH)
        if not ids:
            return DrainOutcome(sent, more=False)
        if clock() >= deadline:
            return DrainOutcome(sent, more=True)
        outcome = _deliver_batch(ids, now, deadline, failures)
        sent, failures = sent + outcome.sent, outcome.failures
        if outcome.mail_server_down:
            return DrainOutcome(sent, more=False)


def enqueue_resend() -> None:
    """Ask a worker to carry on draining the outbox now rather than at the next
    scheduled re-send; behind the sweeps, like the bulk deliveries."""
    try:
        resend_pending_notifications.apply_async(priority=BULK_DELIVERY_PRIORITY)
    except Exception:  # noqa: BLE001 - any broker failure: the scheduled re-send carries on
        logger.warning("Broker unavailable; the outbox backlog waits for the next scheduled re-send", exc_info=True)


def requeue(notification_ids, now=None) -> int:
    """Staff's "resend now": make unsent notifications due at once (a failed one gets its
    attempts back) and queue their delivery after commit. Sent ones are never re-sent,
    and one a sender holds right now is left to it."""
    now = now or timezone.now()
    unlocked = Q(locked_until__isnull=True) | Q(locked_until__lt=now)
    rows = Notification.objects.filter(unlocked).exclude(status=NotificationStatus.SENT)
    ids = list(rows.filter(pk__in=list(notification_ids)).values_list("pk", flat=True))
    rows.filter(pk__in=ids).update(
        status=NotificationStatus.PENDING, attempts=0, next_attempt_at=now, locked_until=None
    )
    for notification_id in ids:
        transaction.on_commit(lambda pk=notification_id: enqueue_delivery(pk))
    return len(ids)


def pending_ids(now=None, limit: int = 200) -> list[int]:
    """Notifications due for a (re-)send: never sent, not held by a live sender."""
    now = now or timezone.now()
    return list(
        Notification.objects.filter(status=NotificationStatus.PENDING, next_attempt_at__lte=now)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
