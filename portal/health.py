"""Health probes used by /healthz: each returns {"ok": bool, ...} and never raises.

The SLA sweep's heartbeat is the consultations app's own probe (consultations.heartbeat).
"""

from django.conf import settings


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


# The one word the public /healthz answers for each check, in the order they are tried.
CHECK_ORDER = ("database", "broker", "sweep")


def check_all(connection) -> dict:
    """Every check's detail, and `status`: "ok" or the first failing check's name."""
    from consultations import heartbeat

    checks = {"database": database_status(connection), "broker": broker_status()}
    database_ok = checks["database"]["ok"]
    checks["sweep"] = heartbeat.sweep_status() if database_ok else {"ok": False, "error": "database unavailable"}
    failing = [name for name in CHECK_ORDER if not checks[name]["ok"]]
    return {"status": failing[0] if failing else "ok", **checks}
