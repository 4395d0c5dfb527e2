"""/healthz/sla reports the SLA sweep's heartbeat: stale (503) when no sweep finished or made
progress within three intervals. The detail is read at /healthz/details with the token."""

from datetime import timedelta

import pytest
from django.utils import timezone

from consultations import levels, sweep
from consultations.heartbeat import sweep_status
from consultations.models import SweepRun
from tests.consultations.sweep_support import breached_by, question_started

pytestmark = pytest.mark.django_db


TOKEN = "a-long-random-monitoring-token"


@pytest.fixture(autouse=True)
def _interval(settings):
    settings.SLA_SWEEP_SECONDS = 30
    settings.STAFF_METRICS_TOKEN = TOKEN


def details(client):
    return client.get("/healthz/details", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")


def test_healthz_reports_a_recent_sweep_as_healthy(client):
    sweep.run_sweep()

    response = details(client)

    body = response.json()
    assert body["sweep"]["ok"] is True
    assert body["sweep"]["age_seconds"] < 90
    assert body["sweep"]["max_age_seconds"] == 90
    assert body["sweep"]["last_run"] == dict.fromkeys((*levels.counters(), "errors"), 0)
    assert response.status_code == (200 if body["broker"]["ok"] else 503)


def test_healthz_is_503_when_the_last_sweep_is_older_than_three_intervals(client):
    sweep.run_sweep(now=timezone.now() - timedelta(seconds=100))

    assert client.get("/healthz/sla").content == b"sweep\n"
    response = details(client)

    assert response.status_code == 503
    body = response.json()
    assert body["ok"] is False
    assert body["sweep"]["ok"] is False
    assert body["sweep"]["age_seconds"] >= 100
    assert "within three intervals" in body["sweep"]["error"]


def test_staleness_boundary_is_three_intervals(settings):
    settings.SLA_SWEEP_SECONDS = 10
    result = sweep.run_sweep()
    finished = SweepRun.objects.get(pk=result.run_id).finished_at

    assert sweep_status(now=finished + timedelta(seconds=30))["ok"] is True
    assert sweep_status(now=finished + timedelta(seconds=30, microseconds=1))["ok"] is False


def test_a_sweep_that_never_finished_is_no_heartbeat():
    now = timezone.now()
    finished = SweepRun.objects.get(pk=sweep.run_sweep(now=now - timedelta(minutes=10)).run_id).finished_at
    SweepRun.objects.create(started_at=now)  # crashed mid-run

    status = sweep_status(now=now)

    assert status["ok"] is False
    # The age of the finished one (10 minutes, plus the sweep's own run time).
    assert status["age_seconds"] == round((now - finished).total_seconds(), 1)


def test_no_sweep_yet_and_nothing_waiting_is_healthy(db):
    status = sweep_status()

    assert status == {"ok": True, "age_seconds": None, "max_age_seconds": 90, "last_run": None}


def test_no_sweep_yet_with_a_question_just_submitted_is_healthy(specialty):
    question_started(timezone.now() - timedelta(seconds=20), specialty)

    assert sweep_status()["ok"] is True


def test_no_sweep_ever_while_a_question_waits_longer_than_three_intervals_is_stale(client, specialty):
    question_started(timezone.now() - timedelta(minutes=5), specialty)

    response = details(client)

    assert response.status_code == 503
    assert response.json()["sweep"] == {
        "ok": False,
        "age_seconds": None,
        "max_age_seconds": 90,
        "last_run": None,
        "error": "No SLA sweep has run yet while questions wait for an answer.",
    }


# --- Issue 13 item 8: recovery shows at once, a long catch-up does not flap ----------------


class FakeClock:
    """Stands in for the sweep's `time` module: each batch takes as long as a test says."""

    def __init__(self):
        self.seconds = 0.0

    def monotonic(self):
        return self.seconds


def during_each_batch(monkeypatch, observe):
    """Call `observe()` inside every batch of the next sweep that claimed questions, before
    the batch's own work."""
    original = sweep.escalate_batch

    def wrapped(*args, **kwargs):
        observe()
        return original(*args, **kwargs)

    monkeypatch.setattr(sweep, "escalate_batch", wrapped)


def test_healthz_recovers_as_soon_as_the_first_sweep_after_an_outage_is_at_work(client, specialty, monkeypatch):
    """Issue 13 item 8: after an outage the first sweep is a catch-up; /healthz/sla is ok from its
    first batch on, not only once the whole catch-up has finished."""
    monkeypatch.setattr("portal.health.broker_status", lambda: {"ok": True})
    now = timezone.now()
    sweep.run_sweep(now=now - timedelta(minutes=10))  # the last sweep before the outage
    for _ in range(3):
        breached_by(now, specialty)
    assert client.get("/healthz/sla").content == b"sweep\n"
    answers = []
    during_each_batch(monkeypatch, lambda: answers.append(client.get("/healthz/sla").content))

    sweep.run_sweep(batch_size=1)

    assert answers == [b"ok\n"] * 3


def test_a_long_catch_up_that_keeps_making_progress_stays_healthy(specialty, monkeypatch):
    """Issue 13 item 8: a catch-up sweep longer than three intervals does not turn /healthz/sla
    red while it works; each batch is its heartbeat."""
    now = timezone.now()
    sweep.run_sweep(now=now - timedelta(seconds=30))
    for _ in range(5):
        breached_by(now, specialty)
    clock = FakeClock()
    monkeypatch.setattr(sweep, "time", clock)
    seen = []

    def batch_of_60_seconds():
        # Judged 59 s into a 60 s batch: the longest wait for the next heartbeat.
        seen.append(sweep_status(now=now + timedelta(seconds=clock.seconds + 59)))
        clock.seconds += 60

    during_each_batch(monkeypatch, batch_of_60_seconds)

    result = sweep.run_sweep(now=now, batch_size=1)

    assert result.breached == 5
    assert [status["ok"] for status in seen] == [True] * 5
    assert [status["age_seconds"] for status in seen] == [59.0] * 5
    assert len(seen[-1]["running"]) == 1
    assert seen[-1]["running"][0]["breached"] == 4  # progress so far is visible in the detail
    finished = sweep_status(now=now + timedelta(seconds=clock.seconds))
    assert finished["ok"] is True
    assert finished["running"] == []
    assert finished["last_run"]["breached"] == 5


def test_a_sweep_that_stops_making_progress_goes_stale():
    """A sweep that crashed mid-run stops beating: stale three intervals after its last batch."""
    now = timezone.now()
    sweep.run_sweep(now=now - timedelta(minutes=5))
    SweepRun.objects.create(started_at=now - timedelta(seconds=150), progress_at=now - timedelta(seconds=91))

    status = sweep_status(now=now)

    assert status["ok"] is False
    assert status["age_seconds"] == 91
    assert status["running"] == []


def test_the_latest_finish_counts_even_when_a_later_started_sweep_finished_first():
    """Two sweeps overlap: the one that started first may finish last; its finish is the heartbeat."""
    now = timezone.now()
    SweepRun.objects.create(
        started_at=now - timedelta(seconds=200), progress_at=now - timedelta(seconds=10), finished_at=now
    )
    SweepRun.objects.create(
        started_at=now - timedelta(seconds=120),
        progress_at=now - timedelta(seconds=119),
        finished_at=now - timedelta(seconds=119),
    )

    status = sweep_status(now=now)

    assert status["ok"] is True
    assert status["age_seconds"] == 0
