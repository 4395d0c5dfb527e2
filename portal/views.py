"""Operational endpoints."""

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from portal.health import broker_status, database_status, sweep_status


@never_cache
def healthz(request):
    """Database, broker and SLA-sweep heartbeat as JSON: 200 when all are healthy, 503 otherwise."""
    checks = {"database": database_status(connection), "broker": broker_status()}
    checks["sweep"] = sweep_status() if checks["database"]["ok"] else {"ok": False, "error": "database unavailable"}
    healthy = all(check["ok"] for check in checks.values())
    return JsonResponse({"ok": healthy, **checks}, status=200 if healthy else 503)
