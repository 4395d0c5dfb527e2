"""In a real browser (issue 14, "patients hear the truth"): a question breaches while its
patient has the page open. The failed promise leaves the open page when the countdown
passes the due time; after the sweep and a reload, the page states the breach and the
credit, and the apology e-mail is in the outbox once. At 390 px nothing overflows."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from consultations import credits, sla, sweep
from consultations.models import BreachCredit, Notification
from portal import times
from tests.browser.conftest import open_page
from tests.factories import PASSWORD, QuestionFactory, SpecialtyFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PROMISE = "A doctor will answer by the guaranteed time"


def test_a_question_breaches_while_its_patient_watches(chromium, live_server, log_in, settings):
    settings.SLA_BREACH_CREDIT = "free_question"
    dermatology = SpecialtyFactory(name="Dermatology", slug="dermatology")
    patient = UserFactory(email="paula@example.com", time_zone="Europe/Paris")
    # Due five seconds from now.
    submitted_at = timezone.now() + timedelta(seconds=5) - sla.answer_window(False)
    question = QuestionFactory(
        patient=patient, specialty=dermatology, title="Rash after a new soap", submitted_at=submitted_at
    )
    page = open_page(chromium, live_server.url, width=390)
    try:
        log_in(page, "paula@example.com", PASSWORD)
        page.goto(f"/questions/{question.pk}/")
        assert page.get_by_text(PROMISE).is_visible()
        assert not page.get_by_role("heading", name="We did not answer in time. We are sorry.").is_visible()

        # The due time passes with the page open: the promise goes, the notice shows.
        page.get_by_role("heading", name="We did not answer in time. We are sorry.").wait_for(timeout=15_000)
        assert not page.get_by_text(PROMISE).is_visible()
        assert "alerted automatically" in page.locator(".breach-notice").inner_text()

        # The sweep runs (Celery beat, every SLA_SWEEP_SECONDS): twice, as overlapping beats might.
        sweep.run_sweep()
        sweep.run_sweep()
        page.reload()

        notice = page.locator(".breach-notice").inner_text()
        due = times.format_time(question.clock_due_at, "H:i", "Europe/Paris")  # e.g. "15:04 CET"
        assert f"passed at {due}" in notice
        late_since = times.format_time(question.clock_due_at, "j M, H:i", "Europe/Paris")
        assert "A senior doctor and the clinic team were alerted at" in notice
        assert "stays at the top of the doctors' queue" in notice
        assert "call your local emergency number now" in notice
        assert "For the delay we have recorded a free question for you." in notice
        assert "Credit: a free question" in page.locator(".breach-credits").inner_text()
        assert page.locator("[data-countdown]").inner_text() == f"late since {late_since}"
        assert not page.get_by_text(PROMISE).is_visible()
        # Fits a 390 px phone: nothing wider than the viewport.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert page.console_errors == []
    finally:
        page.context.close()

    credit = BreachCredit.objects.get()
    assert (credit.question_id, credit.patient_id, credit.kind) == (question.pk, patient.pk, "free_question")
    apology = Notification.objects.get(kind=credits.APOLOGY_KIND)
    assert (apology.to_email, apology.status) == ("paula@example.com", "sent")
    sent = [m for m in mail.outbox if m.to == ["paula@example.com"]]
    assert [m.subject for m in sent] == [f"We are sorry: your question #{question.pk} was not answered in time"]
