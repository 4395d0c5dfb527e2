"""Doctors and staff need a TOTP second factor when REQUIRE_2FA is on."""

import re

import pytest
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

pytestmark = pytest.mark.django_db


def current_code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


@pytest.fixture
def require_2fa(settings):
    settings.REQUIRE_2FA = True


def test_staff_without_device_is_sent_to_set_up_2fa(client, staff, require_2fa):
    client.force_login(staff)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/2fa/setup/?next=/admin/")


def test_doctor_pairs_an_app_and_reaches_the_queue(client, doctor, require_2fa):
    client.force_login(doctor.user)
    page = client.get("/accounts/2fa/setup/?next=/doctor/")
    assert page.status_code == 200
    assert b"data:image/svg+xml" in page.content
    device = TOTPDevice.objects.get(user=doctor.user, confirmed=False)

    wrong = client.post("/accounts/2fa/setup/", {"token": "000000", "next": "/doctor/"})
    assert "did not match" in wrong.content.decode()
    throttled = client.post("/accounts/2fa/setup/", {"token": current_code(device), "next": "/doctor/"})
    assert "Too many wrong codes" in throttled.content.decode()
    device.refresh_from_db()
    device.throttle_reset()  # the wait has passed

    done = client.post("/accounts/2fa/setup/", {"token": current_code(device), "next": "/doctor/"})
    assert done.status_code == 302 and done["Location"] == "/doctor/"
    device.refresh_from_db()
    assert device.confirmed
    queue = client.get("/doctor/", follow=True)
    assert queue.status_code == 200
    assert "/accounts/2fa/" not in queue.request["PATH_INFO"]


def test_paired_staff_must_enter_a_code_after_login(client, staff, require_2fa):
    device = TOTPDevice.objects.create(user=staff, name="app", confirmed=True)
    client.force_login(staff)
    response = client.get("/admin/")
    assert response["Location"].startswith("/accounts/2fa/verify/")
    bad = client.post("/accounts/2fa/verify/", {"token": "12345", "next": "/admin/"})
    assert "six digits" in bad.content.decode()
    ok = client.post("/accounts/2fa/verify/", {"token": current_code(device), "next": "/admin/"})
    assert ok["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_next_cannot_send_the_user_to_another_site(client, staff, require_2fa):
    device = TOTPDevice.objects.create(user=staff, name="app", confirmed=True)
    client.force_login(staff)
    response = client.post("/accounts/2fa/verify/", {"token": current_code(device), "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_patients_never_need_a_second_factor(client, patient, require_2fa):
    client.force_login(patient)
    response = client.get("/questions/")
    assert response.status_code == 200


def test_second_factor_is_off_unless_required(client, staff, settings):
    settings.REQUIRE_2FA = False
    client.force_login(staff)
    assert client.get("/admin/").status_code == 200


def test_setup_page_shows_the_key_for_manual_entry(client, staff, require_2fa):
    client.force_login(staff)
    html = client.get("/accounts/2fa/setup/").content.decode()
    assert re.search(r"<code[^>]*>[A-Z2-7]{16,}</code>", html)
