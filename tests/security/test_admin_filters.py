"""An admin list filters by its own filters only (portal/admin_sites.py, ListedFiltersOnly).

Django's ModelAdmin.lookup_allowed accepts a filter in the query string on any of the
model's own fields, shown or not. So a field an admin hides could be read back one
guess at a time: `?key__startswith=4` on the authenticator apps (a user's two-factor
secret, 16 guesses a character), `?body__icontains=HIV` on the e-mail outbox (which
quotes question titles) for staff who may not read patients' text, `?password__startswith=`
on the users. Every registered ModelAdmin of both admin sites now answers any lookup its
own list filters (and date hierarchy, and raw-id popups' limits) do not make with 400.
"""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.core.exceptions import FieldDoesNotExist
from django.test import Client, RequestFactory
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from consultations.doctor_admin import doctor_admin_site
from consultations.models import Notification
from tests.factories import QuestionFactory, UserFactory

pytestmark = pytest.mark.django_db

SITES = (admin.site, doctor_admin_site)


def staff_with(*codenames) -> Client:
    user = UserFactory(email="support@example.com", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def test_staff_who_may_see_authenticator_apps_cannot_guess_their_secret_key(doctor):
    device = TOTPDevice.objects.create(user=doctor.user, name="phone", confirmed=True)
    client = staff_with("view_totpdevice")
    url = "/admin/otp_totp/totpdevice/"
    assert client.get(url).status_code == 200  # the list itself, as before
    assert device.key not in client.get(f"{url}{device.pk}/change/").content.decode()

    right = client.get(url, {"key__startswith": device.key[0], "q": doctor.user.email})
    wrong = client.get(url, {"key__startswith": "x", "q": doctor.user.email})

    assert (right.status_code, wrong.status_code) == (400, 400)


def test_staff_without_the_medical_record_permission_cannot_search_e_mail_bodies(patient, specialty):
    question = QuestionFactory(patient=patient, specialty=specialty, title="Rash after a new medicine")
    row = Notification.objects.create(
        to_email=patient.email,
        kind="question_received",
        subject="We received your question",
        body='Your question: "Rash after a new medicine"',
        question=question,
        dedupe_key="question_received:probe",
    )
    client = staff_with("view_notification")
    url = "/admin/consultations/notification/"
    assert "Rash after" not in client.get(f"{url}{row.pk}/change/").content.decode()

    for lookup in ("body__icontains", "subject__icontains", "last_error__icontains"):
        assert client.get(url, {lookup: "Rash"}).status_code == 400, lookup


def test_staff_who_may_see_users_cannot_read_password_hashes_back(patient):
    client = staff_with("view_user")
    algorithm = patient.password.split("$")[0]
    assert client.get("/admin/portal/user/", {"password__startswith": algorithm}).status_code == 400
    assert client.get("/admin/portal/user/", {"is_active__exact": "1"}).status_code == 200


def registered():
    return [(site, model_admin) for site in SITES for model_admin in site._registry.values()]


@pytest.mark.parametrize(
    ("site", "model_admin"), registered(), ids=lambda x: getattr(x, "name", None) or type(x).__name__
)
def test_every_admin_refuses_a_lookup_its_filters_do_not_make(site, model_admin, staff):
    """Every registered ModelAdmin, the portal's and third parties' (axes, auth, django-otp):
    a lookup on each of its model's own fields that its list filters do not make is refused."""
    from portal.admin_sites import ListedFiltersOnly, listed_lookups

    assert isinstance(model_admin, ListedFiltersOnly), f"{site.name}: {type(model_admin).__name__}"
    request = RequestFactory().get("/")
    request.user = staff
    listed = listed_lookups(model_admin)
    for field in model_admin.model._meta.concrete_fields:
        for lookup in (f"{field.name}__startswith", f"{field.name}__gt", f"{field.name}__regex"):
            if lookup not in listed:
                assert not model_admin.lookup_allowed(lookup, "1", request), (site.name, lookup)


def filter_links(response) -> list[str]:
    changelist = response.context["cl"]
    return [choice["query_string"] for spec in changelist.filter_specs for choice in spec.choices(changelist)]


@pytest.mark.parametrize("site", SITES, ids=lambda site: site.name)
def test_every_list_filter_link_of_every_admin_still_works(site, staff, doctor, patient, specialty):
    """What the filters themselves make is allowed: every choice of every list filter, and
    a date hierarchy's year, answer 200 (a superuser sees every list of the staff site;
    the verified doctor the workbench's)."""
    QuestionFactory(patient=patient, specialty=specialty)
    client = Client()
    client.force_login(staff if site is admin.site else doctor.user)
    checked = 0
    for model, model_admin in site._registry.items():
        url = reverse(f"{site.name}:{model._meta.app_label}_{model._meta.model_name}_changelist")
        response = client.get(url)
        if response.status_code != 200:
            continue  # a list this user has no view of (e.g. the staff site's read-only records)
        for query in filter_links(response):
            assert client.get(url + query).status_code == 200, url + query
            checked += 1
        if model_admin.date_hierarchy:
            try:
                model._meta.get_field(model_admin.date_hierarchy)
            except FieldDoesNotExist:
                continue
            assert client.get(url, {f"{model_admin.date_hierarchy}__year": "2026"}).status_code == 200
    assert checked > 0


def test_a_raw_id_popup_may_still_filter_by_its_fields_limits(staff):
    """The raw-id lookup popup of a field limited by limit_choices_to passes those limits
    in the query string (Django's own exception, kept)."""
    request = RequestFactory().get("/")
    request.user = staff
    limited = [
        (model_admin, lookup)
        for site in SITES
        for model_admin in site._registry.values()
        for lookup in model_admin.model._meta.related_fkey_lookups
    ]
    for model_admin, lookup in limited:
        for name, value in (lookup() if callable(lookup) else lookup).items():
            assert model_admin.lookup_allowed(name, str(value), request), (type(model_admin).__name__, name)


# --- Admin actions: each one needs the permission its change needs ---------------------

# Actions that run without a model permission of their own, and why.
NO_CHANGE_PERMISSION = {
    # Queues unsent e-mails again: changes no record; the outbox's staff need it.
    ("admin", "consultations.Notification", "resend_now"): ("view",),
    # The doctors' workbench: doctors hold no model permissions; the site admits verified
    # doctors only, and the services check each question a doctor claims or releases.
    ("doctor_admin", "consultations.Question", "claim_selected"): (),
    ("doctor_admin", "consultations.Question", "release_selected"): (),
}
# The article workflow's actions check each article's step for the user who asks
# (ArticleAdminBase._run_step: may_submit, may_review, may_send_back), on both sites.
for _site in ("admin", "doctor_admin"):
    for _action in ("submit_selected", "publish_selected", "draft_selected"):
        NO_CHANGE_PERMISSION[_site, "articles.Article", _action] = ()


@pytest.mark.parametrize(
    ("site", "model_admin"), registered(), ids=lambda x: getattr(x, "name", None) or type(x).__name__
)
def test_every_admin_action_names_the_permission_it_needs(site, model_admin):
    """Django offers an action without `permissions=[...]` to anyone who may open the
    list: a staffer who may only view doctors verified them (second security review)."""
    label = model_admin.model._meta.label
    for function, name, _description in model_admin._get_base_actions():
        allowed = tuple(getattr(function, "allowed_permissions", ()))
        exempt = NO_CHANGE_PERMISSION.get((site.name, label, name))
        if exempt is not None:
            assert allowed == exempt, (site.name, label, name, allowed)
            continue
        assert allowed, f"{site.name}: {label} action {name!r} names no permission"
        assert "view" not in allowed, f"{site.name}: {label} action {name!r} runs with the view permission"


def test_staff_who_may_only_view_doctors_cannot_verify_or_unverify_them(doctor, unverified_doctor):
    from consultations.models import DoctorProfile

    client = staff_with("view_doctorprofile")
    url = "/admin/consultations/doctorprofile/"
    page = client.get(url)
    assert page.status_code == 200
    assert "mark_verified" not in page.content.decode()

    client.post(url, {"action": "mark_verified", "_selected_action": [unverified_doctor.pk]})
    client.post(url, {"action": "mark_unverified", "_selected_action": [doctor.pk]})

    assert DoctorProfile.objects.get(pk=unverified_doctor.pk).is_verified is False
    assert DoctorProfile.objects.get(pk=doctor.pk).is_verified is True


def test_verifying_a_doctor_is_in_their_history(staff, unverified_doctor):
    from django.contrib.admin.models import LogEntry

    client = Client()
    client.force_login(staff)
    client.post(
        "/admin/consultations/doctorprofile/", {"action": "mark_verified", "_selected_action": [unverified_doctor.pk]}
    )
    entry = LogEntry.objects.get(object_id=str(unverified_doctor.pk))
    assert (entry.user, entry.get_change_message()) == (staff, "Verified (they get the queue).")


# --- Doctor profiles: nobody gives themselves the workbench -----------------------------


def test_staff_who_may_change_doctors_cannot_verify_themselves_or_move_a_profile(doctor, specialty):
    """A staffer with the doctor-profile permissions (who onboard doctors) could attach a
    verified profile to their own account, or move a doctor's to it, and read every
    question of the specialty (flagged by the second review's helper). Only a superuser
    may; the verify action and the form leave one's own profile unverified."""
    from consultations.models import DoctorProfile

    onboarding = UserFactory(email="onboarding@example.com", is_staff=True)
    codenames = ["view_doctorprofile", "add_doctorprofile", "change_doctorprofile"]
    onboarding.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(onboarding)

    # Moving a verified doctor's profile to one's own account: the field is not editable.
    change = reverse("admin:consultations_doctorprofile_change", args=[doctor.pk])
    form = client.get(change).context["adminform"].form
    assert "user" not in form.fields
    # A profile of one's own, verified, from the add form: refused next to the field.
    add = client.post(
        reverse("admin:consultations_doctorprofile_add"),
        {
            "user": onboarding.pk,
            "display_name": "Dr. Own",
            "slug": "dr-own",
            "registration_number": "OWN-1",
            "specialties": [specialty.pk],
            "is_verified": "on",
            "duty_periods-TOTAL_FORMS": "0",
            "duty_periods-INITIAL_FORMS": "0",
        },
    )
    own = DoctorProfile.objects.filter(user=onboarding).first()
    assert own is None or own.is_verified is False, add.status_code
    if own is None:
        assert "You cannot verify your own doctor profile" in add.content.decode()
        own = DoctorProfile.objects.create(user=onboarding, display_name="Dr. Own", slug="dr-own")
        own.specialties.add(specialty)
    # The list action skips one's own profile.
    client.post(
        reverse("admin:consultations_doctorprofile_changelist"),
        {"action": "mark_verified", "_selected_action": [own.pk]},
    )
    own.refresh_from_db()
    assert own.is_verified is False
    assert client.get("/doctor/").status_code != 200


def test_withdrawing_verification_in_the_admin_gives_the_doctors_open_questions_back(staff, doctor, specialty):
    from consultations import services
    from consultations.models import Question

    question = QuestionFactory(specialty=specialty)
    services.claim_question(question.pk, doctor)
    client = Client()
    client.force_login(staff)

    client.post(
        reverse("admin:consultations_doctorprofile_changelist"),
        {"action": "mark_unverified", "_selected_action": [doctor.pk]},
    )

    assert Question.objects.get(pk=question.pk).claimed_by is None
