"""Operational endpoints, and the page shown when a request fails."""

import logging
import sys

from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.template import loader
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from consultations.staff_views import metrics_access
from portal.database import TRANSIENT_DATABASE_ERRORS
from portal.health import check_all, check_node

logger = logging.getLogger(__name__)

# Seconds a client (or the patient, told "a few seconds") should wait after a 503.
RETRY_AFTER_SECONDS = 10

# Shown only if the branded page itself cannot be rendered (a broken template or
# static manifest): still friendly, still free of any detail about the error.
FALLBACK_PAGE = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    "<title>Please try again · Ask a Doctor</title></head><body><main>"
    "<h1>Sorry, something went wrong on our side</h1>"
    "<p>Nothing you sent was lost or half-saved: it is saved completely or not at all. "
    'If you were sending a question, check <a href="/questions/">My questions</a> before sending it again.</p>'
    "<p>Please try again in a minute.</p>"
    "<p><strong>Not an emergency service.</strong> If you or someone else may be in danger, "
    "call your local emergency number now.</p></main></body></html>"
)


def _one_word(status: str) -> HttpResponse:
    return HttpResponse(f"{status}\n", content_type="text/plain; charset=utf-8", status=200 if status == "ok" else 503)


@never_cache
@require_safe
def healthz(request):
    """For load balancers, public: can this web node serve pages? One word, `ok` (200) or
    `database` (503). A dead broker or beat does not take the node out (see /healthz/sla)."""
    return _one_word(check_node(connection)["status"])


@never_cache
@require_safe
def healthz_sla(request):
    """For monitoring, public: is the 4-hour guarantee kept track of? One word, `ok` (200)
    or the first failing check (503): `database`, `broker` or `sweep`. No counts, timings
    or error names leave the site."""
    return _one_word(check_all(connection)["status"])


@never_cache
@require_safe
@metrics_access
def healthz_details(request):
    """Every check in detail (ages, counts, error names) as JSON, with the same status code:
    for staff with the SLA dashboard permission, or a monitoring system's STAFF_METRICS_TOKEN."""
    checks = check_all(connection)
    healthy = checks["status"] == "ok"
    return JsonResponse({"ok": healthy, **checks}, status=200 if healthy else 503)


def server_error(request):
    """handler500: a branded page saying nothing was lost and to try again.

    A database that cannot be reached gives 503 ("briefly unavailable", with
    Retry-After), anything else 500. The page is rendered without the request:
    no context processor, session or user lookup may fail a second time. Django
    has already logged the error with its details; the page carries none.
    """
    unavailable = isinstance(sys.exc_info()[1], TRANSIENT_DATABASE_ERRORS)
    status = 503 if unavailable else 500
    try:
        body = loader.get_template(f"{status}.html").render()
    except Exception:  # noqa: BLE001 - the error page must always answer
        logger.exception("The %s page could not be rendered", status)
        body = FALLBACK_PAGE
    response = HttpResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    if unavailable:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
