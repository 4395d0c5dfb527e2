"""Health probes used by /healthz, /healthz/sla and /healthz/details: each returns
{"ok": bool, ...} and never raises.

Two questions, two answers. A load balancer asks "can this web node serve pages?":
only the database decides that (`check_node`). A monitoring system asks "is the 4-hour
guarantee being kept track of?": that also needs the broker, which carries the sweep
and the e-mails, and a sweep that keeps running (`check_all`). A dead beat or broker
must page someone, not take every web node out of the load balancer: patients can
still read, ask and be answered, and the sweep catches up when it is back.

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


# The one word the public probes answer for each check, in the order they are tried.
CHECK_ORDER = ("database", "broker", "sweep")


def check_node(connection) -> dict:
    """What this web node needs to serve pages (the database), and `status` as `check_all`'s."""
    database = database_status(connection)
    return {"status": "ok" if database["ok"] else "database", "database": database}


def check_all(connection) -> dict:
    """Every check's detail, and `status`: "ok" or the first failing check's name."""
    from consultations import heartbeat

    checks = {"database": database_status(connection), "broker": broker_status()}
    database_ok = checks["database"]["ok"]
    checks["sweep"] = heartbeat.sweep_status() if database_ok else {"ok": False, "error": "database unavailable"}
    failing = [name for name in CHECK_ORDER if not checks[name]["ok"]]
    return {"status": failing[0] if failing else "ok", **checks}
