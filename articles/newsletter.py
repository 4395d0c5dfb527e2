"""Newsletter sign-up with double opt-in.

`subscribe` stores the address with the consent time and e-mails a signed
confirmation link through the outbox; only `confirm` makes the address active.
The visitor gets the same reply (SIGN_UP_REPLY) whatever happened.
Every e-mail carries a signed unsubscribe link. Tokens are signed (not stored),
carry the address, and stop working if the address changes.
"""

import enum
import logging
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from articles.models import Subscriber
from consultations.notifications import queue_notification

logger = logging.getLogger(__name__)

CONFIRM_SALT = "articles.newsletter.confirm"
UNSUBSCRIBE_SALT = "articles.newsletter.unsubscribe"
CONFIRM_MAX_AGE = timedelta(days=7)
# A second sign-up within this time does not send another e-mail (no mail bombing).
RESEND_AFTER = timedelta(minutes=10)


class Outcome(enum.Enum):
    CONFIRMATION_SENT = "confirmation_sent"
    CONFIRMATION_RESENT = "confirmation_resent"
    CONFIRMATION_RECENTLY_SENT = "confirmation_recently_sent"
    ALREADY_SUBSCRIBED = "already_subscribed"


# The one reply to every sign-up, whatever the address's state (new, waiting,
# already subscribed, recently mailed, unsubscribed): it names no address and
# says nothing about one, so the page cannot tell who reads a medical newsletter
# nor show text chosen by someone else.
SIGN_UP_REPLY = (
    "Thank you. If this address can be subscribed, we have sent it a confirmation link. "
    "Your subscription starts only when you click that link. Nothing after a few minutes? "
    "Please check your spam folder."
)


class NewsletterError(Exception):
    """A bad or expired link; the message is shown to the person."""


def normalize_email(raw: str) -> str:
    email = (raw or "").strip().lower()
    validate_email(email)
    return email


def confirm_token(subscriber: Subscriber) -> str:
    return signing.dumps({"id": subscriber.pk, "email": subscriber.email}, salt=CONFIRM_SALT)


def unsubscribe_token(subscriber: Subscriber) -> str:
    return signing.dumps({"id": subscriber.pk, "email": subscriber.email}, salt=UNSUBSCRIBE_SALT)


def subscribe(raw_email: str, now=None) -> tuple[Subscriber, Outcome]:
    """Record consent and send (or re-send) the confirmation e-mail."""
    now = now or timezone.now()
    email = normalize_email(raw_email)
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().filter(email=email).first()
        if subscriber is None:
            try:
                with transaction.atomic():
                    subscriber = Subscriber.objects.create(email=email, consented_at=now, created_at=now)
            except IntegrityError:
                # The same address was signed up at the same moment elsewhere.
                subscriber = Subscriber.objects.select_for_update().get(email=email)
            else:
                _send_confirmation(subscriber, now)
                return subscriber, Outcome.CONFIRMATION_SENT

        if subscriber.is_active:
            return subscriber, Outcome.ALREADY_SUBSCRIBED
        resubscribing = subscriber.unsubscribed_at is not None
        if resubscribing:
            # A fresh start: new consent, and the address must be confirmed again.
            subscriber.unsubscribed_at = None
            subscriber.confirmed_at = None
            subscriber.consented_at = now
            subscriber.save(update_fields=["unsubscribed_at", "confirmed_at", "consented_at"])
            _send_confirmation(subscriber, now)
            return subscriber, Outcome.CONFIRMATION_SENT
        if subscriber.confirmation_sent_at and now - subscriber.confirmation_sent_at < RESEND_AFTER:
            return subscriber, Outcome.CONFIRMATION_RECENTLY_SENT
        subscriber.consented_at = now
        subscriber.save(update_fields=["consented_at"])
        _send_confirmation(subscriber, now)
        return subscriber, Outcome.CONFIRMATION_RESENT


def sign_up(raw_email: str, now=None) -> None:
    """Subscribe in a worker, so that the request does the same work whatever the
    address's state: a new address costs inserts and an e-mail, a known one
    nothing, and the difference in reply time would tell them apart. If the
    broker is unreachable the sign-up is done here instead of being lost."""
    from articles.tasks import newsletter_sign_up

    now = now or timezone.now()
    email = normalize_email(raw_email)
    try:
        newsletter_sign_up.delay(email, now.isoformat())
    except Exception:  # noqa: BLE001 - any broker failure: do it in the request
        logger.warning("Broker unavailable; newsletter sign-up done in the request", exc_info=True)
        subscribe(email, now=now)


def _absolute(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def _send_confirmation(subscriber: Subscriber, now) -> None:
    subscriber.confirmations_sent += 1
    subscriber.confirmation_sent_at = now
    subscriber.save(update_fields=["confirmations_sent", "confirmation_sent_at"])
    queue_notification(
        recipient=None,
        to_email=subscriber.email,
        kind="newsletter_confirm",
        context={
            "email": subscriber.email,
            "confirm_url": _absolute(reverse("articles:newsletter_confirm", args=[confirm_token(subscriber)])),
            "unsubscribe_url": _absolute(
                reverse("articles:newsletter_unsubscribe", args=[unsubscribe_token(subscriber)])
            ),
            "valid_days": CONFIRM_MAX_AGE.days,
        },
        dedupe_key=f"newsletter-confirm:{subscriber.pk}:{subscriber.confirmations_sent}",
    )


def _subscriber_from(token: str, salt: str, max_age=None) -> Subscriber:
    try:
        data = signing.loads(token, salt=salt, max_age=max_age)
    except signing.SignatureExpired:
        raise NewsletterError("This confirmation link has expired. Please sign up again to get a new one.")
    except signing.BadSignature:
        raise NewsletterError("This link is not valid. Please copy the whole link from the e-mail.")
    subscriber = Subscriber.objects.filter(pk=data.get("id"), email=data.get("email")).first()
    if subscriber is None:
        raise NewsletterError("We could not find this subscription. Please sign up again.")
    return subscriber


def check_confirm_token(token: str) -> Subscriber:
    return _subscriber_from(token, CONFIRM_SALT, max_age=CONFIRM_MAX_AGE)


def check_unsubscribe_token(token: str) -> Subscriber:
    return _subscriber_from(token, UNSUBSCRIBE_SALT)


def confirm(token: str, now=None) -> tuple[Subscriber, bool]:
    """Activate the subscription. Returns (subscriber, changed): False if it was already confirmed."""
    now = now or timezone.now()
    subscriber = check_confirm_token(token)
    if subscriber.unsubscribed_at is not None:
        raise NewsletterError("This address was unsubscribed after the link was sent. Please sign up again.")
    changed = Subscriber.objects.filter(pk=subscriber.pk, confirmed_at__isnull=True).update(confirmed_at=now)
    subscriber.refresh_from_db()
    return subscriber, changed == 1


def unsubscribe(token: str, now=None) -> tuple[Subscriber, bool]:
    """Stop all e-mails to the address. Returns (subscriber, changed)."""
    now = now or timezone.now()
    subscriber = check_unsubscribe_token(token)
    changed = Subscriber.objects.filter(pk=subscriber.pk, unsubscribed_at__isnull=True).update(unsubscribed_at=now)
    subscriber.refresh_from_db()
    return subscriber, changed == 1
