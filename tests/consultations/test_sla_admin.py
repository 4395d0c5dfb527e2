"""The staff admin shows escalations, notifications and sweep runs read-only, and can resend a notification."""

import importlib
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.urls import NoReverseMatch, clear_url_caches, reverse
from django.utils import timezone

import consultations.admin_sla  # noqa: F401 - registers the ModelAdmins (the lead imports it in admin.py)
from consultations import sweep
from consultations.models import Escalation, Notification, NotificationStatus
from tests.consultations.sweep_support import breached_by, sla_staff_member

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _admin_urls_include_the_sla_records():
    """The staff admin's URLs are built when the URLconf is first imported. Until
    consultations/admin.py imports admin_sla, a URLconf loaded before this module lacks its pages."""
    try:
        reverse("admin:consultations_escalation_changelist")
    except NoReverseMatch:
        importlib.reload(importlib.import_module(settings.ROOT_URLCONF))
        clear_url_caches()


@pytest.fixture
def escalated(specialty, senior_doctor):
    sla_staff_member()
    now = timezone.now()
    question = breached_by(now, specialty, warned_at=now - timedelta(hours=1))
    sweep.run_sweep(now=now)
    return question


@pytest.mark.parametrize("model", ["escalation", "notification", "sweeprun"])
def test_staff_see_the_engines_records(client, staff, escalated, model):
    client.force_login(staff)

    listing = client.get(reverse(f"admin:consultations_{model}_changelist"))

    assert listing.status_code == 200
    obj = {"escalation": Escalation, "notification": Notification}.get(model)
    if obj is not None:
        detail = client.get(reverse(f"admin:consultations_{model}_change", args=[obj.objects.first().pk]))
        assert detail.status_code == 200
        assert b'name="_save"' not in detail.content  # view only


@pytest.mark.parametrize("model", ["escalation", "notification", "sweeprun"])
def test_records_cannot_be_added_edited_or_deleted(client, staff, escalated, model):
    client.force_login(staff)

    assert client.get(reverse(f"admin:consultations_{model}_add")).status_code == 403
    if model == "escalation":
        pk = Escalation.objects.first().pk
        assert client.get(reverse(f"admin:consultations_{model}_delete", args=[pk])).status_code == 403
        client.post(reverse(f"admin:consultations_{model}_change", args=[pk]), {"level": "lead"})
        assert Escalation.objects.get(pk=pk).level == "breached"


def test_patients_and_doctors_cannot_open_the_staff_admin(client, patient, doctor, escalated):
    for user in (patient, doctor.user):
        client.force_login(user)
        response = client.get(reverse("admin:consultations_escalation_changelist"))
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]


def test_resend_now_sends_a_failed_notification_once(client, staff, escalated, django_capture_on_commit_callbacks):
    failed = Notification.objects.first()
    Notification.objects.filter(pk=failed.pk).update(status=NotificationStatus.FAILED, attempts=8, last_error="timeout")
    client.force_login(staff)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:consultations_notification_changelist"),
            {"action": "resend_now", "_selected_action": [failed.pk]},
            follow=True,
        )

    assert b"1 notification queued for sending." in response.content
    failed.refresh_from_db()
    assert failed.status == NotificationStatus.SENT
    assert [m.to for m in mail.outbox] == [[failed.to_email]]


def test_resend_now_skips_sent_notifications(client, staff, escalated, django_capture_on_commit_callbacks):
    sent = Notification.objects.first()
    Notification.objects.filter(pk=sent.pk).update(status=NotificationStatus.SENT)
    client.force_login(staff)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:consultations_notification_changelist"),
            {"action": "resend_now", "_selected_action": [sent.pk]},
            follow=True,
        )

    assert b"1 skipped: already sent" in response.content
    assert mail.outbox == []


@pytest.mark.parametrize("model", ["escalation", "notification"])
def test_staff_can_search_records_by_question_number(client, staff, escalated, model):
    client.force_login(staff)
    url = reverse(f"admin:consultations_{model}_changelist")

    found = client.get(url, {"q": str(escalated.pk)})
    nothing = client.get(url, {"q": "no-such-thing"})

    assert found.status_code == nothing.status_code == 200
    assert f"#{escalated.pk}".encode() in found.content or str(escalated).encode() in found.content
    assert str(escalated).encode() not in nothing.content
