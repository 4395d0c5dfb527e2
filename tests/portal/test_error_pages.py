"""The pages shown when a request fails: branded, safe, and they need no database.

A database that cannot be reached gives 503 ("briefly unavailable", Retry-After),
any other error 500; both say that nothing was lost and what to do."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.db import OperationalError, connection
from django.template import loader
from django.test import Client, RequestFactory

from portal import views
from tests.portal.error_urls import SECRET_DETAIL

FRIENDLY = "Nothing you sent was lost or half-saved"


@pytest.fixture
def failing_urls(settings):
    settings.ROOT_URLCONF = "tests.portal.error_urls"
    settings.DEBUG = False


@pytest.fixture
def browser():
    return Client(raise_request_exception=False)


def assert_branded_and_safe(response, status: int):
    html = response.content.decode()
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")
    assert "Ask a Doctor" in html
    assert FRIENDLY in html
    assert 'href="/questions/"' in html, "no way to check My questions"
    assert "call your local emergency number now" in html
    assert "Server Error (500)" not in html
    # Nothing about the error: no message, no connection string, no traceback.
    for detail in (SECRET_DETAIL, "hunter2", "Traceback", "OperationalError", "ValueError", "connection already"):
        assert detail not in html
    # The Content-Security-Policy allows no inline style or script: only the static stylesheet.
    assert "<style" not in html and "style=" not in html and "<script" not in html
    assert '<link rel="stylesheet" href="/static/portal/error.css">' in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert response["Cache-Control"] == "no-store"
    return html


@pytest.mark.parametrize("path", ["/fail/database/", "/fail/closed/"])
def test_an_unreachable_database_gives_the_branded_503_page(failing_urls, browser, path):
    """Issue 13 item 5: a lost connection is "briefly unavailable, try again", not a bare 500."""
    response = browser.get(path)
    html = assert_branded_and_safe(response, 503)
    assert response["Retry-After"] == "10"
    assert "Sorry, we are briefly unavailable" in html
    assert "Please try again in a few seconds." in html


def test_any_other_error_gives_the_branded_500_page(failing_urls, browser):
    """Issue 13 item 5: an unexpected error: the same reassurance, no details."""
    response = browser.get("/fail/bug/")
    html = assert_branded_and_safe(response, 500)
    assert "Retry-After" not in response
    assert "Sorry, something went wrong on our side" in html


@pytest.mark.django_db
def test_a_signed_in_patient_gets_the_503_page_when_every_query_fails(failing_urls, browser, patient):
    """Issue 13 item 5: the database is down for the whole request: loading the session
    fails before any view runs, and the page still renders (it needs no database)."""
    browser.force_login(patient)

    def database_down(execute, sql, params, many, context):
        raise OperationalError("could not connect to server: Connection refused")

    with connection.execute_wrapper(database_down):
        response = browser.get("/questions/")
    assert_branded_and_safe(response, 503)


@pytest.mark.parametrize(("error", "status"), [(OperationalError("gone"), 503), (KeyError("bug"), 500)])
def test_the_pages_render_without_any_database_or_request_context(django_db_blocker, error, status):
    """Issue 13 item 5: rendering touches neither the database (every access is blocked
    here) nor the request (its user and session would explode if read)."""

    class Untouchable:
        def __getattr__(self, name):
            raise AssertionError(f"the error page read request.{name}")

    request = RequestFactory().get("/questions/ask/")
    request.user = request.session = Untouchable()
    with django_db_blocker.block():
        try:
            raise error
        except Exception:  # noqa: BLE001 - Django calls handler500 inside its own except
            response = views.server_error(request)
    assert_branded_and_safe(response, status)


def test_a_broken_error_template_still_gives_a_friendly_page(failing_urls, browser, monkeypatch):
    """Issue 13 item 5: if the branded page itself cannot render (a template or static
    manifest broken by a deploy), a plain page still says nothing was lost."""

    def broken(name, *args, **kwargs):
        raise ValueError("Missing staticfiles manifest entry for 'portal/error.css'")

    monkeypatch.setattr(loader, "get_template", broken)
    response = browser.get("/fail/database/")
    html = response.content.decode()
    assert response.status_code == 503
    assert FRIENDLY in html
    assert "manifest" not in html and SECRET_DETAIL not in html
    assert "<style" not in html and "style=" not in html


def test_the_error_stylesheet_is_a_static_file():
    """Issue 13 item 5: served by WhiteNoise before any middleware touches the database."""
    path = finders.find("portal/error.css")
    assert path
    css = open(path, encoding="utf-8").read()
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", css), "no external resources"


def test_the_page_not_found_page_is_unchanged(failing_urls, browser):
    """Issue 13 item 5: 404 keeps Django's page; only failures get the new pages."""
    response = browser.get("/no/such/page/")
    assert response.status_code == 404
    assert FRIENDLY not in response.content.decode()
