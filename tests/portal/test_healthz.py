"""Issue 12 (/healthz): a load balancer gets up / not up and why in one word; the
detail (ages, counts, error class names) is only for staff with the SLA
dashboard permission or the monitoring token.

/healthz asks only what a web node needs to serve pages (the database), so a dead
broker or beat never takes every node out of the load balancer; /healthz/sla asks
everything the 4-hour guarantee needs, for monitoring."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from consultations import levels, sweep
from portal import health
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TOKEN = "a-long-random-monitoring-token"
DETAILS = "/healthz/details"
SLA = "/healthz/sla"


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.SLA_SWEEP_SECONDS = 30
    settings.STAFF_METRICS_TOKEN = TOKEN


@pytest.fixture
def broker_up(monkeypatch):
    """The broker answers, whatever this machine's Redis does (its check has tests of its own)."""
    monkeypatch.setattr(health, "broker_status", lambda: {"ok": True, "transport": "redis"})


def broker_down(monkeypatch):
    monkeypatch.setattr(health, "broker_status", lambda: {"ok": False, "error": "OperationalError"})


def database_down(monkeypatch):
    monkeypatch.setattr(health, "database_status", lambda connection: {"ok": False, "error": "OperationalError"})


def stale_sweep():
    sweep.run_sweep(now=timezone.now() - timedelta(minutes=10))


def assert_one_word(response, word, status):
    assert response.status_code == status
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content.decode() == f"{word}\n"
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.parametrize("probe", ["/healthz", SLA])
def test_healthy_is_200_ok(client, broker_up, probe):
    sweep.run_sweep()

    assert_one_word(client.get(probe), "ok", 200)


@pytest.mark.parametrize("probe", ["/healthz", SLA])
def test_a_fresh_install_with_nothing_waiting_is_ok(client, broker_up, probe):
    assert_one_word(client.get(probe), "ok", 200)


def test_the_load_balancer_probe_fails_only_without_the_database(client, broker_up, monkeypatch):
    sweep.run_sweep()
    database_down(monkeypatch)

    assert_one_word(client.get("/healthz"), "database", 503)


@pytest.mark.parametrize(
    "break_it",
    [lambda monkeypatch: broker_down(monkeypatch), lambda monkeypatch: stale_sweep()],
    ids=["broker", "sweep"],
)
def test_a_dead_broker_or_beat_keeps_web_nodes_in_the_load_balancer(client, broker_up, monkeypatch, break_it):
    """Patients can still read, ask and be answered: only monitoring hears of it."""
    break_it(monkeypatch)  # the sweep case leaves only a stale run; the broker case none, which is fine

    assert_one_word(client.get("/healthz"), "ok", 200)
    assert client.get(SLA).status_code == 503


@pytest.mark.parametrize(
    ("break_it", "word"),
    [
        (lambda monkeypatch: database_down(monkeypatch), "database"),
        (lambda monkeypatch: broker_down(monkeypatch), "broker"),
        (lambda monkeypatch: stale_sweep(), "sweep"),
    ],
    ids=["database", "broker", "sweep"],
)
def test_each_failure_is_503_and_one_word_naming_it(client, broker_up, monkeypatch, break_it, word):
    if word != "sweep":
        sweep.run_sweep()
    break_it(monkeypatch)

    assert_one_word(client.get(SLA), word, 503)


def test_the_database_is_named_first_when_everything_is_down(client, monkeypatch):
    broker_down(monkeypatch)
    database_down(monkeypatch)

    assert_one_word(client.get(SLA), "database", 503)


def test_the_public_answer_carries_no_counts_timings_or_error_names(client, monkeypatch):
    """Issue 12: nothing for the internet beyond the word, whoever asks."""
    broker_down(monkeypatch)
    stale_sweep()

    for auth in ({}, {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}):
        body = client.get(SLA, **auth).content.decode()
        assert body == "broker\n"
        assert "Error" not in body and "age" not in body and "{" not in body


@pytest.mark.parametrize("probe", ["/healthz", SLA])
def test_only_get_and_head_are_answered(client, broker_up, probe):
    sweep.run_sweep()

    assert client.head(probe).status_code == 200
    assert client.post(probe).status_code == 405


# --- The detailed view -------------------------------------------------------------------


def test_details_with_the_monitoring_token(client, monkeypatch):
    broker_down(monkeypatch)
    sweep.run_sweep()

    response = client.get(DETAILS, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 503
    body = response.json()
    assert body["ok"] is False
    assert body["status"] == "broker"
    assert body["broker"] == {"ok": False, "error": "OperationalError"}
    assert body["database"]["ok"] is True
    assert body["sweep"]["ok"] is True
    assert body["sweep"]["last_run"] == dict.fromkeys((*levels.counters(), "errors"), 0)


def test_details_are_200_when_healthy(client, broker_up):
    sweep.run_sweep()

    response = client.get(DETAILS, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_details_for_staff_with_the_dashboard_permission(client, broker_up):
    user = UserFactory(email="ops@example.com", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_sla_dashboard"))
    client.force_login(user)

    assert client.get(DETAILS).status_code == 200


@pytest.mark.parametrize("who", ["patient", "doctor", "staff_without_permission"])
def test_details_are_refused_to_anyone_else_signed_in(client, who, patient, doctor):
    user = {
        "patient": patient,
        "doctor": doctor.user,
        "staff_without_permission": UserFactory(email="desk@example.com", is_staff=True),
    }[who]
    client.force_login(user)

    assert client.get(DETAILS).status_code == 403


def test_details_send_anonymous_visitors_to_log_in(client):
    response = client.get(DETAILS)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("header", ["Bearer guessed", f"Basic {TOKEN}", "Bearer "])
def test_details_refuse_a_wrong_token(client, header):
    response = client.get(DETAILS, HTTP_AUTHORIZATION=header)

    assert response.status_code == 403
    assert "sweep" not in response.content.decode()


def test_details_refuse_every_token_when_none_is_configured(client, settings):
    settings.STAFF_METRICS_TOKEN = ""

    assert client.get(DETAILS, HTTP_AUTHORIZATION="Bearer ").status_code == 403
