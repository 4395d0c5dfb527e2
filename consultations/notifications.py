"""Outbox notifications: a row per message, written in the caller's transaction.

`queue_notification` renders the e-mail, stores it and asks Celery to send it
once the transaction commits. If the broker is unreachable at that moment the
row simply waits: the periodic re-send picks it up. `deliver` sends one row at
most once per claim (a conditional update takes it).

The guarantee: every row is sent, exactly once, with one narrow exception. A
sender that dies after handing the e-mail to the mail server but before marking
the row sent leaves it pending; once its lock expires the re-send sends it again.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.template import Context
from django.template.loader import get_template
from django.utils import timezone

from consultations.models import Notification, NotificationStatus

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8


def send_lock() -> timedelta:
    """How long a sender holds a row. If it dies mid-send (a killed worker), the
    re-send takes the row over only after this, so it must outlast the slowest
    send (EMAIL_TIMEOUT)."""
    return timedelta(seconds=getattr(settings, "NOTIFICATION_SEND_LOCK_SECONDS", 300))


def _render_text(template_name: str, context: dict) -> str:
    # Plain-text e-mail: HTML escaping would turn a patient's "don't" into "don&#x27;t".
    template = get_template(template_name).template
    return template.render(Context(context, autoescape=False))


def render_email(kind: str, context: dict) -> tuple[str, str]:
    context = {"SITE_URL": settings.SITE_URL, "SLA_ANSWER_HOURS": settings.SLA_ANSWER_HOURS, **context}
    subject = " ".join(_render_text(f"emails/{kind}_subject.txt", context).split())
    body = _render_text(f"emails/{kind}.txt", context)
    return subject[:200], body


def queue_notification(*, to_email, kind, context, dedupe_key, recipient=None, question=None):
    """Store one outgoing e-mail; send it after commit. Returns the row, or None if already queued."""
    subject, body = render_email(kind, context)
    try:
        with transaction.atomic():
            notification = Notification.objects.create(
                recipient=recipient,
                to_email=to_email,
                kind=kind,
                subject=subject,
                body=body,
                question=question,
                dedupe_key=dedupe_key[:200],
            )
    except IntegrityError:
        logger.info("Notification %s already queued", dedupe_key)
        return None
    transaction.on_commit(lambda: enqueue_delivery(notification.pk))
    return notification


def enqueue_delivery(notification_id: int) -> None:
    """Ask a worker to send; a broker outage only delays the e-mail."""
    from consultations.tasks import send_notification

    try:
        send_notification.delay(notification_id)
    except Exception:  # noqa: BLE001 - any broker failure: the re-send task recovers it
        logger.warning("Broker unavailable; notification %s waits for the re-send", notification_id, exc_info=True)


def retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


def deliver(notification_id: int, now=None) -> bool:
    """Send one pending notification if no other sender holds it. True when sent."""
    now = now or timezone.now()
    claimed = Notification.objects.filter(
        Q(locked_until__isnull=True) | Q(locked_until__lt=now),
        pk=notification_id,
        status=NotificationStatus.PENDING,
    ).update(locked_until=now + send_lock(), attempts=F("attempts") + 1)
    if claimed != 1:
        return False
    notification = Notification.objects.get(pk=notification_id)
    try:
        send_mail(notification.subject, notification.body, None, [notification.to_email])
    except Exception as exc:  # noqa: BLE001 - recorded and retried with backoff
        gave_up = notification.attempts >= MAX_ATTEMPTS
        Notification.objects.filter(pk=notification_id).update(
            status=NotificationStatus.FAILED if gave_up else NotificationStatus.PENDING,
            last_error=f"{type(exc).__name__}: {exc}"[:2000],
            locked_until=None,
            next_attempt_at=now + retry_delay(notification.attempts),
        )
        logger.warning("Sending notification %s failed: %s", notification_id, exc)
        return False
    Notification.objects.filter(pk=notification_id).update(
        status=NotificationStatus.SENT, sent_at=timezone.now(), locked_until=None, last_error=""
    )
    return True


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
