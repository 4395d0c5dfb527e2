"""The SLA sweep's heartbeat, the probe /healthz (portal.health) and the staff dashboard read.

Returns {"ok": bool, ...} and never raises.
"""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from consultations import levels
from consultations.models import Question, QuestionStatus, SweepRun

# What each run reports: one count per escalation level, then the errors.
COUNTS = (*levels.counters(), "errors")

# Sweeps looked at for the heartbeat. A sweep still running further back has had
# this many started after it; the newest of those shows beat and workers alive.
RECENT_RUNS = 10


def _heartbeat(run: dict):
    """When a sweep last showed life: its finish, else its recorded progress (None: none recorded)."""
    return run["finished_at"] or run["progress_at"]


def sweep_status(now=None) -> dict:
    """The SLA sweep's heartbeat: stale when no sweep finished or made progress within three intervals.

    A sweep records its progress when it starts and after every batch, so a long
    catch-up after an outage is healthy while it works (and from its first
    moment: recovery shows at once), and a sweep that crashed mid-run stops
    beating and goes stale like a missing one. Nothing here is cached.

    Before any sweep has ever run, the probe is healthy only while no sweep
    could have been needed yet: no running clock started more than three
    intervals ago (a fresh install with no questions, or the first seconds after
    start-up before beat's first run). Questions waiting longer than that with
    no sweep ever run mean the engine is not running: stale.
    """
    now = now or timezone.now()
    max_age = 3 * settings.SLA_SWEEP_SECONDS
    try:
        runs = list(
            SweepRun.objects.order_by("-started_at").values("started_at", "progress_at", "finished_at", *COUNTS)[
                :RECENT_RUNS
            ]
        )
        beating = [run for run in runs if _heartbeat(run) is not None]
        if not beating:
            return _before_any_sweep(now, max_age)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return {"ok": False, "error": type(exc).__name__}
    return _beating_status(beating, now, max_age)


def _before_any_sweep(now, max_age: int) -> dict:
    """Healthy only while no sweep could have been needed yet (see `sweep_status`)."""
    # A clock runs only while the question is open or waits for the patient: saying so lets
    # PostgreSQL read the small partial queue index instead of scanning every stored question.
    waiting = Question.objects.filter(
        status__in=(QuestionStatus.OPEN, QuestionStatus.INFO_REQUESTED),
        clock_due_at__isnull=False,
        clock_started_at__lt=now - timedelta(seconds=max_age),
    ).exists()
    status = {"ok": not waiting, "age_seconds": None, "max_age_seconds": max_age, "last_run": None}
    if waiting:
        status["error"] = "No SLA sweep has run yet while questions wait for an answer."
    return status


def _beating_status(beating: list[dict], now, max_age: int) -> dict:
    """The heartbeat of the recent sweeps that recorded one: its age, the last finished run, the running ones."""
    latest = max(_heartbeat(run) for run in beating)
    age = max((now - latest).total_seconds(), 0.0)
    finished = [run for run in beating if run["finished_at"] is not None]
    last = max(finished, key=lambda run: run["finished_at"], default=None)
    status = {
        "ok": age <= max_age,
        "age_seconds": round(age, 1),
        "max_age_seconds": max_age,
        "last_finished_at": last["finished_at"].isoformat() if last else None,
        "last_run": _counts(last) if last else None,
        "running": [
            {"started_at": run["started_at"].isoformat(), "progress_at": run["progress_at"].isoformat(), **_counts(run)}
            for run in beating
            if run["finished_at"] is None and (now - run["progress_at"]).total_seconds() <= max_age
        ],
    }
    if not status["ok"]:
        status["error"] = (
            "No SLA sweep finished or made progress within three intervals: is Celery beat or the worker down?"
        )
    return status


def _counts(run: dict) -> dict:
    return {key: run[key] for key in COUNTS}
