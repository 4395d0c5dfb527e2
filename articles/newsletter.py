"""Newsletter sign-up with double opt-in.

`subscribe` stores the address with the consent time and e-mails a signed
confirmation link through the outbox; only `confirm` makes the address active.
The visitor gets the same reply (SIGN_UP_REPLY) whatever happened.
Every e-mail carries a signed unsubscribe link. Tokens are signed (not stored),
and stop working if the address changes. Signed is not encrypted and the tokens sit
in URL paths, which web server logs keep: so a token holds the subscriber's id and a
keyed hash of the address, never the address (who reads a medical newsletter).
"""

import enum
import logging
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

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


ADDRESS_HASH_SALT = "articles.newsletter.address"


def address_hash(email: str) -> str:
    """A short keyed hash of the address: ties a link to it without revealing it (keyed by
    SECRET_KEY, so a list of candidate addresses cannot be hashed and compared offline)."""
    return salted_hmac(ADDRESS_HASH_SALT, email, algorithm="sha256").hexdigest()[:16]


def _token(subscriber: Subscriber, salt: str) -> str:
    return signing.dumps({"id": subscriber.pk, "h": address_hash(subscriber.email)}, salt=salt)


def confirm_token(subscriber: Subscriber) -> str:
    return _token(subscriber, CONFIRM_SALT)


def unsubscribe_token(subscriber: Subscriber) -> str:
    return _token(subscriber, UNSUBSCRIBE_SALT)


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

        return _subscribe_known(subscriber, now)


def _subscribe_known(subscriber: Subscriber, now) -> tuple[Subscriber, Outcome]:
    """subscribe() for an address already stored, its row locked."""
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


def subscribe_stored(subscriber_id: int, now) -> tuple[Subscriber, Outcome] | None:
    """The worker's half of sign_up: the row the request stored (see store_address)."""
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().filter(pk=subscriber_id).first()
        if subscriber is None:
            return None  # deleted by staff meanwhile
        if subscriber.confirmations_sent == 0 and subscriber.confirmed_at is None:
            _send_confirmation(subscriber, now)  # the row the request has just stored
            return subscriber, Outcome.CONFIRMATION_SENT
        return _subscribe_known(subscriber, now)


def store_address(email: str, now) -> int:
    """The subscriber id of `email`, storing it if new, in one statement that is the same
    for a new and a known address (an INSERT that, on a known address, writes the row
    back unchanged), so the reply time does not tell them apart. Consent is recorded
    as given now only on a new row: the worker decides the rest, as subscribe() does."""
    table = connection.ops.quote_name(Subscriber._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (email, consented_at, created_at, confirmations_sent) "  # noqa: S608 - names are ours
            "VALUES (%s, %s, %s, 0) ON CONFLICT (email) DO UPDATE SET email = EXCLUDED.email RETURNING id",
            [email, now, now],
        )
        return cursor.fetchone()[0]


def sign_up(raw_email: str, now=None) -> None:
    """Subscribe in a worker, so that the request does the same work whatever the
    address's state: a new address costs an e-mail, a known one nothing, and the
    difference in reply time would tell them apart. The request stores the address
    (store_address: the same statement either way) and the task gets only its id: a
    Celery message (and the broker's dead-letter copy of it) holds no address. If
    the broker is unreachable the sign-up is done here instead of being lost."""
    now = now or timezone.now()
    subscriber_id = store_address(normalize_email(raw_email), now)
    # Once the row is committed (at once: the view runs in autocommit), so the worker finds it.
    transaction.on_commit(lambda: _hand_to_worker(subscriber_id, now))


def _hand_to_worker(subscriber_id: int, now) -> None:
    from articles.tasks import newsletter_sign_up

    try:
        newsletter_sign_up.delay(subscriber_id, now.isoformat())
    except Exception:  # noqa: BLE001 - any broker failure: do it in the request
        logger.warning("Broker unavailable; newsletter sign-up done in the request", exc_info=True)
        subscribe_stored(subscriber_id, now)


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
    subscriber = Subscriber.objects.filter(pk=data.get("id")).first() if isinstance(data, dict) else None
    if subscriber is None or not _same_address(data, subscriber.email):
        raise NewsletterError("We could not find this subscription. Please sign up again.")
    return subscriber


def _same_address(data: dict, email: str) -> bool:
    """Whether the token was made for this address. Tokens made before the address hash
    ({"id", "email"}) are still in people's mailboxes: unsubscribe links never expire,
    so that format is accepted for good (visiting such a link logs the address once
    more, as it always did; no new link carries it)."""
    if "h" in data:
        return constant_time_compare(str(data["h"]), address_hash(email))
    return "email" in data and data["email"] == email


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
