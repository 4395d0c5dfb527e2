"""Operational endpoints."""

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from portal.health import broker_status, database_status


@never_cache
def healthz(request):
    """Database and broker status as JSON: 200 when both answer, 503 otherwise."""
    checks = {"database": database_status(connection), "broker": broker_status()}
    healthy = all(check["ok"] for check in checks.values())
    return JsonResponse({"ok": healthy, **checks}, status=200 if healthy else 503)
