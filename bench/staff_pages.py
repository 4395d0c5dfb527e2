"""Pages doctors and staff work in, with a large question table: the queue, its live
poll and the SLA dashboard.

One signed-in client at a time, as a doctor or staff member uses them; the
latency is what one person waits for the page.
"""

from django.urls import Resolver404, resolve

from bench.common import NotAvailable, count_queries, progress, resolve_path, session_cookie
from bench.load import measure_get

DASHBOARD_PATH = "/staff/sla/"


def queue_path() -> str:
    return resolve_path("doctor_admin:consultations_question_changelist")


def queue_poll_path() -> str:
    """The JSON the open queue page polls every WORKBENCH_POLL_SECONDS (issue 14)."""
    return resolve_path("doctor_admin:consultations_question_live")


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


def _poll_once(path: str, user, headers: dict | None = None) -> tuple[int, int, str]:
    """(status, queries, ETag) of one poll through Django's test client in this process."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path, headers=headers or {})
    return response.status_code, len(queries), response.get("ETag", "")


def poll_latency(base_url: str, path: str, user, seconds: float) -> dict:
    """The live queue's poll, as one open queue page sends it: with the queue changed
    (a full JSON answer) and unchanged (If-None-Match: a 304). Latency and queries of each."""
    status, queries, etag = _poll_once(path, user)
    if status != 200 or not etag:
        raise NotAvailable(f"{path} answered HTTP {status} (ETag {etag!r}) for {user.email} through the test client")
    status, unchanged_queries, _ = _poll_once(path, user, {"If-None-Match": etag})
    if status != 304:
        raise NotAvailable(f"{path} answered HTTP {status}, not 304, to its own ETag")
    cookie = session_cookie(user)
    changed = measure_get(base_url + path, 1, seconds / 2, warmup=1.0, headers=cookie)
    unchanged = measure_get(
        base_url + path, 1, seconds / 2, warmup=1.0, headers={**cookie, "If-None-Match": etag}, expected=304
    )
    for name, result in (("changed", changed), ("unchanged", unchanged)):
        if result.ok == 0:
            raise NotAvailable(f"{path} ({name}) through gunicorn: {result.first_error or dict(result.outcomes)}")
    progress(
        f"    {path}: changed p50 {changed.percentile_ms(50):.0f} ms, {queries} queries; "
        f"unchanged (304) p50 {unchanged.percentile_ms(50):.0f} ms, {unchanged_queries} queries"
    )
    return {
        "path": path,
        "queries": queries,
        **changed.as_dict(),
        "unchanged": {"queries": unchanged_queries, **unchanged.as_dict()},
    }
