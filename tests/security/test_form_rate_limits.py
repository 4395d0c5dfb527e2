"""Rate limits on the forms that create things or send e-mail: asking a question
(per patient), sign-up and password reset (per address). Over the limit the
visitor gets the friendly 429 page and nothing is saved or sent."""

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse

from consultations.models import Question
from portal import ratelimit

pytestmark = pytest.mark.django_db
User = get_user_model()

HOUR = 3600
FRIENDLY = "Please wait a moment"


@pytest.fixture
def limits(settings):
    """Limits on, with small ceilings; counters from earlier runs wiped."""
    settings.RATELIMIT_ENABLED = True
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "ask": (2, HOUR), "signup": (2, HOUR), "password_reset": (2, HOUR)}

    def fresh(scope, ident):
        ratelimit.reset(scope, ident, HOUR)

    return fresh


def assert_friendly_429(response):
    assert response.status_code == 429
    html = response.content.decode()
    assert FRIENDLY in html
    assert "2 in 60 minutes" in html


# --- Asking -----------------------------------------------------------------------


@pytest.fixture
def ask_data(specialty):
    return {
        "specialty": str(specialty.pk),
        "title": "Rash after a new soap",
        "description": "Red patches on both hands since Monday.",
        "age": "40",
        "sex": "male",
        "consent": "on",
    }


def test_asking_over_the_limit_is_refused_kindly_and_saves_nothing(client, patient, ask_data, limits):
    limits("ask", f"user:{patient.pk}")
    client.force_login(patient)
    url = reverse("consultations:ask")
    assert [client.post(url, ask_data).status_code for _ in range(2)] == [302, 302]
    assert_friendly_429(client.post(url, ask_data))
    assert Question.objects.count() == 2
    # Reading the form is never limited.
    assert client.get(url).status_code == 200


def test_the_ask_limit_is_per_patient(client, patient, other_patient, ask_data, limits):
    limits("ask", f"user:{patient.pk}")
    limits("ask", f"user:{other_patient.pk}")
    url = reverse("consultations:ask")
    client.force_login(patient)
    for _ in range(3):
        client.post(url, ask_data)
    neighbour = Client()
    neighbour.force_login(other_patient)
    assert neighbour.post(url, ask_data).status_code == 302
    assert Question.objects.filter(patient=other_patient).count() == 1


def test_asking_within_the_limit_is_untouched(client, patient, ask_data, settings):
    settings.RATELIMIT_ENABLED = True
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "ask": (10, HOUR)}
    ratelimit.reset("ask", f"user:{patient.pk}", HOUR)
    client.force_login(patient)
    assert all(client.post(reverse("consultations:ask"), ask_data).status_code == 302 for _ in range(3))
    assert Question.objects.count() == 3


# --- Sign-up ------------------------------------------------------------------------


def signup_data(n: int) -> dict:
    password = "a-Long-signup-passphrase-9"
    return {
        "email": f"newcomer{n}@example.com",
        "full_name": f"Newcomer {n}",
        "password1": password,
        "password2": password,
        "accept_terms": "on",
    }


def test_sign_up_over_the_limit_is_refused_kindly_and_creates_no_account(limits):
    limits("signup", "ip:192.0.2.10")
    # A fresh browser each time: a signed-up visitor is signed in and would be sent on.
    statuses = [
        Client().post(reverse("signup"), signup_data(n), REMOTE_ADDR="192.0.2.10").status_code for n in range(2)
    ]
    assert statuses == [302, 302]
    assert_friendly_429(Client().post(reverse("signup"), signup_data(2), REMOTE_ADDR="192.0.2.10"))
    assert sorted(User.objects.values_list("email", flat=True)) == ["newcomer0@example.com", "newcomer1@example.com"]


def test_the_sign_up_limit_is_per_address(limits):
    limits("signup", "ip:192.0.2.20")
    limits("signup", "ip:192.0.2.21")
    for n in range(3):
        Client().post(reverse("signup"), signup_data(n), REMOTE_ADDR="192.0.2.20")
    other = Client().post(reverse("signup"), signup_data(5), REMOTE_ADDR="192.0.2.21")
    assert other.status_code == 302
    assert User.objects.filter(email="newcomer5@example.com").exists()


# --- Password reset -------------------------------------------------------------------


def test_password_reset_over_the_limit_is_refused_kindly_and_sends_nothing(client, patient, limits):
    limits("password_reset", "ip:192.0.2.30")
    url = reverse("password_reset")
    sent = [client.post(url, {"email": patient.email}, REMOTE_ADDR="192.0.2.30").status_code for _ in range(2)]
    assert sent == [302, 302]
    assert_friendly_429(client.post(url, {"email": patient.email}, REMOTE_ADDR="192.0.2.30"))
    assert len(mail.outbox) == 2
    # The form itself still opens.
    assert client.get(url, REMOTE_ADDR="192.0.2.30").status_code == 200
