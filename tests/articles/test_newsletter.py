"""Newsletter sign-up: double opt-in, clear messages, signed links."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail, signing
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from articles import newsletter
from articles.models import Subscriber
from consultations.models import Notification

pytestmark = pytest.mark.django_db

URL = "/articles/newsletter/"


def _sign_up(client, email, consent="on", **extra):
    data = {"email": email, "next": extra.pop("next", "")}
    if consent:
        data["consent"] = consent
    return client.post(URL, data, follow=True, **extra)


def _links(message_body):
    confirm = next(line for line in message_body.splitlines() if "/newsletter/confirm/" in line).strip()
    unsubscribe = next(line for line in message_body.splitlines() if "/newsletter/unsubscribe/" in line)
    return confirm, unsubscribe.split(": ", 1)[-1].strip()


def _path(url, settings):
    return url.removeprefix(settings.SITE_URL)


def test_sign_up_stores_consent_and_emails_a_confirmation_link(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = _sign_up(client, "  Reader@Example.com ")
    assert newsletter.SIGN_UP_REPLY in response.content.decode()
    assert "reader@example.com" not in response.content.decode().lower()
    subscriber = Subscriber.objects.get()
    assert subscriber.email == "reader@example.com"
    assert subscriber.consented_at is not None
    assert subscriber.confirmed_at is None
    assert not subscriber.is_active
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["reader@example.com"]
    assert "/articles/newsletter/confirm/" in mail.outbox[0].body
    assert Notification.objects.get().recipient is None


@pytest.mark.parametrize("bad", ["", "not-an-email", "a@b", "<script>@x.com", "x" * 250 + "@example.com"])
def test_bad_email_gets_a_clear_message_next_to_the_field(client, bad):
    response = client.post(URL, {"email": bad, "consent": "on"})
    assert response.status_code == 200
    html = response.content.decode()
    error = re.search(r'class="invalid-feedback" id="id_email-error">([^<]+)<', html).group(1)
    assert "e-mail address" in error or "at most 254 characters" in error
    assert Subscriber.objects.count() == 0
    assert "<script>@x.com" not in html


def test_missing_consent_is_refused_and_the_email_is_kept(client):
    response = client.post(URL, {"email": "keep@example.com"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Please tick the box" in html
    assert 'value="keep@example.com"' in html
    assert Subscriber.objects.count() == 0


def test_repeat_while_waiting_for_confirmation_does_not_mail_again_at_once(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _sign_up(client, "twice@example.com")
        response = _sign_up(client, "TWICE@example.com")
    assert newsletter.SIGN_UP_REPLY in response.content.decode()
    assert len(mail.outbox) == 1
    assert Subscriber.objects.count() == 1


def test_repeat_later_sends_the_link_again():
    now = timezone.now()
    newsletter.subscribe("later@example.com", now=now)
    subscriber, outcome = newsletter.subscribe("later@example.com", now=now + timedelta(minutes=11))
    assert outcome is newsletter.Outcome.CONFIRMATION_RESENT
    assert subscriber.confirmations_sent == 2
    assert Notification.objects.filter(to_email="later@example.com").count() == 2


def test_confirm_then_repeat_sends_nothing_more(client, settings, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _sign_up(client, "fan@example.com")
    confirm_url, _ = _links(mail.outbox[0].body)

    page = client.get(_path(confirm_url, settings))
    assert page.status_code == 200 and b"Yes, subscribe me" in page.content
    assert Subscriber.objects.get().confirmed_at is None, "opening the link alone must not confirm"

    done = client.post(_path(confirm_url, settings))
    assert b"is now subscribed" in done.content
    assert Subscriber.objects.get().is_active

    again = client.post(_path(confirm_url, settings))
    assert b"already confirmed" in again.content

    response = _sign_up(client, "fan@example.com")
    assert newsletter.SIGN_UP_REPLY in response.content.decode()
    assert len(mail.outbox) == 1


def test_unsubscribe_link_stops_the_newsletter(client, settings, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _sign_up(client, "bye@example.com")
    confirm_url, unsubscribe_url = _links(mail.outbox[0].body)
    client.post(_path(confirm_url, settings))

    assert b"Unsubscribe" in client.get(_path(unsubscribe_url, settings)).content
    done = client.post(_path(unsubscribe_url, settings))
    assert b"is unsubscribed" in done.content
    subscriber = Subscriber.objects.get()
    assert subscriber.unsubscribed_at is not None and not subscriber.is_active
    assert b"already unsubscribed" in client.post(_path(unsubscribe_url, settings)).content

    # An old confirmation link cannot quietly re-subscribe the address.
    stale = client.post(_path(confirm_url, settings))
    assert stale.status_code == 400
    assert not Subscriber.objects.get().is_active


def test_signing_up_again_after_unsubscribing_needs_a_new_confirmation():
    subscriber, _ = newsletter.subscribe("back@example.com")
    newsletter.confirm(newsletter.confirm_token(subscriber))
    newsletter.unsubscribe(newsletter.unsubscribe_token(subscriber))
    subscriber, outcome = newsletter.subscribe("back@example.com")
    assert outcome is newsletter.Outcome.CONFIRMATION_SENT
    assert subscriber.confirmed_at is None and subscriber.unsubscribed_at is None


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        signing.dumps({"id": 1, "email": "x@example.com"}, salt="wrong-salt"),
    ],
)
def test_forged_links_are_refused(client, token):
    newsletter.subscribe("x@example.com")
    response = client.post(reverse("articles:newsletter_confirm", args=[token]))
    assert response.status_code == 400
    assert b"not valid" in response.content
    assert not Subscriber.objects.get().is_active


def test_unsubscribe_token_does_not_confirm(client):
    subscriber, _ = newsletter.subscribe("x@example.com")
    token = newsletter.unsubscribe_token(subscriber)
    assert client.post(reverse("articles:newsletter_confirm", args=[token])).status_code == 400


def test_expired_confirmation_link_is_explained(client):
    subscriber, _ = newsletter.subscribe("slow@example.com")
    token = newsletter.confirm_token(subscriber)
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        response = client.post(reverse("articles:newsletter_confirm", args=[token]))
    assert response.status_code == 400
    assert b"expired" in response.content


def test_next_only_allows_local_pages(client, article):
    response = _sign_up(client, "a@example.com", next="https://evil.example/")
    assert b"evil.example" not in response.content
    response = _sign_up(client, "b@example.com", next=article.get_absolute_url())
    assert f'href="{article.get_absolute_url()}"'.encode() in response.content


ATTACKER_TEXT = "call-555-0100-now@your-account-is-blocked.test"


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_ORIGIN": "https://evil.example", "HTTP_REFERER": "https://evil.example/page"},
        {"HTTP_ORIGIN": "null"},  # a sandboxed frame or a data: page
        {"HTTP_SEC_FETCH_SITE": "cross-site"},
        {"HTTP_SEC_FETCH_SITE": "same-site", "HTTP_ORIGIN": "https://blog.testserver"},
    ],
    ids=["other-origin", "opaque-origin", "fetch-metadata", "sibling-subdomain"],
)
def test_cross_site_post_is_refused_and_shows_nothing_it_sent(headers, django_capture_on_commit_callbacks):
    """Issue 11 item 9: another site's post made the portal say "…sent a confirmation link to <its text>"."""
    # The form sits on pages cached for every visitor, so it carries no CSRF
    # token; the browser's own Origin / Sec-Fetch-Site headers stop the forgery.
    browser = Client(enforce_csrf_checks=True)
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(URL, {"email": ATTACKER_TEXT, "consent": "on"}, **headers)
    assert response.status_code == 403
    html = response.content.decode()
    assert "your-account-is-blocked" not in html
    assert "came from another website" in html
    assert not Subscriber.objects.exists()
    assert mail.outbox == []


