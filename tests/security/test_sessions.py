"""Doctors' and staff's sessions expire after inactivity; a password change signs out other sessions."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_staff_session_expires_after_idle_time(client, staff, settings):
    settings.STAFF_SESSION_IDLE_SECONDS = 900
    client.force_login(staff)
    client.get("/admin/")
    assert client.session.get_expiry_age() == 900


def test_doctor_session_expires_after_idle_time(client, doctor, settings):
    settings.STAFF_SESSION_IDLE_SECONDS = 900
    client.force_login(doctor.user)
    client.get("/")
    assert client.session.get_expiry_age() == 900


def test_patient_session_keeps_the_normal_length(client, patient, settings):
    client.force_login(patient)
    client.get("/")
    assert client.session.get_expiry_age() == settings.SESSION_COOKIE_AGE


def test_password_change_signs_out_every_other_session(staff):
    laptop, phone = Client(), Client()
    laptop.force_login(staff)
    phone.force_login(staff)
    assert phone.get("/admin/").status_code == 200
    staff.set_password("a-brand-new-passphrase-42")
    staff.save()
    assert phone.get("/admin/").status_code == 302


def test_dashboard_background_refresh_does_not_extend_the_idle_timeout(client, staff, settings):
    settings.STAFF_SESSION_IDLE_SECONDS = 900
    client.force_login(staff)
    client.get("/admin/")
    client.session.set_expiry(5)
    session = client.session
    session.set_expiry(5)
    session.save()
    client.get("/staff/sla/now.json", headers={"X-Background-Refresh": "1"})
    assert client.session.get_expiry_age() == 5
