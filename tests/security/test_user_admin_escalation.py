"""Staff who may edit users (portal.change_user) or groups (auth.change_group) never gain
more than they hold, and never take over an account (third security review).

The rule: only a superuser makes anyone staff or superuser, changes anyone's groups or
permissions, changes a group's permissions, sets a password in the admin or edits a
staff, superuser or doctor account. Resetting someone's two-factor sign-in is its own
permission (portal.reset_two_factor), not "change user": the second factor is what stops
a password alone, so whoever may set passwords must not also be able to lift it.
"""

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.models import User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "Taken-over-123!"


def grant(user, *labels):
    for label in labels:
        app_label, codename = label.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return user


@pytest.fixture
def support(db):
    """Staff given what a lost-phone desk was given before the fix: view and change users."""
    return grant(UserFactory(email="support@example.com", is_staff=True), "portal.view_user", "portal.change_user")


@pytest.fixture
def admin_group(db):
    group = Group.objects.create(name="Clinic leads")
    group.permissions.add(*Permission.objects.filter(content_type__app_label="portal"))
    return group


def change_form_data(client, user, **changes):
    """What the admin's change page for `user` would post back, with `changes` applied."""
    page = client.get(reverse("admin:portal_user_change", args=[user.pk]))
    form = page.context["adminform"].form
    data = {}
    for name in form.fields:
        value = form.initial.get(name)
        if value is None or name == "password":
            continue
        if isinstance(value, (list, tuple)):
            value = [getattr(item, "pk", item) for item in value]
        if isinstance(value, bool):
            if value:
                data[name] = "on"
            continue
        data[name] = value
    data.update(changes)
    return data


def post_change(client, user, **changes):
    return client.post(reverse("admin:portal_user_change", args=[user.pk]), change_form_data(client, user, **changes))


def password_page(user):
    return f"/admin/portal/user/{user.pk}/password/"  # named auth_user_password_change by Django


def set_password(client, user):
    return client.post(
        password_page(user),
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )


# --- The user admin's flags, groups and permissions ---------------------------------------


def test_support_cannot_make_themselves_superuser_nor_join_a_group(client, support, admin_group):
    client.force_login(support)
    post_change(
        client,
        support,
        is_superuser="on",
        groups=[admin_group.pk],
        user_permissions=[Permission.objects.get(codename="delete_user").pk],
    )
    support.refresh_from_db()
    assert not support.is_superuser
    assert not support.groups.exists()
    assert set(support.user_permissions.values_list("codename", flat=True)) == {"view_user", "change_user"}


def test_support_edits_a_patient_but_never_their_flags_groups_or_permissions(client, support, patient, admin_group):
    client.force_login(support)
    response = post_change(
        client,
        patient,
        full_name="Paula P. Patient",
        is_staff="on",
        is_superuser="on",
        groups=[admin_group.pk],
        user_permissions=[Permission.objects.get(codename="change_user").pk],
    )
    assert response.status_code == 302  # saved: what support may change, they still change
    patient.refresh_from_db()
    assert patient.full_name == "Paula P. Patient"
    assert not patient.is_staff and not patient.is_superuser
    assert not patient.groups.exists() and not patient.user_permissions.exists()


def test_support_cannot_change_a_patients_address(client, support, patient):
    """The password-reset link goes to the address: changing it is taking the account."""
    client.force_login(support)
    post_change(client, patient, email="support+patient@example.com")
    patient.refresh_from_db()
    assert patient.email == "patient@example.com"


@pytest.mark.parametrize("target", ["doctor", "staff", "superuser"])
def test_support_cannot_edit_a_doctor_staff_or_superuser_account(client, support, doctor, target):
    accounts = {
        "doctor": lambda: doctor.user,
        "staff": lambda: UserFactory(email="colleague@example.com", is_staff=True),
        "superuser": lambda: UserFactory(email="lead@example.com", is_staff=True, is_superuser=True),
    }
    account = accounts[target]()
    client.force_login(support)
    page = client.get(reverse("admin:portal_user_change", args=[account.pk]))
    assert page.status_code == 200 and not page.context["has_change_permission"]  # shown, read-only
    response = client.post(
        reverse("admin:portal_user_change", args=[account.pk]),
        {"email": "support+taken@example.com", "full_name": "Taken", "time_zone": account.time_zone},
    )
    assert response.status_code == 403
    account.refresh_from_db()
    assert account.email != "support+taken@example.com" and account.full_name != "Taken"


def test_a_superuser_still_grants_staff_groups_and_permissions(client, staff, patient, admin_group):
    client.force_login(staff)
    response = post_change(client, patient, is_staff="on", groups=[admin_group.pk], email="paula@example.com")
    assert response.status_code == 302
    patient.refresh_from_db()
    assert patient.is_staff and list(patient.groups.all()) == [admin_group] and patient.email == "paula@example.com"


