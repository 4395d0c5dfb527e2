"""Staff in a real browser: a breached question shows on the SLA dashboard and is reassigned from there."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from playwright.sync_api import expect

from consultations import staff_views
from tests.factories import PASSWORD, QuestionFactory, UserFactory

pytestmark = pytest.mark.browser


@pytest.fixture
def sla_staff(transactional_db):
    """A clinical lead: the dashboard, reassigning, and the medical-record permission (patients' codes)."""
    user = UserFactory(email="ops@example.com", full_name="Olga Operations", is_staff=True)
    codenames = ["view_sla_dashboard", "reassign_question", "view_medical_record"]
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def breached_question(specialty, **fields):
    """Submitted five hours ago: an hour past its four-hour guarantee."""
    return QuestionFactory(specialty=specialty, submitted_at=timezone.now() - timedelta(hours=5), **fields)


def test_breached_question_is_listed_and_reassigned_from_the_dashboard(
    browser_page, log_in, sla_staff, specialty, doctor, senior_doctor, settings
):
    settings.SLA_ANSWER_HOURS = 4
    question = breached_question(specialty, claimed_by=doctor, claimed_at=timezone.now() - timedelta(hours=4))
    page = browser_page
    log_in(page, sla_staff.email, PASSWORD)

    page.goto("/staff/sla/")
    row = page.locator(f'table[data-list="breached"] tr#attention-{question.pk}')
    expect(row).to_contain_text(f"Question #{question.pk}")
    expect(row).to_contain_text("over")
    expect(row).to_contain_text(question.patient.patient_label)
    expect(row).to_contain_text("Dr. Dana Derm")
    expect(row.get_by_role("link", name=f"Question #{question.pk}")).to_have_attribute(
        "href", f"/admin/consultations/question/{question.pk}/change/"
    )

    row.get_by_label(f"Reassign question #{question.pk} to").select_option(label="Dr. Sena Senior")
    row.get_by_role("button", name="Reassign").click()

    expect(page.get_by_role("status").filter(has_text="is now assigned")).to_have_text(
        f"Question #{question.pk} is now assigned to Dr. Sena Senior."
    )
    expect(page.locator(f"tr#attention-{question.pk}")).to_contain_text("Dr. Sena Senior")
    question.refresh_from_db()
    assert question.claimed_by == senior_doctor
    assert page.console_errors == []


def test_figures_refresh_in_place_and_keep_the_chosen_period(
    browser_page, log_in, sla_staff, specialty, doctor, settings, monkeypatch
):
    settings.SLA_ANSWER_HOURS = 4
    monkeypatch.setattr(staff_views, "REFRESH_SECONDS", 1)
    page = browser_page
    log_in(page, sla_staff.email, PASSWORD)
    page.goto("/staff/sla/?period=7d")
    expect(page.locator("#sla-list-breached")).to_contain_text("(0)")
    page.evaluate("window.notReloaded = true")

    late = breached_question(specialty)

    expect(page.locator(f'table[data-list="breached"] tr#attention-{late.pk}')).to_be_visible(timeout=10_000)
    expect(page.locator("#sla-list-breached")).to_contain_text("(1)")
    expect(page.locator("#sla-period-heading")).to_have_text("Last 7 days")
    expect(page.locator("[data-live-status]")).to_contain_text("Updated")
    assert page.evaluate("window.notReloaded") is True
    assert page.url.endswith("/staff/sla/?period=7d")
    assert page.console_errors == []


def test_refresh_keeps_a_doctor_chosen_but_not_yet_sent(
    browser_page, log_in, sla_staff, specialty, doctor, senior_doctor, settings, monkeypatch
):
    """Issue 14 (a live workbench): the 30 s refresh used to wipe a half-made reassign choice."""
    settings.SLA_ANSWER_HOURS = 4
    monkeypatch.setattr(staff_views, "REFRESH_SECONDS", 1)
    question = breached_question(specialty)
    page = browser_page
    log_in(page, sla_staff.email, PASSWORD)
    page.goto("/staff/sla/")
    select = page.get_by_label(f"Reassign question #{question.pk} to")
    select.select_option(label="Dr. Sena Senior")
    # The user looks elsewhere before pressing the button: focus leaves the row.
    page.evaluate("document.activeElement.blur()")
    assert page.evaluate("document.activeElement.tagName") == "BODY"

    # A new late question changes the list, so the section is really swapped.
    late = breached_question(specialty)
    expect(page.locator(f'table[data-list="breached"] tr#attention-{late.pk}')).to_be_visible(timeout=10_000)

    expect(page.get_by_label(f"Reassign question #{question.pk} to")).to_have_value(str(senior_doctor.pk))
    expect(page.get_by_label(f"Reassign question #{late.pk} to")).to_have_value("")
    page.get_by_label(f"Reassign question #{question.pk} to").locator("xpath=ancestor::form").get_by_role(
        "button", name="Reassign"
    ).click()
    expect(page.get_by_role("status").filter(has_text="is now assigned")).to_have_text(
        f"Question #{question.pk} is now assigned to Dr. Sena Senior."
    )
    assert page.console_errors == []
