"""Health probes used by /healthz: each returns {"ok": bool, ...} and never raises."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone


def database_status(connection) -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "vendor": connection.vendor}


def broker_status() -> dict:
    from portal.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "transport": "redis" if settings.REDIS_URL else "filesystem"}


def sweep_status(now=None) -> dict:
    """The SLA sweep's heartbeat: stale when the last finished sweep is older than three intervals.

    Before any sweep has ever finished, the probe is healthy only while no sweep
    could have been needed yet: no running clock started more than three
    intervals ago (a fresh install with no questions, or the first seconds after
    start-up before beat's first run). Questions waiting longer than that with
    no sweep ever run mean the engine is not running: stale.
    """
    from consultations.models import Question, SweepRun

    now = now or timezone.now()
    max_age = 3 * settings.SLA_SWEEP_SECONDS
    try:
        last = (
            SweepRun.objects.filter(finished_at__isnull=False)
            .order_by("-started_at")
            .values("finished_at", "warned", "breached", "lead_escalated", "errors")
            .first()
        )
        if last is None:
            waiting = Question.objects.filter(
                clock_due_at__isnull=False, clock_started_at__lt=now - timedelta(seconds=max_age)
            ).exists()
            status = {"ok": not waiting, "age_seconds": None, "max_age_seconds": max_age, "last_run": None}
            if waiting:
                status["error"] = "No SLA sweep has run yet while questions wait for an answer."
            return status
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return {"ok": False, "error": type(exc).__name__}
    finished_at = last.pop("finished_at")
    age = max((now - finished_at).total_seconds(), 0.0)
    status = {
        "ok": age <= max_age,
        "age_seconds": round(age, 1),
        "max_age_seconds": max_age,
        "last_finished_at": finished_at.isoformat(),
        "last_run": last,
    }
    if not status["ok"]:
        status["error"] = "The last SLA sweep is older than three intervals: is Celery beat or the worker down?"
    return status