# --- The admin's password page ------------------------------------------------------------


@pytest.mark.parametrize("target", ["doctor", "staff", "superuser", "patient"])
def test_support_cannot_set_anyones_password(client, support, doctor, patient, target):
    """Not a doctor's, staff's or superuser's (their account and what it opens), nor a
    patient's: a password staff chose opens the patient's questions, which support may
    not read (consultations.access); a patient who forgot theirs uses the e-mailed link."""
    accounts = {
        "doctor": lambda: doctor.user,
        "staff": lambda: UserFactory(email="colleague@example.com", is_staff=True),
        "superuser": lambda: UserFactory(email="lead@example.com", is_staff=True, is_superuser=True),
        "patient": lambda: patient,
    }
    account = accounts[target]()
    client.force_login(support)
    assert client.get(password_page(account)).status_code == 403
    assert set_password(client, account).status_code == 403
    account.refresh_from_db()
    assert not account.check_password(NEW_PASSWORD)


def test_support_are_not_offered_the_password_page(client, support, patient, doctor, staff):
    client.force_login(support)
    for account in (patient, doctor.user):
        page = client.get(reverse("admin:portal_user_change", args=[account.pk]))
        assert page.status_code == 200
        assert "../password/" not in page.content.decode()
    client.force_login(staff)
    assert "../password/" in client.get(reverse("admin:portal_user_change", args=[patient.pk])).content.decode()


def test_a_superuser_still_sets_a_password(client, staff, doctor):
    client.force_login(staff)
    assert set_password(client, doctor.user).status_code == 302
    doctor.user.refresh_from_db()
    assert doctor.user.check_password(NEW_PASSWORD)


# --- Resetting two-factor sign-in ---------------------------------------------------------


def reset_two_factor(client, *users):
    return client.post(
        reverse("admin:portal_user_changelist"),
        {"action": "reset_two_factor", "_selected_action": [str(user.pk) for user in users], "index": "0"},
    )


def test_change_user_alone_does_not_reset_two_factor(client, support, doctor):
    TOTPDevice.objects.create(user=doctor.user, name="Phone", confirmed=True)
    client.force_login(support)
    reset_two_factor(client, doctor.user)
    assert TOTPDevice.objects.filter(user=doctor.user).exists()


def test_the_reset_permission_resets_a_doctors_apps_but_not_a_superusers(client, doctor):
    desk = grant(UserFactory(email="desk@example.com", is_staff=True), "portal.view_user", "portal.reset_two_factor")
    lead = UserFactory(email="lead@example.com", is_staff=True, is_superuser=True)
    TOTPDevice.objects.create(user=doctor.user, name="Lost phone", confirmed=True)
    TOTPDevice.objects.create(user=lead, name="Phone", confirmed=True)
    client.force_login(desk)
    response = reset_two_factor(client, doctor.user, lead)
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=doctor.user).exists()
    # A superuser's second factor is lifted by another superuser only.
    assert TOTPDevice.objects.filter(user=lead).exists()
    # Nor does the reset permission open the password page.
    assert set_password(client, doctor.user).status_code == 403


# --- Groups ---------------------------------------------------------------------------------


def test_staff_who_change_groups_cannot_give_their_group_permissions(client):
    group = Group.objects.create(name="Front desk")
    desk = grant(UserFactory(email="desk@example.com", is_staff=True), "auth.view_group", "auth.change_group")
    desk.groups.add(group)
    wanted = Permission.objects.get(codename="change_user")
    client.force_login(desk)
    client.post(
        reverse("admin:auth_group_change", args=[group.pk]),
        {"name": "Front desk", "permissions": [wanted.pk]},
    )
    assert not group.permissions.exists()
    desk = User.objects.get(pk=desk.pk)
    assert not desk.has_perm("portal.change_user")


def test_staff_who_change_groups_cannot_rename_one_into_a_role(client):
    """The code finds roles by name (the SLA staff and Clinical staff groups)."""
    group = Group.objects.create(name="Front desk")
    desk = grant(UserFactory(email="desk@example.com", is_staff=True), "auth.view_group", "auth.change_group")
    client.force_login(desk)
    client.post(reverse("admin:auth_group_change", args=[group.pk]), {"name": "SLA staff"})
    group.refresh_from_db()
    assert group.name == "Front desk"


def test_a_superuser_still_changes_a_groups_permissions(client, staff):
    group = Group.objects.create(name="Front desk")
    wanted = Permission.objects.get(codename="reset_two_factor")
    client.force_login(staff)
    response = client.post(
        reverse("admin:auth_group_change", args=[group.pk]), {"name": "Front desk", "permissions": [wanted.pk]}
    )
    assert response.status_code == 302
    assert list(group.permissions.all()) == [wanted]
