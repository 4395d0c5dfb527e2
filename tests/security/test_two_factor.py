"""Doctors and staff need a TOTP second factor when REQUIRE_2FA is on."""

import re
from base64 import b32encode

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal import two_factor
from tests.factories import PASSWORD

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
    assert response["Location"] == "/accounts/2fa/setup/?next=%2Fadmin%2F"


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


# --- Issue 11 item 1: the second factor cannot be bypassed or silently multiplied ----------


def sign_in_with_password(client, login_path, email):
    """The attacker's first step: the password alone, through the real login form."""
    response = client.post(login_path, {"username": email, "password": PASSWORD})
    assert response.status_code == 302, "the password is right: the login form lets them in"
    return response


BYPASS_CASES = {
    "doctor": ("/doctor/login/?next=/doctor/", "doctor", "/doctor/"),
    "superuser": ("/admin/login/?next=/admin/", "staff", "/admin/"),
}


@pytest.fixture(params=BYPASS_CASES.values(), ids=BYPASS_CASES.keys())
def paired_person(request):
    login_path, who, landing = request.param
    person = request.getfixturevalue(who)
    user = getattr(person, "user", person)
    device = TOTPDevice.objects.create(user=user, name="Dana's phone", confirmed=True)
    return user, device, login_path, landing


def test_password_alone_cannot_pair_a_new_app_and_get_verified(client, paired_person, require_2fa, mailoutbox):
    """Issue 11 item 1: password only → 2FA setup page → new secret → code → verified, refused
    at every step, for a doctor and for a superuser, with REQUIRE_2FA=true."""
    user, device, login_path, landing = paired_person
    sign_in_with_password(client, login_path, user.email)

    # The middleware sends them to enter a code from their existing app...
    sent = client.get(landing)
    assert sent.status_code == 302 and sent["Location"].startswith("/accounts/2fa/verify/")

    # ...so they open the setup page instead: no new secret for a session that has not
    # passed the existing second factor; they are sent to enter a code.
    setup = client.get(f"/accounts/2fa/setup/?next={landing}")
    assert setup.status_code == 302
    assert setup["Location"].startswith("/accounts/2fa/verify/")
    assert not TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).exists()

    # A code for a secret they made up themselves (or saw earlier) does not pair or verify.
    forged = TOTPDevice(user=user, name="attacker")
    posted = client.post("/accounts/2fa/setup/", {"token": current_code(forged), "next": landing})
    assert posted.status_code == 302 and posted["Location"].startswith("/accounts/2fa/verify/")
    assert list(TOTPDevice.objects.filter(user=user).values_list("pk", flat=True)) == [device.pk]

    # Still not verified: every page but the second-factor pages sends them back.
    again = client.get(landing)
    assert again.status_code == 302 and again["Location"].startswith("/accounts/2fa/verify/")
    assert mailoutbox == []


def test_a_verified_session_may_add_a_second_app_and_the_owner_is_told(
    client, doctor, require_2fa, mailoutbox, django_capture_on_commit_callbacks
):
    """Issue 11 item 1: adding a device needs a verified session; the owner gets an e-mail without the secret."""
    first = TOTPDevice.objects.create(user=doctor.user, name="Phone", confirmed=True)
    client.force_login(doctor.user)
    client.post("/accounts/2fa/verify/", {"token": current_code(first)})

    page = client.get("/accounts/2fa/setup/")
    assert page.status_code == 200
    pending = TOTPDevice.objects.get(user=doctor.user, confirmed=False)
    secret = b32encode(pending.bin_key).decode()
    assert secret in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post("/accounts/2fa/setup/", {"name": "Tablet", "token": current_code(pending)})
    assert done.status_code == 302
    pending.refresh_from_db()
    assert pending.confirmed and pending.name == "Tablet"

    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == [doctor.user.email]
    assert "Tablet" in message.body and "/accounts/2fa/devices/" in message.body
    assert secret not in message.body and secret not in message.subject
    assert pending.key not in message.body


