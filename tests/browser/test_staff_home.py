"""Doctors and staff in a real browser (issue 15): the public login page takes each to
their own tools, and the staff admin's question list fits a 1280 px screen."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from consultations import services
from tests.factories import PASSWORD, QuestionFactory

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parent.parent.parent / "var" / "screenshots"


def test_a_doctor_logs_in_on_the_public_page_and_lands_on_the_queue(browser_page, log_in, doctor):
    page = browser_page
    log_in(page, doctor.user.email, PASSWORD)
    expect(page).to_have_url("/doctor/consultations/question/")
    page.goto("/articles/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Question queue").click()
    expect(page).to_have_url("/doctor/consultations/question/")


def test_staff_land_on_the_dashboard_and_the_question_list_fits_1280(browser_page, log_in, staff, specialty, doctor):
    for n in range(6):
        question = QuestionFactory(
            specialty=specialty,
            title=f"Persistent itchy rash on both forearms after a new washing powder, week {n}",
            submitted_at=timezone.now() - timedelta(hours=n),
            is_urgent=n == 2,
            is_follow_up=n == 3,
        )
        if n % 2:
            services.claim_question(question.pk, doctor)
    page = browser_page
    log_in(page, staff.email, PASSWORD)
    expect(page).to_have_url("/staff/sla/")
    staff_nav = page.get_by_role("navigation", name="Staff")
    expect(staff_nav.get_by_role("link", name="Staff admin")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).to_have_count(0)

    staff_nav.get_by_role("link", name="Staff admin").click()
    expect(page.get_by_role("caption").filter(has_text="System (technical records)")).to_be_visible()
    page.goto("/admin/consultations/question/")
    expect(page.locator("#result_list tbody tr")).to_have_count(6)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than the 1280 px window"
    # The admin scrolls a too-wide list inside its own box: that must not happen either.
    results = page.locator("#changelist .results")
    assert results.evaluate("box => box.scrollWidth - box.clientWidth") <= 0, "the list scrolls sideways"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "staff-admin-questions-1280.png"), full_page=True)
    assert page.console_errors == []
