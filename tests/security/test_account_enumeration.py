"""Issue 11 items 12 and 21: the password reset and the sign-up tell nobody whether an
address has an account, and every link they send starts with SITE_URL."""

import re
from unittest import mock

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from consultations.models import Notification
from portal import tasks
from portal.models import User

pytestmark = pytest.mark.django_db

RESET_URL = reverse("password_reset")


@pytest.fixture
def queued(settings):
    """Messages published to the broker instead of run: (task name, args, kwargs)."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    published = []

    def publish(self, args=None, kwargs=None, **options):
        published.append((self.name, tuple(args or ()), dict(kwargs or {})))

    with mock.patch("celery.app.task.Task.apply_async", publish):
        yield published


def test_reset_queues_only_the_user_id_and_sends_nothing_from_the_request(client, patient, queued):
    """Issue 11 item 12: the e-mail is sent off the request; the task gets the user id only."""
    response = client.post(RESET_URL, {"email": "Patient@Example.com"})
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_done")
    assert queued == [(tasks.send_password_reset_email.name, (patient.pk,), {})]
    assert mail.outbox == []
    # The outbox stores bodies: no reset link may end up there.
    assert not Notification.objects.filter(body__contains="/accounts/password/reset/").exists()


def test_known_and_unknown_addresses_get_the_same_reply_and_the_same_work(client, patient, queued):
    """Issue 11 item 12: identical reply; the same queries and one queued message either way."""
    with CaptureQueriesContext(connection) as known_queries:
        known = client.post(RESET_URL, {"email": patient.email})
    with CaptureQueriesContext(connection) as unknown_queries:
        unknown = client.post(RESET_URL, {"email": "nobody@example.com"})
    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
    assert len(known_queries) == len(unknown_queries)
    assert [name for name, _, _ in queued] == [tasks.send_password_reset_email.name] * 2
    assert queued[1][1] == (None,)
    done_known = client.get(known["Location"]).content
    done_unknown = client.get(unknown["Location"]).content
    assert done_known == done_unknown


def test_the_worker_makes_a_working_link_from_site_url(client, patient, settings):
    """Issue 11 items 12 and 21: the task builds the link itself, from SITE_URL."""
    settings.SITE_URL = "https://portal.clinic.example"
    assert tasks.send_password_reset_email(patient.pk) is True
    (message,) = mail.outbox
    link = re.search(r"https://portal\.clinic\.example(/accounts/password/reset/\S+/)", message.body).group(1)
    page = client.get(link, follow=True)
    assert "Choose a new password" in page.content.decode()


def test_the_worker_sends_nothing_for_no_account_or_an_inactive_one(patient):
    """Issue 11 item 12."""
    assert tasks.send_password_reset_email(None) is False
    patient.is_active = False
    patient.save()
    assert tasks.send_password_reset_email(patient.pk) is False
    assert mail.outbox == []


def test_a_forged_host_header_does_not_reach_the_reset_link(client, patient, settings):
    """Issue 11 item 21: reset links were built from the request's Host header."""
    settings.ALLOWED_HOSTS = ["*"]
    settings.SITE_URL = "https://portal.clinic.example"
    client.post(RESET_URL, {"email": patient.email}, HTTP_HOST="evil.example")
    (message,) = mail.outbox
    assert "evil.example" not in message.body
    assert "https://portal.clinic.example/accounts/password/reset/" in message.body


# --- Sign-up ---------------------------------------------------------------------------------

SIGNUP_URL = reverse("signup")
CHOSEN = "a-Long-signup-passphrase-9"


def signup_data(email):
    return {"email": email, "full_name": "Sam Someone", "password1": CHOSEN, "password2": CHOSEN, "accept_terms": "on"}


def test_sign_up_replies_the_same_for_a_new_and_a_taken_address(client, patient, queued):
    """Issue 11 item 12: sign-up said outright that an account exists."""
    other = Client()
    taken = client.post(SIGNUP_URL, signup_data("Patient@Example.com"))
    new = other.post(SIGNUP_URL, signup_data("someone.new@example.com"))
    assert (taken.status_code, taken["Location"]) == (new.status_code, new["Location"]) == (302, reverse("signup_sent"))
    assert client.get(taken["Location"]).content == other.get(new["Location"]).content
    # One queued message each, carrying only an account id; no e-mail from the request.
    newcomer = User.objects.get(email="someone.new@example.com")
    assert queued == [
        (tasks.send_signup_email.name, (patient.pk,), {}),
        (tasks.send_signup_email.name, (newcomer.pk,), {}),
    ]
    assert mail.outbox == []


def test_a_taken_address_costs_a_password_hash_too(client, patient, queued):
    """Issue 11 item 12: the timing of the reply must not tell either (the hash is the slow part)."""
    with mock.patch("portal.signup.make_password") as hashed:
        client.post(SIGNUP_URL, signup_data(patient.email))
    assert hashed.call_args.args == (CHOSEN,)


def test_a_stranger_who_signed_up_with_someone_elses_address_cannot_finish(client):
    """Issue 11 item 12: the link goes to the address's owner; a later sign-up by the owner replaces the stranger's."""
    client.post(SIGNUP_URL, signup_data("owner@example.com"))  # the stranger
    stranger_link = re.search(r"(/accounts/signup/finish/\S+/)", mail.outbox[-1].body).group(1)
    owner = Client()
    owner_password = "the-Owners-own-passphrase-4"
    owner.post(
        SIGNUP_URL, {**signup_data("owner@example.com"), "password1": owner_password, "password2": owner_password}
    )
    owner_link = re.search(r"(/accounts/signup/finish/\S+/)", mail.outbox[-1].body).group(1)
    assert "This link no longer works" in owner.get(stranger_link).content.decode()
    assert owner.post(owner_link, {"password": owner_password}).status_code == 302
    account = User.objects.get(email="owner@example.com")
    assert account.is_active and account.check_password(owner_password)


def test_the_finish_link_comes_from_site_url(client, settings):
    """Issue 11 item 21: every absolute link, not only the reset one."""
    settings.ALLOWED_HOSTS = ["*"]
    settings.SITE_URL = "https://portal.clinic.example"
    client.post(SIGNUP_URL, signup_data("someone.new@example.com"), HTTP_HOST="evil.example")
    body = mail.outbox[-1].body
    assert "evil.example" not in body
    assert "https://portal.clinic.example/accounts/signup/finish/" in body