def test_a_pending_secret_is_shown_only_to_the_session_that_asked_for_it(doctor, require_2fa):
    """Issue 11 item 1: a pending setup secret is bound to the session that created it."""
    mine, theirs = Client(), Client()
    mine.force_login(doctor.user)
    theirs.force_login(doctor.user)
    mine.get("/accounts/2fa/setup/")
    my_device = TOTPDevice.objects.get(user=doctor.user, confirmed=False)
    my_secret = b32encode(my_device.bin_key).decode()

    their_page = theirs.get("/accounts/2fa/setup/").content.decode()
    assert my_secret not in their_page
    # A code from the first session's secret does nothing in the other session.
    refused = theirs.post("/accounts/2fa/setup/", {"token": current_code(my_device)})
    assert refused.status_code == 200
    assert "did not match" in refused.content.decode()
    my_device.refresh_from_db()
    assert not my_device.confirmed
    # The session that asked for it still pairs it.
    assert mine.post("/accounts/2fa/setup/", {"token": current_code(my_device)}).status_code == 302
    my_device.refresh_from_db()
    assert my_device.confirmed


def test_a_first_app_is_paired_with_the_password_alone_once(client, doctor, require_2fa):
    """Issue 11 item 1: the first-login flow pairs the first device; a second needs that device's code."""
    client.force_login(doctor.user)
    client.get("/accounts/2fa/setup/")
    first = TOTPDevice.objects.get(user=doctor.user, confirmed=False)
    client.post("/accounts/2fa/setup/", {"token": current_code(first)})
    first.refresh_from_db()
    assert first.confirmed

    later = Client()
    later.force_login(doctor.user)
    assert later.get("/accounts/2fa/setup/")["Location"].startswith("/accounts/2fa/verify/")


def test_users_see_their_devices_and_only_theirs(client, doctor, other_doctor, require_2fa):
    """Issue 11 item 1: users see their devices."""
    phone = TOTPDevice.objects.create(user=doctor.user, name="Dana's phone", confirmed=True)
    TOTPDevice.objects.create(user=other_doctor.user, name="Carl's phone", confirmed=True)
    client.force_login(doctor.user)
    client.post("/accounts/2fa/verify/", {"token": current_code(phone)})
    html = client.get("/accounts/2fa/devices/").content.decode()
    assert "Dana&#x27;s phone" in html
    assert "Carl" not in html
    assert f'action="/accounts/2fa/devices/{phone.pk}/remove/"' in html


def test_device_list_needs_a_verified_session_when_there_are_devices(client, doctor, require_2fa):
    """Issue 11 item 1: a password-only session neither lists nor removes devices."""
    phone = TOTPDevice.objects.create(user=doctor.user, name="Phone", confirmed=True)
    client.force_login(doctor.user)
    assert client.get("/accounts/2fa/devices/")["Location"].startswith("/accounts/2fa/verify/")
    removed = client.post(f"/accounts/2fa/devices/{phone.pk}/remove/")
    assert removed.status_code == 302 and removed["Location"].startswith("/accounts/2fa/verify/")
    assert TOTPDevice.objects.filter(pk=phone.pk).exists()


def test_removing_a_device_keeps_the_session_verified_by_another(
    client, doctor, require_2fa, mailoutbox, django_capture_on_commit_callbacks
):
    """Issue 11 item 1: users can remove a device; they are told by e-mail."""
    phone = TOTPDevice.objects.create(user=doctor.user, name="Phone", confirmed=True)
    old = TOTPDevice.objects.create(user=doctor.user, name="Old phone", confirmed=True)
    client.force_login(doctor.user)
    client.post("/accounts/2fa/verify/", {"token": current_code(phone)})
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/accounts/2fa/devices/{old.pk}/remove/")
    assert response.status_code == 302 and response["Location"] == "/accounts/2fa/devices/"
    assert list(TOTPDevice.objects.filter(user=doctor.user)) == [phone]
    assert client.get("/doctor/", follow=True).request["PATH_INFO"].startswith("/doctor/")
    assert "Old phone" in mailoutbox[-1].body


def test_removing_the_last_device_means_setting_one_up_again(client, doctor, require_2fa):
    """Issue 11 item 1: removing the last device needs a verified session, and with
    REQUIRE_2FA the user must then pair an app again."""
    phone = TOTPDevice.objects.create(user=doctor.user, name="Phone", confirmed=True)
    client.force_login(doctor.user)
    client.post("/accounts/2fa/verify/", {"token": current_code(phone)})
    response = client.post(f"/accounts/2fa/devices/{phone.pk}/remove/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/2fa/setup/")
    assert not TOTPDevice.objects.filter(user=doctor.user).exists()
    assert client.get("/doctor/")["Location"].startswith("/accounts/2fa/setup/")