def test_cross_site_attempt_to_confirm_is_refused(django_capture_on_commit_callbacks, settings):
    with django_capture_on_commit_callbacks(execute=True):
        _sign_up(Client(), "victim@example.com")
    # Confirming stays behind a CSRF token: only the address owner, from the e-mail's link.
    confirm_url, _ = _links(mail.outbox[0].body)
    forged = Client(enforce_csrf_checks=True).post(_path(confirm_url, settings), HTTP_ORIGIN="https://evil.example")
    assert forged.status_code == 403
    assert not Subscriber.objects.get().is_active


def test_same_site_post_from_a_browser_is_accepted(django_capture_on_commit_callbacks):
    browser = Client(enforce_csrf_checks=True)
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(
            URL,
            {"email": "reader@example.com", "consent": "on"},
            HTTP_ORIGIN="http://testserver",
            HTTP_SEC_FETCH_SITE="same-origin",
        )
    assert response.status_code == 302
    assert Subscriber.objects.get().email == "reader@example.com"
    assert len(mail.outbox) == 1


def _reply_for(email: str) -> bytes:
    response = Client().post(URL, {"email": email, "consent": "on"}, follow=True)
    assert response.status_code == 200
    return response.content


def test_every_state_of_an_address_gets_the_same_reply_which_names_no_address(django_capture_on_commit_callbacks):
    """Issue 11 item 9: three different replies told whether an address reads the medical newsletter."""
    now = timezone.now()
    newsletter.subscribe("waiting@reader.test", now=now)
    newsletter.subscribe("waited-long@reader.test", now=now - timedelta(hours=1))
    reader, _ = newsletter.subscribe("reader@reader.test", now=now - timedelta(days=30))
    Subscriber.objects.filter(pk=reader.pk).update(confirmed_at=now - timedelta(days=29))
    left, _ = newsletter.subscribe("left@reader.test", now=now - timedelta(days=30))
    Subscriber.objects.filter(pk=left.pk).update(confirmed_at=now - timedelta(days=29), unsubscribed_at=now)

    states = ["new@reader.test", "waiting@reader.test", "waited-long@reader.test", "reader@reader.test"]
    replies = {email: _reply_for(email) for email in [*states, "left@reader.test"]}

    assert len(set(replies.values())) == 1, "a reply differs with the address's state"
    page = replies["new@reader.test"].decode()
    assert newsletter.SIGN_UP_REPLY in page
    assert "@reader.test" not in page


