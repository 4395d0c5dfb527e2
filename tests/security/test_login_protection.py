"""Brute-force protection (django-axes) on the three login pages: the site's, the staff
admin's and the doctors' workbench. Five wrong passwords for one e-mail from one
address pause that pair for the cool-off time, even for the right password."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from axes.models import AccessAttempt
from django.test import Client

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WRONG = "not-the-password"


@pytest.fixture(autouse=True)
def _axes_on(settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 5
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


# (login path, who, where a successful login lands)
LOGIN_PAGES = {
    "site": ("/accounts/login/", "patient", "/questions/"),
    "staff-admin": ("/admin/login/?next=/admin/", "staff", "/admin/"),
    "doctors-admin": ("/doctor/login/?next=/doctor/", "doctor", "/doctor/"),
}


@pytest.fixture(params=LOGIN_PAGES.values(), ids=LOGIN_PAGES.keys())
def login_page(request):
    path, who, landing = request.param
    person = request.getfixturevalue(who)
    user = getattr(person, "user", person)
    return path, user.email, landing


def try_login(client, path, email, password, ip="203.0.113.7"):
    return client.post(path, {"username": email, "password": password}, REMOTE_ADDR=ip)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_five_wrong_passwords_lock_the_login_even_for_the_right_one(client, login_page, clock):
    path, email, _ = login_page
    refused = [try_login(client, path, email, WRONG) for _ in range(4)]
    assert [r.status_code for r in refused] == [200, 200, 200, 200]  # the form again, with its error
    fifth = try_login(client, path, email, WRONG)
    assert fifth.status_code == 429

    right = try_login(client, path, email, PASSWORD)
    assert right.status_code == 429
    page = right.content.decode()
    assert "Sign-in paused for this account" in page
    assert "5 wrong passwords in a row" in page
    assert "try again after 15 minutes" in page
    assert 'href="/accounts/password/reset/"' in page
    assert not signed_in(client)


def test_lock_expires_after_the_cool_off(client, login_page, clock):
    path, email, landing = login_page
    for _ in range(5):
        try_login(client, path, email, WRONG)

    clock.shift(timedelta(minutes=14, seconds=59))
    assert try_login(client, path, email, PASSWORD).status_code == 429
    assert not signed_in(client)

    clock.shift(timedelta(seconds=2))
    response = try_login(client, path, email, PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == landing
    assert signed_in(client)


def test_attempts_during_the_lock_do_not_extend_it(client, clock, patient):
    for _ in range(5):
        try_login(client, "/accounts/login/", patient.email, WRONG)
    clock.shift(timedelta(minutes=10))
    assert try_login(client, "/accounts/login/", patient.email, WRONG).status_code == 429
    clock.shift(timedelta(minutes=5, seconds=1))
    assert try_login(client, "/accounts/login/", patient.email, PASSWORD).status_code == 302


def test_success_resets_the_count(client, login_page, clock):
    path, email, _ = login_page
    for _ in range(4):
        try_login(client, path, email, WRONG)
    assert try_login(client, path, email, PASSWORD).status_code == 302
    assert not AccessAttempt.objects.exists()

    fresh = Client()
    for _ in range(4):
        assert try_login(fresh, path, email, WRONG).status_code == 200
    assert try_login(fresh, path, email, PASSWORD).status_code == 302


def test_e_mail_case_and_spaces_do_not_give_extra_tries(client, clock, patient):
    for variant in ["PATIENT@example.com", " patient@example.com", "Patient@Example.com ", "patient@EXAMPLE.com"]:
        try_login(client, "/accounts/login/", variant, WRONG)
    assert try_login(client, "/accounts/login/", "patient@example.com", WRONG).status_code == 429
    assert AccessAttempt.objects.get().username == "patient@example.com"


def test_lock_is_for_the_pair_of_e_mail_and_address(client, clock, patient, other_patient):
    for _ in range(5):
        try_login(client, "/accounts/login/", patient.email, WRONG, ip="198.51.100.1")
    # The same person from another network, and another account from the same network, still get in.
    assert try_login(Client(), "/accounts/login/", patient.email, PASSWORD, ip="198.51.100.2").status_code == 302
    assert try_login(Client(), "/accounts/login/", other_patient.email, PASSWORD, ip="198.51.100.1").status_code == 302


def test_passwords_tried_are_never_stored(client, clock, patient):
    try_login(client, "/accounts/login/", patient.email, "my-secret-guess-123")
    attempt = AccessAttempt.objects.get()
    assert "my-secret-guess-123" not in attempt.post_data


def test_choosing_a_new_password_by_e_mail_lifts_the_lock(client, clock, patient, mailoutbox):
    for _ in range(5):
        try_login(client, "/accounts/login/", patient.email, WRONG)
    client.post("/accounts/password/reset/", {"email": patient.email})
    link = next(line for line in mailoutbox[0].body.splitlines() if "/accounts/password/reset/" in line).strip()
    form_page = client.get(link[link.index("/accounts/") :], follow=True)
    new_password = "a-fresh-Passphrase-77"
    done = client.post(form_page.request["PATH_INFO"], {"new_password1": new_password, "new_password2": new_password})
    assert done.status_code == 302
    assert try_login(client, "/accounts/login/", patient.email, new_password).status_code == 302


def test_force_login_still_works_with_protection_on(client, staff):
    client.force_login(staff)
    assert client.get("/admin/").status_code == 200


def test_behind_a_proxy_the_address_it_saw_is_counted_not_what_the_client_claims(client, clock, patient, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    for n in range(5):
        # The attacker invents a new left-most address each time; the proxy appends the real one.
        client.post(
            "/accounts/login/",
            {"username": patient.email, "password": WRONG},
            REMOTE_ADDR="10.0.0.2",
            HTTP_X_FORWARDED_FOR=f"198.18.0.{n}, 203.0.113.50",
        )
    right = client.post(
        "/accounts/login/",
        {"username": patient.email, "password": PASSWORD},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="198.18.0.99, 203.0.113.50",
    )
    assert right.status_code == 429
    assert AccessAttempt.objects.get().ip_address == "203.0.113.50"
    # Another visitor behind the same proxy is not affected.
    other = Client().post(
        "/accounts/login/",
        {"username": patient.email, "password": PASSWORD},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="203.0.113.51",
    )
    assert other.status_code == 302


def test_an_over_long_e_mail_is_a_form_error_not_a_server_error(client, login_page, clock):
    """Issue 11 item 7: over 255 characters gave an unauthenticated 500 on all three login
    forms (django-axes writes the name to a 255-character column)."""
    path, _, _ = login_page
    client.raise_request_exception = False
    typed = "a" * 300 + "@example.com"
    response = try_login(client, path, typed, WRONG)
    assert response.status_code == 200
    assert "An e-mail address has at most 254 characters" in response.content.decode()
    assert not signed_in(client)
    assert not AccessAttempt.objects.exists()


def test_the_lockout_counter_never_receives_an_over_long_name(rf):
    """Issue 11 item 7: defence in depth behind the forms."""
    from portal.account_views import login_attempt_username

    request = rf.post("/accounts/login/", {"username": "B" * 400})
    assert len(login_attempt_username(request)) == 255


# --- Issue 11 item 6: password spraying ---------------------------------------------------------


@pytest.fixture
def ceilings(settings):
    settings.LOGIN_IP_FAILURE_LIMIT = 8
    settings.LOGIN_ACCOUNT_FAILURE_LIMIT = 6


def test_one_address_spraying_many_accounts_is_paused(client, clock, ceilings, patient, other_patient, caplog):
    """Issue 11 item 6: one address tried 200 passwords across 40 accounts and was refused
    only on each account's 5th try. Now a ceiling per address across e-mails."""
    for n in range(8):  # one or two guesses per account: no pair comes near its limit
        assert try_login(Client(), "/accounts/login/", f"victim{n // 2}@example.com", WRONG).status_code in (200, 429)
    refused = try_login(Client(), "/accounts/login/", patient.email, PASSWORD)
    assert refused.status_code == 429
    assert "Sign-in paused from this network" in refused.content.decode()
    assert not signed_in(client)
    # Only that address: the same account from elsewhere, and other addresses, still get in.
    assert try_login(Client(), "/accounts/login/", patient.email, PASSWORD, ip="198.51.100.9").status_code == 302
    assert [r for r in caplog.records if r.getMessage().startswith("Login ceiling reached (address)")]


