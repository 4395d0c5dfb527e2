"""A security review: an account the clinic closed before its first sign-in was taken for an
unfinished sign-up ("inactive and never signed in"), so its address's owner could sign up
again, finish with a password of their choosing and get the account back open, keeping its
staff and superuser flags, groups and doctor profile (/admin/ answered 200).

A pending sign-up is now marked by the sign-up itself (User.signup_pending_since); an account
the clinic closed gets what the design already gives it: the same reply as any sign-up, the
same work (one password hash), nothing changed, and no e-mail (portal.account_emails:
"closed by the clinic: nothing to say by e-mail")."""

import importlib
import re
from unittest import mock

import pytest
from django.apps import apps as global_apps
from django.contrib.auth.models import Group, Permission
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from portal import account_emails, tasks
from portal import signup as signup_service
from portal.models import User
from tests.factories import PASSWORD, DoctorFactory, UserFactory

pytestmark = pytest.mark.django_db

SIGNUP_URL = reverse("signup")
CHOSEN = "a-Long-signup-passphrase-9"
FINISH_PATH = re.compile(r"(/accounts/signup/finish/\S+/)")


def signup_data(email):
    return {"email": email, "full_name": "Sam Someone", "password1": CHOSEN, "password2": CHOSEN, "accept_terms": "on"}


def closed_staff_superuser():
    return UserFactory(email="leaver@example.com", is_staff=True, is_superuser=True, is_active=False)


def closed_doctor():
    return DoctorFactory(user=UserFactory(email="leaver@example.com", is_active=False)).user


def closed_patient():
    """A plain patient account that staff made and closed before its owner ever signed in."""
    return UserFactory(email="leaver@example.com", is_active=False)


CLOSED = pytest.mark.parametrize(
    "make_closed", [closed_staff_superuser, closed_doctor, closed_patient], ids=["staff", "doctor", "patient"]
)


def state(user):
    user.refresh_from_db()
    return (user.is_active, user.is_staff, user.is_superuser, user.password, user.full_name, user.last_login)


@CLOSED
def test_signing_up_again_does_not_reopen_an_account_closed_before_its_first_sign_in(settings, make_closed):
    settings.REQUIRE_2FA = False
    closed = make_closed()
    assert closed.last_login is None and not closed.is_active
    before = state(closed)

    leaver, newcomer = Client(), Client()
    with mock.patch("portal.signup.make_password", wraps=signup_service.make_password) as hashed:
        taken = leaver.post(SIGNUP_URL, signup_data("Leaver@Example.com"))
    # The reply and the work are those of any sign-up: nothing tells the address is taken.
    new = newcomer.post(SIGNUP_URL, signup_data("someone.new@example.com"))
    assert (taken.status_code, taken["Location"]) == (new.status_code, new["Location"]) == (302, reverse("signup_sent"))
    assert leaver.get(taken["Location"]).content == newcomer.get(new["Location"]).content

    # Nothing changed, and no e-mail went to the closed account's address (the newcomer's only).
    assert state(closed) == before
    assert closed.check_password(PASSWORD) and not closed.check_password(CHOSEN)
    assert hashed.call_args_list == [mock.call(CHOSEN)]
    assert [message.to for message in mail.outbox] == [["someone.new@example.com"]]
    assert tasks.send_signup_email(closed.pk) is None

    # A finishing link for it (as the old code mailed) opens nothing either.
    link = FINISH_PATH.search(account_emails.signup_url(closed)).group(1)
    for password in (CHOSEN, PASSWORD):
        leaver.post(link, {"password": password})
    assert state(closed) == before
    assert leaver.get("/admin/").status_code == 302


