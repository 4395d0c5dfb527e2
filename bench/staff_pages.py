"""Pages doctors and staff work in, with a large question table: the queue and the SLA dashboard.

One signed-in client at a time, as a doctor or staff member uses them; the
latency is what one person waits for the page.
"""

from django.urls import Resolver404, resolve

from bench.common import NotAvailable, count_queries, progress, resolve_path, session_cookie
from bench.load import measure_get

DASHBOARD_PATH = "/staff/sla/"


def queue_path() -> str:
    return resolve_path("doctor_admin:consultations_question_changelist")


def dashboard_path() -> str:
    try:
        resolve(DASHBOARD_PATH)
    except Resolver404:
        raise NotAvailable(f"{DASHBOARD_PATH} is not in the portal yet") from None
    return DASHBOARD_PATH


def page_latency(base_url: str, path: str, user, seconds: float) -> dict:
    """Sequential GETs by one signed-in user for `seconds`; latency percentiles and queries."""
    status, queries = count_queries(path, user)
    if status != 200:
        raise NotAvailable(f"{path} answered HTTP {status} for {user.email} through the test client")
    result = measure_get(base_url + path, 1, seconds, warmup=1.0, headers=session_cookie(user))
    if result.ok == 0:
        raise NotAvailable(f"{path} through gunicorn: {result.first_error or dict(result.outcomes)}")
    progress(
        f"    {path}: p50 {result.percentile_ms(50):.0f} ms, p99 {result.percentile_ms(99):.0f} ms "
        f"over {result.ok} requests, {queries} queries"
    )
    return {"path": path, "queries": queries, **result.as_dict()}
