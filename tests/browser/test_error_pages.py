"""In a real browser on a 390 px phone screen: the 503 page fits without sideways
scrolling, every text meets WCAG AA contrast, and the CSP lets its stylesheet load."""

import re

import pytest

from tests.browser.conftest import open_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Each visible text element with its colour and the first opaque background behind it.
COLOURS_JS = """
() => Array.from(document.querySelectorAll("h1, h2, p, a, strong")).map((el) => {
  let bg = "rgba(0, 0, 0, 0)";
  for (let node = el; node; node = node.parentElement) {
    const colour = getComputedStyle(node).backgroundColor;
    if (colour !== "rgba(0, 0, 0, 0)" && colour !== "transparent") { bg = colour; break; }
  }
  return {text: el.textContent.trim().slice(0, 40), fg: getComputedStyle(el).color, bg: bg};
})
"""


def luminance(rgb: str) -> float:
    channels = [int(value) / 255 for value in re.findall(r"\d+", rgb)[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(fg: str, bg: str) -> float:
    if bg.startswith("rgba(0, 0, 0, 0)"):
        bg = "rgb(255, 255, 255)"  # the canvas
    lighter, darker = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_the_503_page_fits_a_phone_and_is_readable(chromium, live_server, settings):
    """Issue 13 item 5: the friendly page fits a 390 px screen with good contrast."""
    settings.ROOT_URLCONF = "tests.portal.error_urls"
    page = open_page(chromium, live_server.url, width=390)
    try:
        response = page.goto("/fail/database/")
        assert response.status == 503
        assert page.get_by_role("heading", level=1).inner_text() == "Sorry, we are briefly unavailable"
        # The stylesheet applied (the CSP allows it): the brand bar has its colour.
        assert page.locator(".error-brand").evaluate("el => getComputedStyle(el).backgroundColor") == (
            "rgb(10, 88, 202)"
        )
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        button = page.locator(".error-button").bounding_box()
        assert button["height"] >= 44, "the main action is too small to tap"
        for item in page.evaluate(COLOURS_JS):
            assert contrast(item["fg"], item["bg"]) >= 4.5, item
        # Chrome reports the page's own 503 status; anything else (a CSP violation) is a bug.
        assert [error for error in page.console_errors if "status of 503" not in error] == []
    finally:
        page.context.close()
