"""Small helpers shared by the bench's parts: progress lines and "not available"."""

import sys
import time

_STARTED = time.monotonic()


class NotAvailable(Exception):
    """The piece this measurement needs is not in the portal yet (reported, not faked)."""


def elapsed() -> float:
    return time.monotonic() - _STARTED


def progress(message: str) -> None:
    print(f"[{elapsed():6.1f}s] {message}", file=sys.stderr, flush=True)


def resolve_path(name: str, *args) -> str:
    """The URL of a named route, or NotAvailable if the portal does not have it yet."""
    from django.urls import NoReverseMatch, reverse

    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        raise NotAvailable(f"URL {name!r} is not in the portal yet") from None


def count_queries(path: str, user=None) -> tuple[int, int]:
    """(status, number of SQL queries) for one GET through Django's test client in this process."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    if user is not None:
        client.force_login(user)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    return response.status_code, len(queries)


def session_cookie(user) -> dict[str, str]:
    """A Cookie header for a signed-in session of `user`, stored where gunicorn reads sessions."""
    from django.conf import settings
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    return {"Cookie": f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"}
