"""Outbox notifications: a row per message, written in the caller's transaction.

`queue_notification` renders the e-mail, stores it and asks Celery to send it
once the transaction commits; `queue_notifications` does the same for many
rows at once (the SLA sweep), with one Celery message per chunk of rows. If
the broker is unreachable at that moment (or loses the messages) the rows
simply wait: the periodic re-send (`drain_pending`) sends every due row, batch
after batch, until none is left, with every worker joining in on a backlog.
How rows are sent, and the outbox's guarantee (every e-mail once, but for what
SMTP cannot close), is in `consultations.outbox_send`; its public functions are
imported here for the outbox's callers.

Single rows (a question's confirmation, a reply's notice) are handed to the workers
through a list in Redis (`enqueue_delivery`): each id is appended to it, and only the
id that finds the list empty publishes a Celery message, whose task takes the whole
list and sends it as a batch. Under load one message carries many e-mails; kombu
built, signed and pushed a full task message per e-mail (the largest cost left in a
patient's ask POST after the database). Why no id is left behind is in `enqueue_delivery`.

The outbox's Celery tasks are defined here, beside the functions that queue them, so
this module never imports `consultations.tasks` (which imports it, with the sweep);
their names stay `consultations.tasks.*`, as in messages already queued.
"""

import logging
import threading
from dataclasses import dataclass

from celery import shared_task
from django.conf import settings
from django.db import IntegrityError, router, transaction
from django.db.models import Q
from django.template import Context
from django.template.loader import get_template
from django.utils import timezone

from consultations.models import Notification, NotificationStatus
from consultations.outbox_send import (  # noqa: F401 - the outbox's sending side, for its callers
    MAX_ATTEMPTS,
    DrainOutcome,
    compose,
    deliver,
    deliver_chunk,
    deliver_many,
    drain_pending,
    message_id,
    pending_ids,
    retry_delay,
    send_lock,
)
from portal.database import insert_new, insert_rows

logger = logging.getLogger(__name__)

# Rows per Celery message when many are queued at once: few enough messages that
# publishing and taking them stays cheap (each is a claim and a mark at most), enough
# that a pool of workers shares a burst.
DELIVERY_CHUNK = 500
# Those messages wait behind everything else in the queue: a burst of thousands of
# escalation e-mails must not hold back the next sweep (the next escalations). The
# Redis transport serves lower numbers first (0, the default, before 3, 6, 9).
BULK_DELIVERY_PRIORITY = 6


def _render_text(template_name: str, context: dict) -> str:
    # Plain-text e-mail: HTML escaping would turn a patient's "don't" into "don&#x27;t".
    template = get_template(template_name).template
    return template.render(Context(context, autoescape=False))


def render_email(kind: str, context: dict) -> tuple[str, str]:
    return finish_email(*render_templates(kind, context))


def render_templates(kind: str, context: dict) -> tuple[str, str]:
    """The kind's two templates rendered as they are: (subject, body)."""
    context = {"SITE_URL": settings.SITE_URL, "SLA_ANSWER_HOURS": settings.SLA_ANSWER_HOURS, **context}
    return _render_text(f"emails/{kind}_subject.txt", context), _render_text(f"emails/{kind}.txt", context)


def finish_email(subject: str, body: str) -> tuple[str, str]:
    """A subject is one line of at most 200 characters."""
    return " ".join(subject.split())[:200], body


def queue_notification(
    *, to_email, kind, dedupe_key, context=None, email=None, recipient=None, question=None, key_is_new=False
):
    """Store one outgoing e-mail; send it after commit. Returns the row, or None if already queued.

    The e-mail is the kind's templates rendered with `context`, or `email`, a (subject,
    body) the caller made (the ask form's receipt, from consultations.email_skeletons).
    `key_is_new`: the caller knows no row can hold `dedupe_key` yet (it names a row
    created in the caller's transaction), so no savepoint guards the INSERT (two
    round trips fewer); a duplicate would then fail the caller's transaction.
    """
    subject, body = email if email is not None else render_email(kind, context)
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
        notification = Notification(**fields)
        insert_new(notification)
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
    """INSERT the rows at once; their ids, in the order given.

    Through `portal.database.insert_rows`, on PostgreSQL a COPY: inserting a sweep's
    e-mails is a good part of its time, time the sweep holds its questions' row locks,
    and bulk_create took about twice as long as the JSON document that preceded COPY
    (x1.96 for a 1,000-breach sweep's 4,000 e-mails, 0.52 s -> 1.03 s on a loaded
    machine; bench/outbox_internals.py).
    """
    # vars(), not dataclasses.asdict: the fields are plain values, and asdict's deep copy
    # cost 9 µs an e-mail (5 % of a sweep's CPU).
    rows = [{**vars(email), "dedupe_key": email.dedupe_key[:200]} for email in emails]
    ids = insert_rows(Notification, rows, using=router.db_for_write(Notification))
    if ids is not None:
        return ids
    # A database that cannot return them (SQLite before 3.35): look them up.
    keys = [row["dedupe_key"] for row in rows]
    return sorted(Notification.objects.filter(dedupe_key__in=keys).values_list("pk", flat=True))


@shared_task(name="consultations.tasks.send_notification", ignore_result=True)
def send_notification(notification_id: int) -> None:
    """Queued after commit for one outbox row; failures are recorded on the row and retried by the re-send."""
    deliver(notification_id)