def test_nobody_removes_another_users_device(client, doctor, other_doctor, require_2fa):
    """Issue 11 item 1."""
    mine = TOTPDevice.objects.create(user=doctor.user, name="Phone", confirmed=True)
    theirs = TOTPDevice.objects.create(user=other_doctor.user, name="Phone", confirmed=True)
    client.force_login(doctor.user)
    client.post("/accounts/2fa/verify/", {"token": current_code(mine)})
    assert client.post(f"/accounts/2fa/devices/{theirs.pk}/remove/").status_code == 404
    assert TOTPDevice.objects.filter(pk=theirs.pk).exists()


def test_staff_reset_a_users_devices_from_the_admin_and_it_is_logged(
    client, staff, doctor, mailoutbox, django_capture_on_commit_callbacks
):
    """Issue 11 item 1: staff can reset a user's devices from the admin, logged and visible."""
    TOTPDevice.objects.create(user=doctor.user, name="Lost phone", confirmed=True)
    TOTPDevice.objects.create(user=doctor.user, name="pending", confirmed=False)
    client.force_login(staff)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/portal/user/",
            {"action": "reset_two_factor", "_selected_action": [str(doctor.user.pk)], "index": "0"},
            follow=True,
        )
    assert response.status_code == 200
    assert "Two-factor devices reset for 1 user" in response.content.decode()
    assert not TOTPDevice.objects.filter(user=doctor.user).exists()
    entry = LogEntry.objects.get(object_id=str(doctor.user.pk))
    assert entry.user == staff and entry.action_flag == CHANGE
    assert "two-factor" in entry.get_change_message()
    history = client.get(f"/admin/portal/user/{doctor.user.pk}/history/").content.decode()
    assert "two-factor" in history
    assert mailoutbox[-1].to == [doctor.user.email]
    assert "Lost phone" in mailoutbox[-1].body


def test_a_doctor_whose_devices_were_reset_pairs_a_new_app(client, doctor, require_2fa):
    """Issue 11 item 1: after a reset the session is no longer verified and setup starts again."""
    phone = TOTPDevice.objects.create(user=doctor.user, name="Phone", confirmed=True)
    client.force_login(doctor.user)
    client.post("/accounts/2fa/verify/", {"token": current_code(phone)})
    assert client.get("/doctor/", follow=True).request["PATH_INFO"].startswith("/doctor/")
    two_factor.reset_devices(doctor.user)
    assert client.get("/doctor/")["Location"].startswith("/accounts/2fa/setup/")


def test_the_profile_links_doctors_to_their_apps(client, doctor, patient):
    """Issue 11 item 1: users find their devices from the profile."""
    client.force_login(doctor.user)
    assert 'href="/accounts/2fa/devices/"' in client.get("/accounts/profile/").content.decode()
    client.force_login(patient)
    assert 'href="/accounts/2fa/devices/"' not in client.get("/accounts/profile/").content.decode()


def test_staff_cannot_add_or_hand_over_an_app_in_the_admin(client, staff, doctor, other_doctor):
    """Issue 11 item 1: only the owner pairs an app; staff could otherwise add one with a
    key they chose, or move their own app to someone else's account."""
    staffs_own = TOTPDevice.objects.create(user=staff, name="Staff phone", confirmed=True)
    client.force_login(staff)
    assert client.get("/admin/otp_totp/totpdevice/add/").status_code == 403
    response = client.post(
        f"/admin/otp_totp/totpdevice/{staffs_own.pk}/change/",
        {"user": str(doctor.user.pk), "name": "moved", "confirmed": "on"},
    )
    assert response.status_code == 403
    staffs_own.refresh_from_db()
    assert staffs_own.user == staff
    assert client.get(f"/admin/otp_totp/totpdevice/{staffs_own.pk}/change/").status_code == 200  # view only


def test_staff_removing_an_app_in_the_admin_tells_its_owner(
    client, staff, doctor, mailoutbox, django_capture_on_commit_callbacks
):
    """Issue 11 item 1."""
    phone = TOTPDevice.objects.create(user=doctor.user, name="Dana's phone", confirmed=True)
    client.force_login(staff)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/admin/otp_totp/totpdevice/{phone.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(pk=phone.pk).exists()
    assert mailoutbox[-1].to == [doctor.user.email] and "Dana's phone" in mailoutbox[-1].body


def test_the_second_factor_pages_have_no_inline_script_or_style(client, doctor, require_2fa):
    """Issue 11 item 1: the new pages keep the strict Content-Security-Policy."""
    from tests.portal.test_pages import assert_csp_clean

    client.force_login(doctor.user)
    for url in ("/accounts/2fa/setup/", "/accounts/2fa/devices/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert_csp_clean(response.content.decode(), url)
