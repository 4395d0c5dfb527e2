"""In a real browser (issue 14, "Honest before submission"): choosing a specialty with
nobody on duty before the due time shows the note at once, and "Ask General Medicine
instead" switches the choice; all without inline script (no CSP error)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.browser.conftest import open_page
from tests.factories import PASSWORD, DoctorFactory, SpecialtyFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_note_follows_the_specialty_and_offers_general_medicine(browser_page, log_in, settings):
    settings.DUTY_FALLBACK_SPECIALTY = "general-medicine"
    page = browser_page
    general = SpecialtyFactory(name="General Medicine", slug="general-medicine")
    cardiology = SpecialtyFactory(name="Cardiology", slug="cardiology")
    DoctorFactory(specialties=[general], on_duty_until=timezone.now() + timedelta(days=1))
    UserFactory(email="paula@example.com", age=40, sex="female")

    log_in(page, "paula@example.com", PASSWORD)
    page.goto("/questions/ask/")
    note = page.locator(f'[data-duty-note-for="{cardiology.pk}"]')
    assert note.is_hidden()

    page.get_by_label("Specialty").select_option(str(cardiology.pk))
    assert note.is_visible()
    assert "No Cardiology doctor is on duty before your guaranteed answer time" in note.inner_text()

    page.get_by_role("button", name="Ask General Medicine instead").click()
    assert page.get_by_label("Specialty").input_value() == str(general.pk)
    assert note.is_hidden()
    assert page.console_errors == []


def test_the_note_fits_a_phone_screen(chromium, live_server, log_in):
    SpecialtyFactory(name="General Medicine", slug="general-medicine")
    cardiology = SpecialtyFactory(name="Cardiology", slug="cardiology")
    UserFactory(email="paula@example.com", age=40, sex="female")
    page = open_page(chromium, live_server.url, width=390)
    try:
        log_in(page, "paula@example.com", PASSWORD)
        page.goto("/questions/ask/?specialty=cardiology")
        assert page.locator(f'[data-duty-note-for="{cardiology.pk}"]').is_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert page.console_errors == []
    finally:
        page.context.close()
