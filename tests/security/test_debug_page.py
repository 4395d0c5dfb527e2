"""Issue 11 item 7: with DEBUG=true, Django's error page lists the settings and the
request's environment; connection URLs there must not show their passwords."""

import secrets
import sys

import pytest
from django.conf import settings as django_settings
from django.test import override_settings
from django.views.debug import technical_500_response

from portal.debug import without_url_passwords

# Made at run time: the page also shows source lines, which must not contain them.
DB_PASSWORD, BROKER_PASSWORD, CACHE_PASSWORD = (f"{name}-{secrets.token_hex(8)}" for name in ("db", "broker", "cache"))


def error_page(rf, **meta):
    request = rf.get("/boom/", **meta)
    connection_url = f"postgres://portal:{DB_PASSWORD}@db.internal:5432/portal"  # noqa: F841 - a frame variable
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        response = technical_500_response(request, *sys.exc_info())
    return response.content.decode()


def test_the_debug_page_shows_no_password_of_a_connection_url(rf):
    """Issue 11 item 7."""
    caches = {
        "default": {
            **django_settings.CACHES["default"],
            "LOCATION": f"redis://:{CACHE_PASSWORD}@cache.internal:6379/1",
        }
    }
    with override_settings(
        DEBUG=True,
        REDIS_URL=f"redis://:{BROKER_PASSWORD}@redis.internal:6379/0",
        CELERY_BROKER_URL=f"redis://default:{BROKER_PASSWORD}@redis.internal:6379/0",
        CELERY_RESULT_BACKEND=[f"redis://:{BROKER_PASSWORD}@redis.internal:6379/2"],
        CACHES=caches,
    ):
        page = error_page(rf, DATABASE_URL=f"postgres://portal:{DB_PASSWORD}@db.internal:5432/portal")
    assert "RuntimeError" in page and "CELERY_BROKER_URL" in page and "CACHES" in page
    for password in (DB_PASSWORD, BROKER_PASSWORD, CACHE_PASSWORD):
        assert password not in page


def test_settings_keep_no_database_url():
    """Issue 11 item 7: the URL is parsed into DATABASES (its PASSWORD key hidden), not kept whole."""
    assert not hasattr(django_settings, "DATABASE_URL")
    assert django_settings.DEFAULT_EXCEPTION_REPORTER_FILTER == "portal.debug.PortalExceptionReporterFilter"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("redis://:s3cret@host:6379/0", "redis://:***@host:6379/0"),
        ("postgres://user:s3cret@host/db", "postgres://user:***@host/db"),
        ("rediss://user:p%40ss@host", "rediss://user:***@host"),
        ("redis://host:6379/0", "redis://host:6379/0"),
        ("https://example.com/a@b", "https://example.com/a@b"),
    ],
)
def test_only_the_password_of_a_url_is_blanked(text, expected):
    assert without_url_passwords(text, "***") == expected