def test_one_account_sprayed_from_many_addresses_is_paused(clock, ceilings, patient, other_patient, caplog):
    """Issue 11 item 6: a ceiling per account across addresses (each pair stays under 5)."""
    for n in range(6):
        try_login(Client(), "/accounts/login/", patient.email, WRONG, ip=f"198.18.0.{n // 3}")
    refused = try_login(Client(), "/accounts/login/", patient.email, PASSWORD, ip="198.18.0.77")
    assert refused.status_code == 429
    assert "from several places" in refused.content.decode()
    assert [r for r in caplog.records if r.getMessage().startswith("Login ceiling reached (account)")]
    # Other accounts from those addresses are not affected.
    assert try_login(Client(), "/accounts/login/", other_patient.email, PASSWORD, ip="198.18.0.0").status_code == 302


def test_the_ceilings_end_with_the_cool_off(clock, ceilings, patient):
    """Issue 11 item 6: the same window as the pair lockout."""
    for n in range(6):
        try_login(Client(), "/accounts/login/", patient.email, WRONG, ip=f"198.18.1.{n // 3}")
    assert try_login(Client(), "/accounts/login/", patient.email, PASSWORD, ip="198.18.1.50").status_code == 429
    clock.shift(timedelta(minutes=15, seconds=1))
    assert try_login(Client(), "/accounts/login/", patient.email, PASSWORD, ip="198.18.1.50").status_code == 302


def test_a_reset_by_e_mail_lifts_the_account_ceiling(client, clock, ceilings, patient, mailoutbox):
    """Issue 11 item 6: the owner gets back in by proving they own the address."""
    for n in range(6):
        try_login(Client(), "/accounts/login/", patient.email, WRONG, ip=f"198.18.2.{n // 3}")
    client.post("/accounts/password/reset/", {"email": patient.email}, REMOTE_ADDR="198.18.2.50")
    link = next(line for line in mailoutbox[0].body.splitlines() if "/accounts/password/reset/" in line).strip()
    form_page = client.get(link[link.index("/accounts/") :], follow=True)
    new_password = "a-fresh-Passphrase-78"
    client.post(form_page.request["PATH_INFO"], {"new_password1": new_password, "new_password2": new_password})
    assert try_login(Client(), "/accounts/login/", patient.email, new_password, ip="198.18.2.50").status_code == 302
