"""Sessions end after inactivity (doctors and staff: 30 minutes; patients: an hour, or a
fixed few days when they chose "keep me signed in"); a password change signs out other sessions."""

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _lengths(settings):
    settings.STAFF_SESSION_IDLE_SECONDS = 900
    settings.PATIENT_SESSION_IDLE_SECONDS = 3600
    settings.PATIENT_REMEMBER_DAYS = 7


def test_staff_session_expires_after_idle_time(client, staff):
    client.force_login(staff)
    client.get("/admin/")
    assert client.session.get_expiry_age() == 900


def test_doctor_session_expires_after_idle_time(client, doctor):
    client.force_login(doctor.user)
    client.get("/")
    assert client.session.get_expiry_age() == 900


def test_patient_session_ends_after_an_idle_hour(client, patient):
    """Issue 11 item 20: patient sessions lasted 14 days with no idle limit."""
    client.post("/accounts/login/", {"username": patient.email, "password": PASSWORD})
    # From the login response on, not only from the next request.
    assert client.session.get_expiry_age() == 3600
    assert client.cookies["sessionid"]["max-age"] == 3600
    client.get("/questions/")
    assert client.session.get_expiry_age() == 3600


def test_an_idle_patient_is_signed_out_and_an_active_one_is_not(patient):
    """Issue 11 item 20: each request pushes the end forward; an hour of nothing ends it."""
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        active, idle = Client(), Client()
        for client in (active, idle):
            client.post("/accounts/login/", {"username": patient.email, "password": PASSWORD})
        for _ in range(3):
            clock.shift(timedelta(minutes=40))
            assert active.get("/questions/").status_code == 200
        assert idle.get("/questions/").status_code == 302  # 120 minutes without a request


def test_keep_me_signed_in_is_a_choice_with_a_fixed_end(patient):
    """Issue 11 item 20: "keep me signed in" is an explicit checkbox, bounded to PATIENT_REMEMBER_DAYS."""
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        client = Client()
        page = client.get("/accounts/login/").content.decode()
        assert 'name="remember_me"' in page and "Keep me signed in on this device for 7 days" in page
        assert "checked" not in page.split('name="remember_me"')[1].split(">")[0]
        client.post("/accounts/login/", {"username": patient.email, "password": PASSWORD, "remember_me": "on"})
        clock.shift(timedelta(days=3))
        assert client.get("/questions/").status_code == 200  # three idle days: still in
        clock.shift(timedelta(days=3, hours=23))
        assert client.get("/questions/").status_code == 200
        clock.shift(timedelta(hours=2))  # past 7 days from login, however active
        assert client.get("/questions/").status_code == 302


def test_doctors_cannot_choose_to_stay_signed_in(client, doctor):
    """Issue 11 item 20: the choice is for patients; medical staff keep the short idle limit."""
    client.post("/accounts/login/", {"username": doctor.user.email, "password": PASSWORD, "remember_me": "on"})
    assert client.session.get_expiry_age() == 900
    client.get("/")
    assert client.session.get_expiry_age() == 900


def test_a_new_login_forgets_an_earlier_choice(client, patient):
    """Issue 11 item 20: the choice belongs to one login."""
    client.post("/accounts/login/", {"username": patient.email, "password": PASSWORD, "remember_me": "on"})
    client.post("/accounts/logout/")
    client.post("/accounts/login/", {"username": patient.email, "password": PASSWORD})
    assert client.session.get_expiry_age() == 3600


def test_password_change_signs_out_every_other_session(staff):
    laptop, phone = Client(), Client()
    laptop.force_login(staff)
    phone.force_login(staff)
    assert phone.get("/admin/").status_code == 200
    staff.set_password("a-brand-new-passphrase-42")
    staff.save()
    assert phone.get("/admin/").status_code == 302


def test_dashboard_background_refresh_does_not_extend_the_idle_timeout(client, staff):
    client.force_login(staff)
    client.get("/admin/")
    session = client.session
    session.set_expiry(5)
    session.save()
    client.get("/staff/sla/now.json", headers={"X-Background-Refresh": "1"})
    assert client.session.get_expiry_age() == 5


def _expire_date(client):
    from django.contrib.sessions.models import Session

    return Session.objects.get(session_key=client.session.session_key).expire_date


def test_the_idle_end_is_pushed_forward_at_most_once_a_minute(client, patient):
    """Pushing the idle end writes the session row: not on every page, once a minute at most."""
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        client.force_login(patient)
        client.get("/questions/")
        first = _expire_date(client)
        clock.shift(timedelta(seconds=30))
        client.get("/questions/")
        assert _expire_date(client) == first
        clock.shift(timedelta(seconds=40))
        client.get("/questions/")
        assert _expire_date(client) == first + timedelta(seconds=70)


def _failing_session_save(cause):
    """A session save that fails the way Django's database backend does: UpdateError,
    raised while handling the database error `cause`."""
    from django.contrib.sessions.backends.base import UpdateError

    def save(self, must_create=False):
        try:
            raise cause
        except type(cause):
            raise UpdateError from None

    return save


def test_a_session_save_lost_to_a_database_blip_still_answers_the_page(client, patient, monkeypatch):
    """Issue 13 item 5: a connection lost while saving the session is not a bare 400."""
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import OperationalError

    client.force_login(patient)
    monkeypatch.setattr(SessionStore, "save", _failing_session_save(OperationalError("connection lost")))
    response = client.get("/questions/")
    assert response.status_code == 200


def test_a_session_deleted_by_another_request_is_still_interrupted(client, patient, monkeypatch):
    """A logout in another tab (the UPDATE finds no row) keeps Django's 400."""
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import DatabaseError

    client.force_login(patient)
    monkeypatch.setattr(
        SessionStore, "save", _failing_session_save(DatabaseError("Forced update did not affect any rows."))
    )
    response = client.get("/questions/")
    assert response.status_code == 400
