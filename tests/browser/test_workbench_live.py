"""Issue 14, a live workbench: a doctor keeps the queue open; a patient asks in that
specialty; the new row appears without a reload, marked New and announced politely;
the time left counts down and turns from on track to at risk in words, in place."""

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from consultations import sla
from tests.browser.conftest import open_page
from tests.factories import PASSWORD, DoctorFactory, QuestionFactory, SpecialtyFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parent.parent.parent / "var" / "screenshots"


@pytest.fixture
def dermatology():
    return SpecialtyFactory(name="Dermatology", slug="dermatology")


@pytest.fixture
def dana(dermatology):
    return DoctorFactory(
        user=UserFactory(email="dana.derm@example.com"), display_name="Dr. Dana Derm", specialties=[dermatology]
    )


def doctor_signs_in(page):
    page.goto("/doctor/")
    page.wait_for_url(re.compile(r"/doctor/login/"))
    page.locator("#id_username").fill("dana.derm@example.com")
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/doctor/consultations/question/"))


def row_of(page, question_pk):
    return page.locator(f'#result_list tbody tr:has([data-question="{question_pk}"])')


def test_a_new_question_appears_and_the_time_left_counts_down_without_a_reload(
    chromium, live_server, browser_page, log_in, dermatology, dana, settings
):
    settings.WORKBENCH_POLL_SECONDS = 1
    now = timezone.now()
    # Half an hour left: the countdown shows seconds.
    waiting = QuestionFactory(specialty=dermatology, title="Itchy scalp", submitted_at=now - timedelta(hours=3.5))
    # Turns "at risk" a few seconds after the page opens.
    turning = QuestionFactory(specialty=dermatology, title="Mole that changed", submitted_at=now - timedelta(hours=2))
    QuestionFactory._meta.model.objects.filter(pk=turning.pk).update(clock_warn_at=now + timedelta(seconds=6))

    page = open_page(chromium, live_server.url, width=1280)
    try:
        doctor_signs_in(page)
        page.evaluate("window.notReloaded = true")
        expect(page.locator("[data-live-status]")).to_contain_text("checked every 1 s")

        # The countdown moves while the page stays open.
        detail = row_of(page, waiting.pk).locator(".sla-detail")
        expect(detail).to_have_text(re.compile(r"^29 min \d\d s left$"))
        before = detail.inner_text()
        expect(detail).not_to_have_text(before, timeout=3_000)
        badge = row_of(page, turning.pk).locator(".sla-badge")
        expect(badge).to_have_text("On track")
        expect(badge).to_have_text("At risk", timeout=10_000)
        expect(badge).to_have_class(re.compile(r"\bsla-at_risk\b"))

        # A patient asks in Dermatology through the real form.
        patient = UserFactory(email="paula@example.org", full_name="Paula Quintana", age=41, sex="female")
        log_in(browser_page, patient.email, PASSWORD)
        browser_page.goto("/questions/ask/?specialty=dermatology")
        browser_page.get_by_label("Title").fill("Scaly patch on my elbow")
        browser_page.get_by_label("Description").fill("A dry, scaly patch on my right elbow for a month.")
        browser_page.get_by_label(re.compile("I have read and agree")).check()
        browser_page.get_by_role("button", name="Send my question").click()
        browser_page.wait_for_url(re.compile(r"/questions/\d+/submitted/$"))
        asked = QuestionFactory._meta.model.objects.get(title="Scaly patch on my elbow")

        new_row = row_of(page, asked.pk)
        expect(new_row).to_be_visible(timeout=5_000)
        expect(new_row).to_have_class(re.compile(r"\bis-new\b"))
        expect(new_row.locator(".tag-new")).to_have_text("New")
        expect(new_row).to_contain_text("Scaly patch on my elbow")
        expect(new_row.locator(".sla-badge")).to_have_text("On track")
        expect(new_row.locator(".sla-detail")).to_have_text(re.compile(r"^3 h 59 min left$"))
        expect(new_row.get_by_role("button", name="Claim")).to_be_visible()
        expect(page.locator("[data-live-announce]")).to_have_text("A new question arrived: Scaly patch on my elbow.")
        # Listed in the queue's order (latest due last), the older rows kept and not marked.
        expect(page.locator("#result_list tbody tr")).to_have_count(3)
        expect(page.locator("#result_list tbody tr").last).to_contain_text("Scaly patch on my elbow")
        expect(row_of(page, waiting.pk)).not_to_have_class(re.compile(r"\bis-new\b"))
        assert page.evaluate("window.notReloaded") is True
        assert page.evaluate("document.activeElement === document.body")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "workbench-live-1280.png"))

        # The new row's Claim button works like any other.
        new_row.get_by_role("button", name="Claim").click()
        expect(page.locator(".messagelist")).to_contain_text("You have claimed “Scaly patch on my elbow”.")
        assert page.console_errors == []
    finally:
        page.context.close()


