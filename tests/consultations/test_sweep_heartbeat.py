"""/healthz reports the SLA sweep's heartbeat: stale (503) when the last sweep is older than three intervals."""

from datetime import timedelta

import pytest
from django.utils import timezone

from consultations import sweep
from consultations.models import SweepRun
from portal.health import sweep_status
from tests.consultations.sweep_support import question_started

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _interval(settings):
    settings.SLA_SWEEP_SECONDS = 30


def test_healthz_reports_a_recent_sweep_as_healthy(client):
    sweep.run_sweep()

    response = client.get("/healthz")

    body = response.json()
    assert body["sweep"]["ok"] is True
    assert body["sweep"]["age_seconds"] < 90
    assert body["sweep"]["max_age_seconds"] == 90
    assert body["sweep"]["last_run"] == {"warned": 0, "breached": 0, "lead_escalated": 0, "errors": 0}
    assert response.status_code == (200 if body["broker"]["ok"] else 503)


def test_healthz_is_503_when_the_last_sweep_is_older_than_three_intervals(client):
    sweep.run_sweep(now=timezone.now() - timedelta(seconds=100))

    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["ok"] is False
    assert body["sweep"]["ok"] is False
    assert body["sweep"]["age_seconds"] >= 100
    assert "older than three intervals" in body["sweep"]["error"]


def test_staleness_boundary_is_three_intervals(settings):
    settings.SLA_SWEEP_SECONDS = 10
    result = sweep.run_sweep()
    finished = SweepRun.objects.get(pk=result.run_id).finished_at

    assert sweep_status(now=finished + timedelta(seconds=30))["ok"] is True
    assert sweep_status(now=finished + timedelta(seconds=30, microseconds=1))["ok"] is False


def test_a_sweep_that_never_finished_is_no_heartbeat():
    now = timezone.now()
    sweep.run_sweep(now=now - timedelta(minutes=10))
    SweepRun.objects.create(started_at=now)  # crashed mid-run

    status = sweep_status(now=now)

    assert status["ok"] is False
    assert status["age_seconds"] >= 600


def test_no_sweep_yet_and_nothing_waiting_is_healthy(db):
    status = sweep_status()

    assert status == {"ok": True, "age_seconds": None, "max_age_seconds": 90, "last_run": None}


def test_no_sweep_yet_with_a_question_just_submitted_is_healthy(specialty):
    question_started(timezone.now() - timedelta(seconds=20), specialty)

    assert sweep_status()["ok"] is True


def test_no_sweep_ever_while_a_question_waits_longer_than_three_intervals_is_stale(client, specialty):
    question_started(timezone.now() - timedelta(minutes=5), specialty)

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["sweep"] == {
        "ok": False,
        "age_seconds": None,
        "max_age_seconds": 90,
        "last_run": None,
        "error": "No SLA sweep has run yet while questions wait for an answer.",
    }
