"""Newsletter links and tasks carry no subscriber's address (security review 3, finding B).

The confirm and unsubscribe tokens sit in URL paths, so web server access logs keep
them: a signed (not encrypted) token must not hold who reads a medical newsletter.
The sign-up task's message (and the broker's dead-letter copy) must not hold it either.
Links already e-mailed in the old format keep working for their lifetime.
"""

import base64
import json
from datetime import timedelta

import pytest
import time_machine
from django.core import mail, signing
from django.urls import reverse
from django.utils import timezone

from articles import newsletter, tasks
from articles.models import Subscriber

pytestmark = pytest.mark.django_db

ADDRESS = "secret.reader@example.com"


def payload(token: str) -> str:
    """What anyone reading the URL can decode (the signature hides nothing)."""
    head = token.split(":")[0]
    compressed = head.startswith(".")
    raw = base64.urlsafe_b64decode(head.lstrip(".") + "=" * (-len(head.lstrip(".")) % 4))
    if compressed:
        import zlib

        raw = zlib.decompress(raw)
    return raw.decode()


@pytest.mark.parametrize("make", [newsletter.confirm_token, newsletter.unsubscribe_token])
def test_a_link_token_does_not_reveal_the_address(make):
    subscriber, _ = newsletter.subscribe(ADDRESS)
    token = make(subscriber)
    decoded = payload(token)
    assert "secret.reader" not in decoded and "example.com" not in decoded
    assert json.loads(decoded)["id"] == subscriber.pk
    assert "secret.reader" not in reverse("articles:newsletter_unsubscribe", args=[token])


def test_new_links_work_and_stop_when_the_address_changes():
    subscriber, _ = newsletter.subscribe(ADDRESS)
    confirm, unsubscribe = newsletter.confirm_token(subscriber), newsletter.unsubscribe_token(subscriber)
    assert newsletter.check_confirm_token(confirm) == subscriber
    assert newsletter.check_unsubscribe_token(unsubscribe) == subscriber

    Subscriber.objects.filter(pk=subscriber.pk).update(email="someone.else@example.com")
    for check, token in ((newsletter.check_confirm_token, confirm), (newsletter.check_unsubscribe_token, unsubscribe)):
        with pytest.raises(newsletter.NewsletterError):
            check(token)


def test_a_token_of_one_subscriber_does_not_open_another():
    first, _ = newsletter.subscribe(ADDRESS)
    second, _ = newsletter.subscribe("second@example.com")
    forged = signing.dumps(
        {"id": second.pk, "h": json.loads(payload(newsletter.unsubscribe_token(first)))["h"]},
        salt=newsletter.UNSUBSCRIBE_SALT,
    )
    with pytest.raises(newsletter.NewsletterError):
        newsletter.check_unsubscribe_token(forged)


def test_links_already_emailed_in_the_old_format_keep_working():
    subscriber, _ = newsletter.subscribe(ADDRESS)
    old = {"id": subscriber.pk, "email": ADDRESS}
    confirmed, changed = newsletter.confirm(signing.dumps(old, salt=newsletter.CONFIRM_SALT))
    assert changed and confirmed.is_active
    # An unsubscribe link has no expiry: one e-mailed a year ago still works.
    with time_machine.travel(timezone.now() + timedelta(days=365)):
        gone, changed = newsletter.unsubscribe(signing.dumps(old, salt=newsletter.UNSUBSCRIBE_SALT))
    assert changed and gone.unsubscribed_at is not None
    # And an old link still stops working when the address changed.
    Subscriber.objects.filter(pk=subscriber.pk).update(email="someone.else@example.com")
    with pytest.raises(newsletter.NewsletterError):
        newsletter.check_unsubscribe_token(signing.dumps(old, salt=newsletter.UNSUBSCRIBE_SALT))


def test_the_sign_up_task_gets_the_subscriber_id_not_the_address(monkeypatch, django_capture_on_commit_callbacks):
    sent = []
    monkeypatch.setattr(tasks.newsletter_sign_up, "delay", lambda *args: sent.append(args))

    with django_capture_on_commit_callbacks(execute=True):
        newsletter.sign_up(ADDRESS)

    assert len(sent) == 1 and not any("@" in str(arg) for arg in sent[0])
    assert not mail.outbox, "the e-mail is the worker's"
    with django_capture_on_commit_callbacks(execute=True):
        tasks.newsletter_sign_up(*sent[0])
    subscriber = Subscriber.objects.get()
    assert subscriber.email == ADDRESS and subscriber.pk == sent[0][0]
    assert [message.to for message in mail.outbox] == [[ADDRESS]]


def test_a_sign_up_task_queued_before_the_upgrade_is_still_done(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        tasks.newsletter_sign_up(ADDRESS, timezone.now().isoformat())
    assert Subscriber.objects.get().email == ADDRESS
    assert len(mail.outbox) == 1
