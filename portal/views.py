"""Operational endpoints."""

from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from consultations.staff_views import metrics_access
from portal.health import check_all


@never_cache
@require_safe
def healthz(request):
    """For load balancers, public: one word, `ok` (200) or the first failing check (503):
    `database`, `broker` or `sweep`. No counts, timings or error names leave the site."""
    status = check_all(connection)["status"]
    return HttpResponse(f"{status}\n", content_type="text/plain; charset=utf-8", status=200 if status == "ok" else 503)


@never_cache
@require_safe
@metrics_access
def healthz_details(request):
    """Every check in detail (ages, counts, error names) as JSON, with the same status code:
    for staff with the SLA dashboard permission, or a monitoring system's STAFF_METRICS_TOKEN."""
    checks = check_all(connection)
    healthy = checks["status"] == "ok"
    return JsonResponse({"ok": healthy, **checks}, status=200 if healthy else 503)
