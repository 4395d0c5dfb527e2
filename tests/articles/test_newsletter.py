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
    assert "we have sent a confirmation link to reader@example.com" in response.content.decode()
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
    assert response.status_code == 400
    html = response.content.decode()
    error = re.search(r'class="invalid-feedback" id="id_email-error">([^<]+)<', html).group(1)
    assert "e-mail address" in error or "at most 254 characters" in error
    assert Subscriber.objects.count() == 0
    assert "<script>@x.com" not in html


def test_missing_consent_is_refused_and_the_email_is_kept(client):
    response = client.post(URL, {"email": "keep@example.com"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Please tick the box" in html
    assert 'value="keep@example.com"' in html
    assert Subscriber.objects.count() == 0


def test_repeat_while_waiting_for_confirmation_does_not_mail_again_at_once(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _sign_up(client, "twice@example.com")
        response = _sign_up(client, "TWICE@example.com")
    assert "a few minutes ago" in response.content.decode()
    assert len(mail.outbox) == 1
    assert Subscriber.objects.count() == 1


def test_repeat_later_sends_the_link_again():
    now = timezone.now()
    newsletter.subscribe("later@example.com", now=now)
    subscriber, outcome = newsletter.subscribe("later@example.com", now=now + timedelta(minutes=11))
    assert outcome is newsletter.Outcome.CONFIRMATION_RESENT
    assert subscriber.confirmations_sent == 2
    assert Notification.objects.filter(to_email="later@example.com").count() == 2


def test_confirm_then_repeat_says_already_subscribed(client, settings, django_capture_on_commit_callbacks):
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
    assert "already subscribed" in response.content.decode()
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


def test_cross_site_post_without_a_token_only_sends_a_confirmation_email(django_capture_on_commit_callbacks):
    # The form sits on pages cached for every visitor, so it carries no CSRF
    # token; a forged post from another site must achieve nothing beyond a
    # confirmation e-mail the address owner can ignore.
    browser = Client(enforce_csrf_checks=True)
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(
            URL,
            {"email": "victim@example.com", "consent": "on"},
            HTTP_ORIGIN="https://evil.example",
            HTTP_REFERER="https://evil.example/page",
            HTTP_SEC_FETCH_SITE="cross-site",
        )
    assert response.status_code == 302
    subscriber = Subscriber.objects.get()
    assert subscriber.email == "victim@example.com"
    assert not subscriber.is_active and subscriber.confirmed_at is None
    assert [message.to for message in mail.outbox] == [["victim@example.com"]]
    assert "/articles/newsletter/confirm/" in mail.outbox[0].body
    assert Notification.objects.count() == 1

    # Confirming stays behind a CSRF token: only the address owner, from the e-mail's link.
    confirm_url, _ = _links(mail.outbox[0].body)
    forged = browser.post(confirm_url.removeprefix("http://127.0.0.1:8000"), HTTP_ORIGIN="https://evil.example")
    assert forged.status_code == 403
    assert not Subscriber.objects.get().is_active


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
        response = reader.post(URL, {"email": "reader@example.com", "consent": "on", "next": next_value}, follow=True)
    assert "confirmation link to reader@example.com" in response.content.decode()
    assert f'href="{article.get_absolute_url()}"' in response.content.decode()
    assert len(mail.outbox) == 1


def test_sign_up_posts_are_rate_limited_per_client(client, settings):
    settings.RATELIMIT_ENABLED = True
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "newsletter": (2, 3600)}
    for n in range(2):
        assert client.post(URL, {"email": f"n{n}@example.com", "consent": "on"}).status_code == 302
    refused = client.post(URL, {"email": "n2@example.com", "consent": "on"})
    assert refused.status_code == 429
    assert Subscriber.objects.count() == 2