def test_an_empty_queue_fills_in_and_fits_a_phone(chromium, live_server, dermatology, dana, settings):
    settings.WORKBENCH_POLL_SECONDS = 1
    page = open_page(chromium, live_server.url, width=390)
    try:
        doctor_signs_in(page)
        expect(page.locator("[data-live-empty]")).to_be_hidden()
        question = QuestionFactory(
            specialty=dermatology,
            title="Rash after a new soap, spreading to both arms",
            submitted_at=timezone.now() - timedelta(hours=3, minutes=50),
        )
        row = row_of(page, question.pk)
        expect(row).to_be_visible(timeout=5_000)
        expect(row.locator(".sla-badge")).to_have_text("At risk")
        # The header's figures follow.
        expect(page.locator("[data-live-lead]")).to_have_text("1 question waiting.")
        expect(page.locator('[data-count="at_risk"]')).to_have_text("1")
        expect(page.locator('[data-count="unclaimed"]')).to_have_text("1")
        assert sla.sla_state(question, timezone.now()) == sla.AT_RISK

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "workbench-live-390.png"), full_page=True)
        # The time left is on screen at 390 px: nothing to scroll sideways for.
        time_left = row.locator(".sla-live")
        box = time_left.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        # Basics an accessibility checker looks at: every control in the row has a name.
        assert row.locator("input.action-select").get_attribute("aria-label")
        expect(row.get_by_role("button", name="Claim")).to_be_visible()
        expect(row.get_by_role("link", name="Rash after a new soap, spreading to both arms")).to_be_visible()
        assert page.console_errors == []
    finally:
        page.context.close()


def test_polling_pauses_while_the_tab_is_hidden_and_backs_off_after_errors(
    chromium, live_server, dermatology, dana, settings
):
    settings.WORKBENCH_POLL_SECONDS = 1
    QuestionFactory(specialty=dermatology, title="Itchy scalp")
    page = open_page(chromium, live_server.url, width=1280)
    polls = []
    page.on("request", lambda request: "/question/live/" in request.url and polls.append(request.url))
    status = page.locator("[data-live-status]")
    try:
        doctor_signs_in(page)
        expect(status).to_contain_text("last at", timeout=5_000)

        # The tab goes to the background: no poll at all until it comes back.
        page.evaluate(
            "Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});"
            "document.dispatchEvent(new Event('visibilitychange'))"
        )
        page.wait_for_timeout(1_500)  # a poll already on its way may land
        hidden_since = len(polls)
        page.wait_for_timeout(3_000)
        assert len(polls) == hidden_since
        page.evaluate(
            "Object.defineProperty(document, 'hidden', {configurable: true, get: () => false});"
            "document.dispatchEvent(new Event('visibilitychange'))"
        )
        page.wait_for_timeout(500)
        assert len(polls) > hidden_since

        # The server fails: the wait doubles (2 s, then 4 s), said in words.
        page.route("**/question/live/**", lambda route: route.fulfill(status=503, body=""))
        expect(status).to_have_text("Could not check for new questions; trying again in 2 s.", timeout=5_000)
        expect(status).to_have_text("Could not check for new questions; trying again in 4 s.", timeout=5_000)
        expect(status).to_have_class(re.compile(r"\bis-error\b"))
        page.unroute("**/question/live/**")
        expect(status).to_contain_text("New questions appear here by themselves", timeout=10_000)
        expect(status).not_to_have_class(re.compile(r"\bis-error\b"))
        assert [error for error in page.console_errors if "503" not in error] == []
    finally:
        page.context.close()


def test_the_countdown_follows_the_server_clock_not_a_wrong_computer_clock(
    chromium, live_server, dermatology, dana, settings
):
    settings.WORKBENCH_POLL_SECONDS = 1
    waiting = QuestionFactory(
        specialty=dermatology, title="Itchy scalp", submitted_at=timezone.now() - timedelta(hours=3.5)
    )
    page = open_page(chromium, live_server.url, width=1280)
    try:
        # This computer's clock is an hour fast.
        page.clock.set_system_time(timezone.now() + timedelta(hours=1))
        doctor_signs_in(page)
        badge = row_of(page, waiting.pk).locator(".sla-badge")
        detail = row_of(page, waiting.pk).locator(".sla-detail")
        page.wait_for_timeout(2_500)
        expect(badge).to_have_text("At risk")
        expect(detail).to_have_text(re.compile(r"^29 min \d\d s left$"))
    finally:
        page.context.close()