def test_a_pending_sign_up_the_clinic_switched_on_and_off_again_is_not_pending(client):
    """Staff ticked "active" on an unfinished sign-up, then closed it again before its first sign-in."""
    client.post(SIGNUP_URL, signup_data("someone.new@example.com"))
    account = User.objects.get(email="someone.new@example.com")
    assert signup_service.is_pending(account)
    account.is_active = True
    account.save()
    account.is_active = False
    account.save()
    mail.outbox.clear()

    other = "another-Long-passphrase-7"
    Client().post(SIGNUP_URL, {**signup_data("someone.new@example.com"), "password1": other, "password2": other})
    account.refresh_from_db()
    assert not account.is_active and account.check_password(CHOSEN)
    assert mail.outbox == []


@pytest.mark.parametrize(
    "privilege",
    [
        lambda user: User.objects.filter(pk=user.pk).update(is_staff=True),
        lambda user: User.objects.filter(pk=user.pk).update(is_superuser=True),
        lambda user: DoctorFactory(user=user),
        lambda user: user.groups.add(Group.objects.create(name="SLA staff")),
        lambda user: user.user_permissions.add(Permission.objects.get(codename="view_user")),
    ],
    ids=["staff", "superuser", "doctor", "group", "permission"],
)
def test_an_unfinished_sign_up_given_any_privilege_is_no_longer_pending(client, privilege):
    client.post(SIGNUP_URL, signup_data("someone.new@example.com"))
    account = User.objects.get(email="someone.new@example.com")
    link = FINISH_PATH.search(mail.outbox[-1].body).group(1)
    privilege(account)
    account = User.objects.get(pk=account.pk)
    assert not signup_service.is_pending(account)
    client.post(link, {"password": CHOSEN})
    account.refresh_from_db()
    assert not account.is_active


def test_a_sign_up_is_marked_pending_until_it_is_finished(client):
    before = timezone.now()
    client.post(SIGNUP_URL, signup_data("someone.new@example.com"))
    account = User.objects.get(email="someone.new@example.com")
    assert account.signup_pending_since >= before and not account.is_active
    client.post(FINISH_PATH.search(mail.outbox[-1].body).group(1), {"password": CHOSEN})
    account.refresh_from_db()
    assert account.is_active and account.signup_pending_since is None


def test_the_migration_marks_only_the_sign_ups_in_flight():
    """The deploy's data step: an unfinished sign-up can still finish; nothing the clinic made is marked."""
    migration = importlib.import_module("portal.migrations.0002_user_signup_pending_since")
    in_flight = UserFactory(is_active=False)
    finished_then_closed = UserFactory(is_active=False, last_login=timezone.now())
    active = UserFactory()
    staff = UserFactory(is_active=False, is_staff=True)
    superuser = UserFactory(is_active=False, is_superuser=True)
    doctor = DoctorFactory(user=UserFactory(is_active=False)).user
    grouped = UserFactory(is_active=False)
    grouped.groups.add(Group.objects.create(name="SLA staff"))
    permitted = UserFactory(is_active=False)
    permitted.user_permissions.add(Permission.objects.get(codename="view_user"))

    migration.mark_sign_ups_in_flight(global_apps, None)
    marked = set(User.objects.filter(signup_pending_since__isnull=False).values_list("pk", flat=True))
    assert marked == {in_flight.pk}
    assert signup_service.is_pending(User.objects.get(pk=in_flight.pk))
    assert not any(
        signup_service.is_pending(User.objects.get(pk=user.pk))
        for user in (finished_then_closed, active, staff, superuser, doctor, grouped, permitted)
    )

    migration.unmark_sign_ups(global_apps, None)
    assert not User.objects.filter(signup_pending_since__isnull=False).exists()


def test_staff_see_the_sign_up_mark_but_cannot_set_it(client, staff):
    """Set by hand, the mark would let the address's owner finish a "sign-up" on that account."""
    Client().post(SIGNUP_URL, signup_data("someone.new@example.com"))
    account = User.objects.get(email="someone.new@example.com")
    client.force_login(staff)
    page = client.get(reverse("admin:portal_user_change", args=[account.pk])).content.decode()
    assert "Sign-up pending since" in page
    assert 'name="signup_pending_since"' not in page
    assert 'name="signup_pending_since"' not in client.get(reverse("admin:portal_user_add")).content.decode()