@shared_task(name="consultations.tasks.send_notifications", ignore_result=True)
def send_notifications(notification_ids: list[int]) -> int:
    """Queued after commit for a chunk of outbox rows (the SLA sweep's): sent over one
    mail connection, claimed and marked a batch at a time. A chunk the time budget cut
    short leaves its rest to a re-send queued at once."""
    outcome = deliver_chunk(notification_ids)
    if outcome.out_of_time:
        enqueue_resend()
    return outcome.sent


@shared_task(name="consultations.tasks.resend_pending_notifications", ignore_result=True)
def resend_pending_notifications(join_in: bool = True) -> int:
    """Periodic safety net: send whatever a lost message, a broker outage or a crash left
    unsent. A backlog is drained in bounded runs, each queueing the next while rows
    remain; a scheduled run (`join_in`) that finds a backlog asks every worker to join
    in (SLA_SWEEP_PARALLEL runs in all), the rows shared out by their claims. A scheduled
    run also empties the hand-over list first: its rows are due, so this run sends them,
    and a list whose message was lost no longer holds back the next ids' messages."""
    if join_in:
        forget_listed()
    outcome = drain_pending()
    if outcome.more:
        enqueue_resend(count=settings.SLA_SWEEP_PARALLEL if join_in else 1)
    return outcome.sent


@shared_task(name="consultations.tasks.send_listed_notifications", ignore_result=True)
def send_listed_notifications() -> int:
    """Queued by the id that found the hand-over list empty: take every id listed so far
    and send those rows as a batch (each at most once: claimed, sent, marked). A run
    the time budget cut short leaves its rest to a re-send queued at once."""
    ids = take_listed()
    if not ids:
        return 0
    outcome = deliver_chunk(ids)
    if outcome.out_of_time:
        enqueue_resend()
    return outcome.sent


# The hand-over list: on the broker's Redis (it lives and dies with the queued messages),
# under the deployment's cache key prefix (as the article view counters).
LISTED_KEY = "outbox:listed"
_broker_client = None
_broker_client_url = ""
_broker_lock = threading.Lock()


def _listing():
    """The broker's Redis client and the hand-over list's key, or None when the broker is
    not Redis (local development: one message per e-mail, as before)."""
    global _broker_client, _broker_client_url
    url = settings.CELERY_BROKER_URL
    if not isinstance(url, str) or not url.startswith(("redis://", "rediss://")):
        return None
    with _broker_lock:
        if _broker_client is None or _broker_client_url != url:
            import redis

            timeout = settings.REDIS_TIMEOUT_SECONDS
            _broker_client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
            _broker_client_url = url
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "portal")
    return _broker_client, f"{prefix}:{LISTED_KEY}"


def take_listed() -> list[int]:
    """Every id on the hand-over list, emptying it in the same step (MULTI/EXEC): an id
    appended afterwards finds the list empty and publishes a message of its own."""
    listing = _listing()
    if listing is None:
        return []
    client, key = listing
    with client.pipeline(transaction=True) as pipe:
        pipe.lrange(key, 0, -1)
        pipe.delete(key)
        listed, _ = pipe.execute()
    return sorted({int(item) for item in listed})


def forget_listed() -> None:
    """Empty the hand-over list without sending (the periodic re-send sends every due row):
    a list whose message was lost would otherwise keep every later id from publishing."""
    listing = _listing()
    if listing is None:
        return
    client, key = listing
    try:
        client.delete(key)
    except Exception:  # noqa: BLE001 - the broker is failing: the next re-send tries again
        logger.warning("Could not empty the outbox hand-over list", exc_info=True)


def enqueue_delivery(notification_id: int) -> None:
    """Ask a worker to send, after commit; a broker outage only delays the e-mail.

    The id is appended to the hand-over list (one round trip). If it was the first, a
    message is published whose task takes the list (`send_listed_notifications`); if
    not, a message is already on its way that has not yet taken the list, and its
    `take_listed` (after this append, since it is the one that empties the list) takes
    this id too. A publish that fails empties the list, so the next id publishes again;
    the rows listed meanwhile are in the outbox and wait for the periodic re-send, as a
    lost message's row always did (which also empties a list whose message was lost).
    """
    listing = _listing()
    if listing is None:
        _publish_one(notification_id)
        return
    client, key = listing
    try:
        listed = client.rpush(key, notification_id)
    except Exception:  # noqa: BLE001 - the broker is failing: publishing would fail too
        logger.warning("Broker unavailable; notification %s waits for the re-send", notification_id, exc_info=True)
        return
    if listed > 1:
        return
    try:
        send_listed_notifications.delay()
    except Exception:  # noqa: BLE001 - any broker failure: the re-send task recovers them
        logger.warning("Broker unavailable; listed notifications wait for the re-send", exc_info=True)
        forget_listed()


def _publish_one(notification_id: int) -> None:
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


def enqueue_resend(count: int = 1) -> None:
    """Ask `count` workers to carry on draining the outbox now rather than at the next
    scheduled re-send; behind the sweeps, like the bulk deliveries. Each such run carries
    on alone (it asks no one to join in) and expires after a re-send interval, when the
    next scheduled one takes over: runs never pile up behind busy workers."""
    for _ in range(count):
        try:
            resend_pending_notifications.apply_async(
                kwargs={"join_in": False},
                priority=BULK_DELIVERY_PRIORITY,
                expires=float(settings.NOTIFICATION_RESEND_SECONDS),
            )
        except Exception:  # noqa: BLE001 - any broker failure: the scheduled re-send carries on
            logger.warning("Broker unavailable; the outbox backlog waits for the next scheduled re-send", exc_info=True)
            return


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
