"""The profile's "Log out of all other devices": every other session of the account ends,
this one stays, and the password is needed to do it."""

import pytest
from django.test import Client
from django.urls import reverse

from portal import ratelimit
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

URL = reverse("sign_out_other_devices")
MY_QUESTIONS = reverse("consultations:my_questions")


@pytest.fixture
def laptop_and_phone(patient):
    laptop, phone = Client(), Client()
    laptop.force_login(patient)
    phone.force_login(patient)
    assert phone.get(MY_QUESTIONS).status_code == 200
    return laptop, phone


def test_profile_offers_the_button(client, patient):
    client.force_login(patient)
    html = client.get(reverse("profile")).content.decode()
    assert f'action="{URL}"' in html
    assert "Log out of all other devices" in html


def test_other_devices_are_signed_out_and_this_one_stays(laptop_and_phone, patient):
    laptop, phone = laptop_and_phone
    response = laptop.post(URL, {"password": PASSWORD}, follow=True)
    assert response.redirect_chain == [(reverse("profile"), 302)]
    assert "signed out on every other device" in response.content.decode()

    assert laptop.get(MY_QUESTIONS).status_code == 200
    lost = phone.get(MY_QUESTIONS)
    assert lost.status_code == 302
    assert lost["Location"].startswith(reverse("login"))
    # The password itself is unchanged: the patient signs in again as before.
    patient.refresh_from_db()
    assert patient.check_password(PASSWORD)
    assert Client().login(email=patient.email, password=PASSWORD)


def test_wrong_password_changes_nothing_and_says_so(laptop_and_phone, patient):
    laptop, phone = laptop_and_phone
    hash_before = patient.password
    response = laptop.post(URL, {"password": "a-wrong-guess"})
    assert response.status_code == 200
    assert "That is not your current password. Nothing was changed." in response.content.decode()
    patient.refresh_from_db()
    assert patient.password == hash_before
    assert phone.get(MY_QUESTIONS).status_code == 200


def test_empty_password_is_asked_for(laptop_and_phone):
    laptop, _ = laptop_and_phone
    response = laptop.post(URL, {"password": ""})
    assert response.status_code == 200
    assert "Enter your password to confirm." in response.content.decode()


def test_guessing_the_password_here_is_rate_limited(client, patient, settings):
    settings.RATELIMIT_ENABLED = True
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "password_confirm": (3, 3600)}
    ratelimit.reset("password_confirm", f"user:{patient.pk}", 3600)
    client.force_login(patient)
    assert [client.post(URL, {"password": f"guess-{n}"}).status_code for n in range(3)] == [200, 200, 200]
    assert client.post(URL, {"password": PASSWORD}).status_code == 429


def test_only_a_signed_in_post_does_it(client, patient):
    assert client.post(URL, {"password": PASSWORD})["Location"].startswith(reverse("login"))
    client.force_login(patient)
    assert client.get(URL).status_code == 405


def test_guessing_the_old_password_on_the_change_form_is_rate_limited(client, patient, settings, caplog):
    """Issue 11 item 5: the password-change form accepted 30 wrong old passwords in a row."""
    settings.RATELIMIT_ENABLED = True
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "password_confirm": (3, 3600)}
    ratelimit.reset("password_confirm", f"user:{patient.pk}", 3600)
    client.force_login(patient)
    change = reverse("password_change")
    new = "a-Brand-new-passphrase-31"
    guesses = [
        client.post(change, {"old_password": f"guess-{n}", "new_password1": new, "new_password2": new})
        for n in range(3)
    ]
    assert [r.status_code for r in guesses] == [200, 200, 200]
    assert all("Your old password was entered incorrectly" in r.content.decode() for r in guesses)
    right = client.post(change, {"old_password": PASSWORD, "new_password1": new, "new_password2": new})
    assert right.status_code == 429
    patient.refresh_from_db()
    assert patient.check_password(PASSWORD)
    failures = [r for r in caplog.records if "Wrong current password on password change" in r.getMessage()]
    assert len(failures) == 3


def test_both_password_confirmations_share_one_budget(client, patient, settings):
    """Issue 11 item 5: "like the other password confirmations": one budget, not one per form."""
    settings.RATELIMIT_ENABLED = True
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "password_confirm": (2, 3600)}
    ratelimit.reset("password_confirm", f"user:{patient.pk}", 3600)
    client.force_login(patient)
    client.post(URL, {"password": "guess-1"})
    client.post(reverse("password_change"), {"old_password": "guess-2"})
    assert client.post(URL, {"password": PASSWORD}).status_code == 429


def test_a_right_old_password_still_changes_it(client, patient):
    """Issue 11 item 5: the limit does not get in the way of the normal change."""
    client.force_login(patient)
    new = "a-Brand-new-passphrase-31"
    response = client.post(
        reverse("password_change"), {"old_password": PASSWORD, "new_password1": new, "new_password2": new}
    )
    assert response.status_code == 302
    patient.refresh_from_db()
    assert patient.check_password(new)