def test_sign_up_form_on_the_cached_article_page_works_without_a_token(article, django_capture_on_commit_callbacks):
    reader = Client(enforce_csrf_checks=True)
    reader.get(article.get_absolute_url())
    page = reader.get(article.get_absolute_url())
    assert not page.templates, "served from the stored copy"
    html = page.content.decode()
    form = html.split('id="newsletter"', 1)[1].split("</form>", 1)[0]
    assert "csrfmiddlewaretoken" not in form
    next_value = re.search(r'name="next" value="([^"]*)"', form).group(1)
    with django_capture_on_commit_callbacks(execute=True):
        response = reader.post(URL, {"email": "reader@reader.test", "consent": "on", "next": next_value}, follow=True)
    assert newsletter.SIGN_UP_REPLY in response.content.decode()
    assert f'href="{article.get_absolute_url()}"' in response.content.decode()
    assert len(mail.outbox) == 1


def test_sign_up_posts_are_rate_limited_per_client(client, settings):
    settings.RATELIMIT_ENABLED = True
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "newsletter": (2, 3600)}
    for n in range(2):
        assert client.post(URL, {"email": f"n{n}@reader.test", "consent": "on"}).status_code == 302
    refused = client.post(URL, {"email": "n2@reader.test", "consent": "on"})
    assert refused.status_code == 429
    assert Subscriber.objects.count() == 2


def test_the_request_does_the_same_work_for_a_new_and_a_subscribed_address(
    monkeypatch, django_capture_on_commit_callbacks
):
    """Issue 11 item 9: the reply time must not tell a reader's address from a new one either.
    The request stores the address with one statement, the same either way (the SQL is
    compared without its values); the rest, and any e-mail, is the worker's."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from articles import tasks

    sent = []
    monkeypatch.setattr(tasks.newsletter_sign_up, "delay", lambda *args: sent.append(args))
    now = timezone.now()
    reader, _ = newsletter.subscribe("reader@reader.test", now=now)
    Subscriber.objects.filter(pk=reader.pk).update(confirmed_at=now)
    mail.outbox.clear()

    queries = {}
    for email in ("new@reader.test", "reader@reader.test"):
        with CaptureQueriesContext(connection) as captured, django_capture_on_commit_callbacks(execute=True):
            assert Client().post(URL, {"email": email, "consent": "on"}).status_code == 302
        queries[email] = [re.sub(r"'[^']*'|\b\d+\b", "?", query["sql"]) for query in captured.captured_queries]
    assert queries["new@reader.test"] == queries["reader@reader.test"]
    new = Subscriber.objects.get(email="new@reader.test")
    assert sent == [(new.pk, sent[0][1]), (reader.pk, sent[1][1])], "only ids reach the broker"
    assert new.confirmations_sent == 0 and not mail.outbox, "the e-mail is left to the worker"


def test_sign_up_is_done_in_the_request_when_the_broker_is_down(monkeypatch, django_capture_on_commit_callbacks):
    from articles import tasks

    def broker_down(*args):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(tasks.newsletter_sign_up, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        response = _sign_up(Client(), "reader@reader.test")
    assert newsletter.SIGN_UP_REPLY in response.content.decode()
    assert Subscriber.objects.get().email == "reader@reader.test"
    assert len(mail.outbox) == 1
