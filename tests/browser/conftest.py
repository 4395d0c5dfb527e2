"""Playwright on the system Chromium against pytest-django's live_server.

Fixtures other browser tests reuse:
- `chromium`: one headless browser per test session.
- `browser_page`: a fresh context and page per test, with `base_url` set to the
  live server, the Europe/Paris time zone, and console errors (such as a
  Content-Security-Policy violation) collected in `page.console_errors`.
- `log_in(page, email, password)`: signs in through the real login form.
"""

import os

import pytest
from django.db import connections

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
BROWSER_TIME_ZONE = "Europe/Paris"


@pytest.fixture(scope="session")
def chromium():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (Debian package 'chromium')")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
        # Django keeps its connections per context, and the tests that ran while Playwright
        # was up ran in Playwright's: close them in it, or the test database's connection
        # outlives the suite and PostgreSQL refuses to drop the database at the end.
        connections.close_all()


def open_page(chromium, base_url: str, width: int = 1280):
    """A page in a fresh browser context that collects console and page errors
    in `page.console_errors`; close it with `page.context.close()`."""
    context = chromium.new_context(
        base_url=base_url, timezone_id=BROWSER_TIME_ZONE, locale="en-GB", viewport={"width": width, "height": 900}
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda message: message.type == "error" and page.console_errors.append(message.text))
    page.on("pageerror", lambda error: page.console_errors.append(str(error)))
    return page


@pytest.fixture
def browser_page(chromium, live_server):
    page = open_page(chromium, live_server.url)
    yield page
    page.context.close()


def _log_in(page, email: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("E-mail address").fill(email)
    page.locator("#id_password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


@pytest.fixture
def log_in():
    return _log_in
