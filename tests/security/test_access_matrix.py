"""The access matrix (issue 7, DESIGN §9; roles of issue 11): every URL and admin action
that takes an object id, tried as anonymous, patient, other patient, doctor of the
specialty, doctor of another specialty, unverified doctor, staff, staff with no
permission, editor, support desk and doctor with a pending second factor, each with the status it
must get.

The rules: patients see only their own questions and files (anyone else's: 404);
anonymous visitors are sent to log in; doctors see only questions of their specialties
or handed to them; unverified doctors get no queue; staff see patients' records only
with the medical-record permission (the superuser `staff` holds every permission;
`bare_staff`, with staff status and nothing else, the `editor`, with the articles'
permissions only, and `support`, who may view and edit users and reset their two-factor
sign-in, get no patient data anywhere: no workbench, no file, no question in the admin;
`support` edits a patient's profile but sets nobody's password); the SLA dashboard is
for staff with its permission (others: 403); article drafts are not public; a doctor
whose second factor is pending (`pending_doctor`, REQUIRE_2FA on) reaches nothing but
the code page. A new URL pattern with an argument, a new ModelAdmin or a new admin
action makes the coverage tests below fail until it is added here (or exempted with a
reason).
"""

from http.cookies import SimpleCookie

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.test import Client
from django.urls import resolve, reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from articles.admin import SEEN_KEY
from articles.models import Article
from articles.services import article_version
from consultations.doctor_admin import doctor_admin_site
from consultations.models import DoctorProfile, Notification, Question
from tests.security.matrix_support import (
    ADMIN_LOGIN,
    BAD_REQUEST,
    DENIED,
    DOCTOR_LOGIN,
    FORBIDDEN,
    NOT_FOUND,
    OK,
    SECOND_FACTOR_PENDING,
    SITE_LOGIN,
    USERS,
    Outcome,
    Row,
    admin_index_redirect,
    build_world,
    expect,
    iter_patterns,
    listed_again,
    redirect,
    takes_argument,
)

# --- Probes: the records a request could change -------------------------------------------


def question_state(attr):
    def probe(world):
        pk = getattr(world, attr).pk
        state = Question.objects.filter(pk=pk).values_list("status", "claimed_by_id", "rating", "closed_at").get()
        return (*state, Question.objects.get(pk=pk).replies.count())

    return probe


def article_state(attr):
    def probe(world):
        return Article.objects.filter(pk=getattr(world, attr).pk).values_list("status", "reviewer_id").get()

    return probe


def question_specialty(attr):
    return lambda world: (
        Question.objects.filter(pk=getattr(world, attr).pk).values_list("specialty_id", "claimed_by_id").get()
    )


def doctor_verified(attr):
    return lambda world: DoctorProfile.objects.get(pk=getattr(world, attr).pk).is_verified


def notification_state(world):
    return Notification.objects.filter(pk=world.notification.pk).values_list("status", "next_attempt_at").get()


def still_there(model, attr):
    return lambda world: model.objects.filter(pk=object_of(world, attr).pk).exists()


# --- Where allowed requests lead --------------------------------------------------------


def patient_page(attr):
    return lambda world: reverse("consultations:question_detail", args=[getattr(world, attr).pk])


def workbench(view, attr=None):
    name = f"doctor_admin:consultations_question_{view}"
    return lambda world: reverse(name, args=[getattr(world, attr).pk] if attr else [])


def staff_admin(model, view, attr=None):
    return lambda world: reverse(f"admin:{model}_{view}", args=[getattr(world, attr).pk] if attr else [])


# --- Patients' pages -------------------------------------------------------------------------

# Only the owner; everyone else (doctors and staff included: they use the admin sites) gets 404.
OWNER_ONLY = expect(NOT_FOUND, anonymous=SITE_LOGIN, patient=OK)


def owner_changes(to):
    return expect(NOT_FOUND.unchanged(), anonymous=SITE_LOGIN.unchanged(), patient=redirect(to).changing())


PATIENT_ROWS = [
    Row("question_detail", lambda w: f"/questions/{w.question.pk}/", OWNER_ONLY),
    Row("question_submitted", lambda w: f"/questions/{w.question.pk}/submitted/", OWNER_ONLY),
    Row(
        "question_follow_up",
        lambda w: f"/questions/{w.question.pk}/follow-up/",
        owner_changes(patient_page("question")),
        method="post",
        data=lambda w: {"body": "It itches more at night."},
        probe=question_state("question"),
    ),
    Row(
        "question_rate",
        lambda w: f"/questions/{w.question.pk}/rate/",
        owner_changes(patient_page("question")),
        method="post",
        data=lambda w: {"rating": "5", "comment": "Clear and kind."},
        probe=question_state("question"),
    ),
    Row(
        "question_close",
        lambda w: f"/questions/{w.question.pk}/close/",
        owner_changes(patient_page("question")),
        method="post",
        probe=question_state("question"),
    ),
    # The file goes with the question: its patient, doctors who may see the question, staff.
    Row(
        "attachment_download",
        lambda w: f"/questions/attachments/{w.attachment.pk}/",
        expect(NOT_FOUND, anonymous=SITE_LOGIN, patient=OK, doctor=OK, staff=OK),
    ),
    # Issue 15 "pictures you can see": the photo full size and its thumbnail, same rule.
    Row(
        "attachment_picture",
        lambda w: f"/questions/attachments/{w.attachment.pk}/picture/",
        expect(NOT_FOUND, anonymous=SITE_LOGIN, patient=OK, doctor=OK, staff=OK),
    ),
    Row(
        "attachment_thumbnail",
        lambda w: f"/questions/attachments/{w.attachment.pk}/thumbnail/",
        expect(NOT_FOUND, anonymous=SITE_LOGIN, patient=OK, doctor=OK, staff=OK),
    ),
    Row("my_questions", lambda w: "/questions/", expect(OK, anonymous=SITE_LOGIN)),
]

# --- Public pages with a slug or a token -------------------------------------------------------

PUBLIC_ROWS = [
    Row("doctor_profile", lambda w: f"/doctors/{w.doctor.slug}/", expect(OK)),
    Row("doctor_profile_unverified", lambda w: f"/doctors/{w.unverified_doctor.slug}/", expect(NOT_FOUND)),
    Row("article_published", lambda w: f"/articles/{w.published.slug}/", expect(OK)),
    Row("article_draft", lambda w: f"/articles/{w.draft.slug}/", expect(NOT_FOUND)),
    Row("article_in_review", lambda w: f"/articles/{w.in_review.slug}/", expect(NOT_FOUND)),
    # The signed token is the permission: whoever holds the e-mailed link, signed in or not.
    Row("newsletter_confirm", lambda w: f"/articles/newsletter/confirm/{w.confirm_token}/", expect(OK)),
    Row(
        "newsletter_confirm_forged",
        lambda w: f"/articles/newsletter/confirm/{w.unsubscribe_token}/",
        expect(BAD_REQUEST),
    ),
    Row("newsletter_unsubscribe", lambda w: f"/articles/newsletter/unsubscribe/{w.unsubscribe_token}/", expect(OK)),
    Row(
        "newsletter_unsubscribe_forged",
        lambda w: f"/articles/newsletter/unsubscribe/{w.confirm_token}x/",
        expect(BAD_REQUEST),
    ),
    # Issue 11 item 12: the e-mailed link to finish a sign-up; this one is not valid (an
    # active account, a made-up token): the "no longer works" page, whoever opens it.
    Row("signup_confirm", lambda w: f"/accounts/signup/finish/{w.reset_uid}/made-up-token/", expect(OK)),
    Row(
        "password_reset_confirm",
        lambda w: f"/accounts/password/reset/{w.reset_uid}/{w.reset_token}/",
        expect(redirect(lambda w: f"/accounts/password/reset/{w.reset_uid}/set-password/", "the new-password form")),
    ),
]

# --- Accounts and the second factor -------------------------------------------------------------

SETUP_2FA = redirect(lambda w: "/accounts/2fa/setup/", "the 2FA setup")
NO_NEW_DEVICE_UNVERIFIED = Outcome(
    "refused: 403, or 302 to the 2FA code page", (302, 403), location=lambda w: "/accounts/2fa/verify/"
)
VERIFY_2FA = redirect(lambda w: "/accounts/2fa/verify/", "the 2FA code page")

ACCOUNT_ROWS = [
    Row("profile", lambda w: "/accounts/profile/", expect(OK, anonymous=SITE_LOGIN)),
    # No password typed: refused with the form again, whoever asks.
    Row(
        "sign_out_other_devices",
        lambda w: "/accounts/profile/sign-out-other-devices/",
        expect(OK, anonymous=SITE_LOGIN),  # issue 15: an invalid form is 200, as everywhere
        method="post",
    ),
    # Issue 11 item 1: a first app with the password alone; a doctor with a paired device but
    # no code entered yet may not pair another (that would pass the second factor with the
    # password alone).
    Row(
        "two_factor_setup",
        lambda w: "/accounts/2fa/setup/",
        expect(OK, anonymous=SITE_LOGIN, doctor=VERIFY_2FA, pending_doctor=NO_NEW_DEVICE_UNVERIFIED),
    ),
    # Only the doctors have a paired device; everyone else is sent to pair one first.
    Row(
        "two_factor_verify",
        lambda w: "/accounts/2fa/verify/",
        expect(SETUP_2FA, anonymous=SITE_LOGIN, doctor=OK, pending_doctor=OK),
    ),
    # Issue 11 item 1: the doctor has a device but a password-only session: code first.
    Row("two_factor_devices", lambda w: "/accounts/2fa/devices/", expect(OK, anonymous=SITE_LOGIN, doctor=VERIFY_2FA)),
    Row(
        "two_factor_remove",
        lambda w: f"/accounts/2fa/devices/{w.totp_device.pk}/remove/",
        # Someone else's device is "not found", for the pending doctor too (2FA pages are open to them).
        expect(
            NOT_FOUND.unchanged(),
            anonymous=SITE_LOGIN.unchanged(),
            doctor=VERIFY_2FA.unchanged(),
            pending_doctor=NOT_FOUND.unchanged(),
        ),
        method="post",
        probe=lambda w: TOTPDevice.objects.filter(pk=w.totp_device.pk).exists(),
    ),
]

# --- The staff SLA dashboard ----------------------------------------------------------------------

STAFF_ONLY = expect(FORBIDDEN, anonymous=SITE_LOGIN, staff=OK)

DASHBOARD_ROWS = [
    Row("sla_dashboard", lambda w: "/staff/sla/", STAFF_ONLY),
    Row("sla_live", lambda w: "/staff/sla/live/", STAFF_ONLY),
    Row("sla_export_csv", lambda w: "/staff/sla/report.csv", STAFF_ONLY),
    Row("sla_now_json", lambda w: "/staff/sla/now.json", STAFF_ONLY),
    Row("sla_metrics", lambda w: "/staff/sla/metrics", STAFF_ONLY),
    Row(
        "sla_reassign",
        lambda w: f"/staff/sla/questions/{w.queue_question.pk}/reassign/",
        expect(
            FORBIDDEN.unchanged(),
            anonymous=SITE_LOGIN.unchanged(),
            staff=redirect(lambda w: "/staff/sla/", "the dashboard").changing(),
        ),
        method="post",
        data=lambda w: {"doctor": str(w.doctor.pk), "period": "7d"},
        probe=question_state("queue_question"),
    ),
]

# --- Operational endpoints ------------------------------------------------------------------------

# Up (200) or not (503), whichever the world's broker and sweep say: what matters is who gets in.
PROBE = Outcome("200 or 503", (200, 503))

OPERATIONS_ROWS = [
    # The load balancer's probe: public, one word, nothing else.
    Row("healthz", lambda w: "/healthz", expect(PROBE, pending_doctor=PROBE)),
    Row("healthz_sla", lambda w: "/healthz/sla", expect(PROBE, pending_doctor=PROBE)),
    # Its detail: the SLA dashboard's rule (or the monitoring token, tried in tests/portal/test_healthz.py).
    Row("healthz_details", lambda w: "/healthz/details", expect(FORBIDDEN, anonymous=SITE_LOGIN, staff=PROBE)),
]

# --- The doctors' workbench (/doctor/): the queue, the question page and its buttons ---------------

# Refused at the workbench's door, unverified doctors and staff without the medical-record
# permission included: no queue, no question.
NO_WORKBENCH = {
    who: DOCTOR_LOGIN
    for who in ("anonymous", "patient", "other_patient", "unverified_doctor", "bare_staff", "editor", "support")
}


def no_workbench_unchanged():
    return {who: outcome.unchanged() for who, outcome in NO_WORKBENCH.items()}


WORKBENCH_ROWS = [
    Row("workbench_queue", lambda w: "/doctor/consultations/question/", expect(OK, **NO_WORKBENCH)),
    # Issue 14: the live queue's JSON poll, refused exactly like the queue page.
    Row("workbench_queue_live", lambda w: "/doctor/consultations/question/live/", expect(OK, **NO_WORKBENCH)),
    Row(
        "workbench_question_of_assigned_doctor",
        lambda w: f"/doctor/consultations/question/{w.assigned_question.pk}/change/",
        # Another specialty's question, handed to `doctor`: theirs to see too.
        expect(**NO_WORKBENCH, doctor=OK, other_doctor=OK, staff=OK),
    ),
    Row(
        "workbench_claim",
        lambda w: f"/doctor/consultations/question/{w.queue_question.pk}/claim/",
        expect(
            **no_workbench_unchanged(),
            doctor=redirect(workbench("change", "queue_question"), "the question page").changing(),
            other_doctor=NOT_FOUND.unchanged(),
            # Staff oversee the queue but do not answer: claiming is for doctors.
            staff=FORBIDDEN.unchanged(),
        ),
        method="post",
        probe=question_state("queue_question"),
    ),
    Row(
        "workbench_release",
        lambda w: f"/doctor/consultations/question/{w.question.pk}/release/",
        expect(
            **no_workbench_unchanged(),
            doctor=redirect(workbench("change", "question"), "the question page").changing(),
            other_doctor=NOT_FOUND.unchanged(),
            staff=FORBIDDEN.unchanged(),
        ),
        method="post",
        probe=question_state("question"),
    ),
    Row(
        "workbench_reassign",
        lambda w: f"/doctor/consultations/question/{w.queue_question.pk}/reassign/",
        expect(
            **no_workbench_unchanged(),
            doctor=FORBIDDEN.unchanged(),
            other_doctor=NOT_FOUND.unchanged(),
            staff=redirect(workbench("change", "queue_question"), "the question page").changing(),
        ),
        method="post",
        data=lambda w: {"doctor": str(w.doctor.pk)},
        probe=question_state("queue_question"),
    ),
    Row(
        "workbench_answer",
        lambda w: f"/doctor/consultations/question/{w.question.pk}/change/",
        expect(
            **no_workbench_unchanged(),
            doctor=redirect(workbench("changelist"), "the queue").changing(),
            other_doctor=NOT_FOUND.unchanged(),
            staff=FORBIDDEN.unchanged(),
        ),
        method="post",
        data=lambda w: {"body": "Use the cream twice a day for a week.", "intent": "answer"},
        probe=question_state("question"),
    ),
    Row(
        "workbench_request_info",
        lambda w: f"/doctor/consultations/question/{w.question.pk}/change/",
        expect(
            **no_workbench_unchanged(),
            doctor=redirect(workbench("changelist"), "the queue").changing(),
            other_doctor=NOT_FOUND.unchanged(),
            staff=FORBIDDEN.unchanged(),
        ),
        method="post",
        data=lambda w: {"body": "Could you send a photo in daylight?", "intent": "info"},
        probe=question_state("question"),
    ),
    Row(
        "workbench_article_workflow",
        lambda w: f"/doctor/articles/article/{w.draft.pk}/workflow/submit/",
        expect(
            **no_workbench_unchanged(),
            doctor=redirect(lambda w: f"/doctor/articles/article/{w.draft.pk}/change/", "the article").changing(),
            # Another doctor's draft, and staff (no doctor profile) see no such article.
            other_doctor=NOT_FOUND.unchanged(),
            staff=NOT_FOUND.unchanged(),
        ),
        method="post",
        probe=article_state("draft"),
    ),
    Row(
        "workbench_app_consultations",
        lambda w: "/doctor/consultations/",
        expect(redirect(workbench("changelist"), "the queue"), **NO_WORKBENCH),
    ),
    Row(
        "workbench_app_articles",
        lambda w: "/doctor/articles/",
        # Staff have no doctor profile, so no article app on the workbench.
        expect(OK, **NO_WORKBENCH, staff=NOT_FOUND),
    ),
    # The admin's "view on site" shortcut forwards only to objects this site shows the
    # user, and answers 404 alike for a missing or a forbidden one. A question's own page
    # is the patient's: no forwarding there at all.
    Row(
        "workbench_view_on_site",
        lambda w: f"/doctor/r/{ContentType.objects.get_for_model(Question).pk}/{w.question.pk}/",
        expect(NOT_FOUND, **NO_WORKBENCH),
    ),
    Row(
        "workbench_view_on_site_article",
        lambda w: f"/doctor/r/{ContentType.objects.get_for_model(Article).pk}/{w.draft.pk}/",
        expect(NOT_FOUND, **NO_WORKBENCH, doctor=redirect(lambda w: w.draft.get_absolute_url(), "the article")),
    ),
    Row("workbench_unknown_page", lambda w: "/doctor/no-such-page/", expect(NOT_FOUND, **NO_WORKBENCH)),
    Row(
        "workbench_duty_switch",
        lambda w: "/doctor/duty/",
        expect(
            **no_workbench_unchanged(),
            # Each verified doctor switches only themselves (issue 14); staff have no duty.
            doctor=redirect(workbench("changelist"), "the queue").changing(),
            other_doctor=redirect(workbench("changelist"), "the queue").changing(),
            staff=FORBIDDEN.unchanged(),
        ),
        method="post",
        data=lambda w: {"on": "0"},
        probe=lambda w: list(DoctorProfile.objects.order_by("pk").values_list("pk", "off_duty", "on_duty_until")),
    ),
]

# --- The staff admin (/admin/): pages beyond the generated ones ------------------------------------

STAFF_ADMIN_ONLY = expect(ADMIN_LOGIN, staff=OK)
# Staff status opens the admin's door; the permissions decide what is behind it.
NO_PERMISSION = {"bare_staff": FORBIDDEN, "editor": FORBIDDEN, "support": FORBIDDEN}
NO_PERMISSION_UNCHANGED = {who: outcome.unchanged() for who, outcome in NO_PERMISSION.items()}

STAFF_ADMIN_ROWS = [
    Row(
        "admin_question_reassign_page",
        lambda w: f"/admin/consultations/question/{w.queue_question.pk}/reassign/",
        expect(ADMIN_LOGIN, staff=OK, **NO_PERMISSION),
    ),
    Row(
        "admin_question_reassign",
        lambda w: f"/admin/consultations/question/{w.queue_question.pk}/reassign/",
        expect(
            ADMIN_LOGIN.unchanged(),
            staff=redirect(
                staff_admin("consultations_question", "change", "queue_question"), "the question"
            ).changing(),
            **NO_PERMISSION_UNCHANGED,
        ),
        method="post",
        data=lambda w: {"doctor": str(w.doctor.pk)},
        probe=question_state("queue_question"),
    ),
    # Moving a question to another specialty: an explicit, logged action.
    Row(
        "admin_question_specialty",
        lambda w: f"/admin/consultations/question/{w.queue_question.pk}/specialty/",
        expect(
            ADMIN_LOGIN.unchanged(),
            staff=redirect(
                staff_admin("consultations_question", "change", "queue_question"), "the question"
            ).changing(),
            **NO_PERMISSION_UNCHANGED,
        ),
        method="post",
        data=lambda w: {"specialty": str(w.other_specialty.pk)},
        probe=question_specialty("queue_question"),
    ),
    Row(
        "admin_article_workflow",
        lambda w: f"/admin/articles/article/{w.draft.pk}/workflow/submit/",
        expect(
            ADMIN_LOGIN.unchanged(),
            staff=redirect(staff_admin("articles_article", "change", "draft"), "the article").changing(),
            # Refused with a message on the article list.
            bare_staff=redirect(staff_admin("articles_article", "changelist"), "the article list").unchanged(),
            support=redirect(staff_admin("articles_article", "changelist"), "the article list").unchanged(),
            editor=redirect(staff_admin("articles_article", "change", "draft"), "the article").changing(),
        ),
        method="post",
        probe=article_state("draft"),
    ),
    # Support may edit the patient, yet sets no password: one they chose signs them in as
    # the patient, whose questions they may not read (a forgotten password: the e-mailed link).
    Row(
        "admin_user_password",
        lambda w: f"/admin/portal/user/{w.users['patient'].pk}/password/",
        expect(ADMIN_LOGIN, staff=OK, **NO_PERMISSION),
    ),
    # A doctor's TOTP secret lets whoever reads it pass that doctor's second factor
    # unnoticed: OTP_ADMIN_HIDE_SENSITIVE_DATA hides it from staff too.
    Row(
        "admin_totp_config",
        lambda w: f"/admin/otp_totp/totpdevice/{w.totp_device.pk}/config/",
        expect(ADMIN_LOGIN, staff=FORBIDDEN, **NO_PERMISSION),
    ),
    Row(
        "admin_totp_qrcode",
        lambda w: f"/admin/otp_totp/totpdevice/{w.totp_device.pk}/qrcode/",
        expect(ADMIN_LOGIN, staff=FORBIDDEN, **NO_PERMISSION),
    ),
    # An app with nothing the user may open does not exist for them.
    Row(
        "admin_app_consultations",
        lambda w: "/admin/consultations/",
        expect(ADMIN_LOGIN, staff=OK, bare_staff=NOT_FOUND, editor=NOT_FOUND, support=NOT_FOUND),
    ),
    Row(
        "admin_view_on_site",
        lambda w: f"/admin/r/{ContentType.objects.get_for_model(Question).pk}/{w.question.pk}/",
        expect(ADMIN_LOGIN, staff=NOT_FOUND, bare_staff=NOT_FOUND, editor=NOT_FOUND, support=NOT_FOUND),
    ),
    Row(
        "admin_view_on_site_article",
        lambda w: f"/admin/r/{ContentType.objects.get_for_model(Article).pk}/{w.published.pk}/",
        expect(
            ADMIN_LOGIN,
            staff=redirect(lambda w: w.published.get_absolute_url(), "the article"),
            bare_staff=NOT_FOUND,
            support=NOT_FOUND,
            editor=redirect(lambda w: w.published.get_absolute_url(), "the article"),
        ),
    ),
    Row(
        "admin_unknown_page",
        lambda w: "/admin/no-such-page/",
        expect(ADMIN_LOGIN, staff=NOT_FOUND, **{"bare_staff": NOT_FOUND, "editor": NOT_FOUND, "support": NOT_FOUND}),
    ),
]

# --- Generated: change, history, delete and the old change URL of every ModelAdmin ------------------

# The record each registered model's admin pages are tried on.
ADMIN_OBJECTS = {
    "auth.group": "group",
    "portal.user": "users.patient",
    "consultations.specialty": "specialty",
    "consultations.doctorprofile": "doctor",
    "consultations.question": "question",
    "consultations.reply": "answer",
    "consultations.attachment": "attachment",
    "consultations.accesslog": "access_log",
    "consultations.escalation": "escalation",
    "consultations.notification": "notification",
    "consultations.sweeprun": "sweep_run",
    "consultations.breachcredit": "breach_credit",
    "articles.article": "draft",
    "articles.tag": "tag",
    "articles.subscriber": "subscriber",
    "articles.articleviewday": "view_day",
    "axes.accessattempt": "login_attempt",
    "axes.accesslog": "login_log",
    "axes.accessfailurelog": "login_failure",
    "otp_totp.totpdevice": "totp_device",
}


def object_of(world, attr):
    """A World attribute, or "users.<who>" for one of the people's accounts."""
    if attr.startswith("users."):
        return world.users[attr.removeprefix("users.")]
    return getattr(world, attr)


# Records and audit trails staff may read in /admin/ but never delete.
STAFF_MAY_NOT_DELETE = {
    "consultations.question",
    "consultations.reply",
    "consultations.attachment",
    "consultations.accesslog",
    "consultations.escalation",
    "consultations.notification",
    "consultations.sweeprun",
    "consultations.breachcredit",
}

# Staff admin pages known to break for staff (strict xfail until fixed).
STAFF_ADMIN_BUGS: dict = {}

# The workbench, per model and page: doctors, other doctors and staff (the rest get the login page).
WORKBENCH_ADMIN = {
    "consultations.question": {
        "doctor": {"change": OK, "history": OK, "delete": FORBIDDEN},
        # Another specialty's question does not exist for them (the edit rights are refused first on delete).
        "other_doctor": {"change": NOT_FOUND, "history": NOT_FOUND, "delete": DENIED},
        "staff": {"change": OK, "history": OK, "delete": FORBIDDEN},
    },
    # The draft is `doctor`'s: only its author opens, edits or deletes it.
    "articles.article": {
        "doctor": {"change": OK, "history": OK, "delete": OK},
        "other_doctor": {
            "change": admin_index_redirect("doctor_admin"),
            "history": admin_index_redirect("doctor_admin"),
            "delete": FORBIDDEN,
        },
        "staff": {"change": FORBIDDEN, "history": admin_index_redirect("doctor_admin"), "delete": FORBIDDEN},
    },
    # Doctors pick tags; nobody edits or deletes them on the workbench.
    "articles.tag": {
        "doctor": {"change": OK, "history": OK, "delete": FORBIDDEN},
        "other_doctor": {"change": OK, "history": OK, "delete": FORBIDDEN},
        "staff": {"change": FORBIDDEN, "history": FORBIDDEN, "delete": FORBIDDEN},
    },
}

ADMIN_PAGES = ("change", "history", "delete")


def model_admin_url(site_name, label, view, attr):
    app_label, model_name = label.split(".")
    name = f"{site_name}:{app_label}_{model_name}_{view}"
    return lambda world: reverse(name, args=[object_of(world, attr).pk])


def old_change_url(site_name, label, attr):
    """/<app>/<model>/<id>/: kept by Django as a redirect to the change page."""
    change = model_admin_url(site_name, label, "change", attr)
    return lambda world: change(world).removesuffix("change/")


# The editor holds every permission of the articles app and nothing else.
EDITOR_APPS = ("articles.",)


# What support gets on the users' admin (the patient's account), per page; other models refuse them.
SUPPORT_USER_PAGES = {"change": OK, "history": OK, "delete": FORBIDDEN}


def least_privilege(label, staff_outcome, refused, support=None):
    """Staff with no permission are refused every model; the editor is treated as staff
    on the articles' models and refused everywhere else; support gets `support` on the
    users' admin and is refused everywhere else."""
    return {
        "bare_staff": refused,
        "editor": staff_outcome if label.startswith(EDITOR_APPS) else refused,
        "support": support if label == "portal.user" and support is not None else refused,
    }


def staff_admin_page_rows():
    rows = []
    for model in admin.site._registry:
        label = model._meta.label_lower
        attr = ADMIN_OBJECTS.get(label)
        if attr is None:
            continue  # test_every_model_admin_has_a_record_and_rules says so
        for view in ADMIN_PAGES:
            allowed = FORBIDDEN if view == "delete" and label in STAFF_MAY_NOT_DELETE else OK
            bug = STAFF_ADMIN_BUGS.get((label, view))
            rows.append(
                Row(
                    f"admin:{label}:{view}",
                    model_admin_url("admin", label, view, attr),
                    expect(
                        ADMIN_LOGIN,
                        staff=allowed,
                        **least_privilege(label, allowed, FORBIDDEN, support=SUPPORT_USER_PAGES[view]),
                    ),
                    bugs={"staff": bug} if bug else {},
                )
            )
        change = model_admin_url("admin", label, "change", attr)
        # The old URL forwards anyone the admin admits; the change page decides (above).
        to_change = redirect(change, "the change page")
        rows.append(
            Row(
                f"admin:{label}:old_change_url",
                old_change_url("admin", label, attr),
                expect(ADMIN_LOGIN, staff=to_change, bare_staff=to_change, editor=to_change, support=to_change),
            )
        )
    return rows


def workbench_page_rows():
    rows = []
    for model in doctor_admin_site._registry:
        label = model._meta.label_lower
        attr, rules = ADMIN_OBJECTS.get(label), WORKBENCH_ADMIN.get(label)
        if attr is None or rules is None:
            continue  # test_every_model_admin_has_a_record_and_rules says so
        for view in ADMIN_PAGES:
            allowed = {who: rules[who][view] for who in rules}
            rows.append(
                Row(
                    f"doctor_admin:{label}:{view}",
                    model_admin_url("doctor_admin", label, view, attr),
                    expect(**NO_WORKBENCH, **allowed),
                )
            )
        change = model_admin_url("doctor_admin", label, "change", attr)
        rows.append(
            Row(
                f"doctor_admin:{label}:old_change_url",
                old_change_url("doctor_admin", label, attr),
                expect(redirect(change, "the change page"), **NO_WORKBENCH),
            )
        )
    return rows


# --- Admin actions: a changelist POST naming the record -------------------------------------


def changelist(site_name, label):
    app_label, model_name = label.split(".")
    return lambda world: reverse(f"{site_name}:{app_label}_{model_name}_changelist")


def action_row(site_name, label, action, attr, outcomes, probe=None, data=None, **options):
    def form(world):
        extra = data(world) if data else {}
        return {"action": action, "index": "0", "_selected_action": [str(object_of(world, attr).pk)], **extra}

    name = f"{site_name}:{label}:action:{action}"
    return Row(name, changelist(site_name, label), outcomes, "post", form, probe, **options)


def staff_action(label, action, attr, staff_outcome, probe=None, data=None, support=None, **options):
    refused = ADMIN_LOGIN.unchanged() if probe else ADMIN_LOGIN
    forbidden = FORBIDDEN.unchanged() if probe else FORBIDDEN
    outcomes = expect(refused, staff=staff_outcome, **least_privilege(label, staff_outcome, forbidden, support))
    return action_row("admin", label, action, attr, outcomes, probe, data, **options)


def back_to(site_name, label):
    return redirect(changelist(site_name, label), "the list")


def staff_admin_action_rows():
    rows = []
    for model in admin.site._registry:
        label = model._meta.label_lower
        if label not in ADMIN_OBJECTS:
            continue  # test_every_model_admin_has_a_record_and_rules says so
        # Without "post=yes" staff get the confirmation page; nothing is deleted either way.
        allowed = listed_again(changelist("admin", label)) if label in STAFF_MAY_NOT_DELETE else OK
        rows.append(
            staff_action(
                label,
                "delete_selected",
                ADMIN_OBJECTS[label],
                allowed.unchanged(),
                still_there(model, ADMIN_OBJECTS[label]),
                # Support sees the users' list but deletes nobody: the list again.
                support=listed_again(changelist("admin", label)).unchanged(),
            )
        )
    question, article = "consultations.question", "articles.article"
    profile = "consultations.doctorprofile"
    rows += [
        staff_action(
            question,
            "reassign_selected",
            "queue_question",
            back_to("admin", question).changing(),
            question_state("queue_question"),
            data=lambda w: {"apply": "1", "doctor": str(w.doctor.pk)},
        ),
        staff_action(
            profile,
            "mark_verified",
            "unverified_doctor",
            back_to("admin", profile).changing(),
            doctor_verified("unverified_doctor"),
        ),
        staff_action(
            profile, "mark_unverified", "doctor", back_to("admin", profile).changing(), doctor_verified("doctor")
        ),
        staff_action(
            "consultations.notification",
            "resend_now",
            "notification",
            back_to("admin", "consultations.notification").changing(),
            notification_state,
        ),
        staff_action(article, "submit_selected", "draft", back_to("admin", article).changing(), article_state("draft")),
        # Staff move articles along but never review: publishing needs a doctor.
        staff_action(
            article,
            "publish_selected",
            "in_review",
            back_to("admin", article).unchanged(),
            article_state("in_review"),
            prepare=opened("admin", "in_review"),
        ),
        staff_action(
            article, "draft_selected", "in_review", back_to("admin", article).changing(), article_state("in_review")
        ),
        # Issue 11 item 1: staff reset a user's two-factor apps (a lost phone).
        staff_action(
            "portal.user",
            "reset_two_factor",
            "users.doctor",
            back_to("admin", "portal.user").changing(),
            lambda w: TOTPDevice.objects.filter(user=w.users["doctor"]).count(),
            # Their own permission (portal.reset_two_factor), not "change user".
            support=back_to("admin", "portal.user").changing(),
        ),
        staff_action(
            "axes.accessattempt",
            "cleanup_expired_attempts",
            "login_attempt",
            back_to("admin", "axes.accessattempt"),
        ),
    ]
    return rows


def workbench_action(label, action, attr, probe, prepare=None, **allowed):
    outcomes = expect(**no_workbench_unchanged(), **allowed)
    return action_row("doctor_admin", label, action, attr, outcomes, probe, prepare=prepare)


def opened(site_name, attr):
    """Before approving, the visitor opens the article (an approval covers the version its
    reviewer was shown), and every signed-in visitor's session says they were shown it:
    a refusal must come from their rights, not from never having opened it."""

    def prepare(world, visitor):
        article = Article.objects.get(pk=object_of(world, attr).pk)
        visitor.get(reverse(f"{site_name}:articles_article_change", args=[article.pk]))
        if settings.SESSION_COOKIE_NAME in visitor.cookies:
            session = visitor.session
            session[SEEN_KEY] = {str(article.pk): article_version(article)}
            session.save()

    return prepare


def workbench_action_rows():
    question, article = "consultations.question", "articles.article"
    to_queue, to_articles = back_to("doctor_admin", question), back_to("doctor_admin", article)
    # Staff hold no actions on the workbench's queue (their POST shows it again) and
    # have no article list there at all.
    staff_list = OK.unchanged()
    no_articles = FORBIDDEN.unchanged()
    return [
        workbench_action(
            question,
            "claim_selected",
            "queue_question",
            question_state("queue_question"),
            doctor=to_queue.changing(),
            other_doctor=to_queue.unchanged(),
            staff=staff_list,
        ),
        workbench_action(
            question,
            "release_selected",
            "question",
            question_state("question"),
            doctor=to_queue.changing(),
            other_doctor=to_queue.unchanged(),
            staff=staff_list,
        ),
        workbench_action(
            article,
            "submit_selected",
            "draft",
            article_state("draft"),
            doctor=to_articles.changing(),
            other_doctor=to_articles.unchanged(),
            staff=no_articles,
        ),
        # `other_doctor` wrote it: they may not review it; `doctor` may.
        workbench_action(
            article,
            "publish_selected",
            "in_review",
            article_state("in_review"),
            prepare=opened("doctor_admin", "in_review"),
            doctor=to_articles.changing(),
            other_doctor=to_articles.unchanged(),
            staff=no_articles,
        ),
        # The reviewer sends it back for changes, or its author withdraws it.
        workbench_action(
            article,
            "draft_selected",
            "in_review",
            article_state("in_review"),
            doctor=to_articles.changing(),
            other_doctor=to_articles.changing(),
            staff=no_articles,
        ),
    ]


# Patterns with an argument that no row tries, and why. Keep it short: a row is better.
EXEMPT: dict[str, str] = {}

ROWS = [
    *PATIENT_ROWS,
    *PUBLIC_ROWS,
    *ACCOUNT_ROWS,
    *DASHBOARD_ROWS,
    *OPERATIONS_ROWS,
    *WORKBENCH_ROWS,
    *STAFF_ADMIN_ROWS,
    *staff_admin_page_rows(),
    *workbench_page_rows(),
    *staff_admin_action_rows(),
    *workbench_action_rows(),
]


def cells():
    for row in ROWS:
        for who in USERS:
            marks = [pytest.mark.xfail(strict=True, reason=row.bugs[who])] if who in row.bugs else []
            yield pytest.param(row, who, id=f"{row.id}-{who}", marks=marks)


# --- Fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory):
    """The records, built once for the module inside a transaction rolled back at its end.

    Each test runs in its own savepoint inside it (pytest-django's `db`), so what one
    test changes (a claim, an answer) is gone before the next: about a thousand cells
    share one build instead of a thousand.
    """
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            yield build_world(tmp_path_factory.mktemp("matrix-private"))
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


@pytest.fixture(scope="module")
def shared_client():
    """One test client for the module: a new client loads the middleware again, and
    WhiteNoise's start-up scans every static file (over half the matrix's time)."""
    return Client()


@pytest.fixture
def visitor(shared_client):
    """The shared client with no cookies: nobody is signed in until the test says who."""
    shared_client.cookies = SimpleCookie()
    yield shared_client
    shared_client.cookies = SimpleCookie()


@pytest.fixture(autouse=True)
def _world_files(_test_settings, settings, world):
    # tests/conftest.py gives each test a fresh private folder; the attachment lives in the module's.
    settings.PRIVATE_MEDIA_ROOT = world.private_root


# --- The matrix ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("row", "who"), list(cells()))
def test_access(row, who, world, visitor, db, settings):
    settings.REQUIRE_2FA = who in SECOND_FACTOR_PENDING
    user = world.users[who]
    if user is not None:
        visitor.force_login(user)
    url = row.url(world)
    if row.prepare:
        row.prepare(world, visitor)
    before = row.probe(world) if row.probe else None
    response = getattr(visitor, row.method)(url, row.data(world) if row.data else {})
    if response.streaming:
        # Reading a file response to its end closes the file (the test client's own wrapper).
        b"".join(response.streaming_content)
    outcome = row.expected[who]
    problems = outcome.problems(response, url.partition("?")[0], world)
    if outcome.changes is not None:
        changed = row.probe(world) != before
        if changed != outcome.changes:
            problems.append("the records changed" if changed else "the records did not change")
    assert not problems, f"{row.method.upper()} {url} as {who}: expected {outcome.label}; got {'; '.join(problems)}"


# --- Coverage: new URLs, admins and actions must join the matrix ----------------------------------


def test_every_url_pattern_with_an_argument_is_in_the_matrix(world, db):
    tried = {resolve(row.url(world).partition("?")[0]).route for row in ROWS}
    with_argument = {route for route, _name in iter_patterns() if takes_argument(route)}
    untried = sorted(with_argument - tried - set(EXEMPT))
    assert not untried, "Add these URL patterns to the access matrix (or EXEMPT, with a reason):\n" + "\n".join(untried)
    stale = sorted(set(EXEMPT) - with_argument)
    assert not stale, f"EXEMPT names patterns that no longer exist: {stale}"


def test_every_model_admin_has_a_record_and_rules():
    missing_records = sorted(
        model._meta.label_lower
        for site in (admin.site, doctor_admin_site)
        for model in site._registry
        if model._meta.label_lower not in ADMIN_OBJECTS
    )
    assert not missing_records, f"Give these models a record in the matrix world and ADMIN_OBJECTS: {missing_records}"
    missing_rules = sorted(
        label
        for label in (model._meta.label_lower for model in doctor_admin_site._registry)
        if label not in WORKBENCH_ADMIN
    )
    assert not missing_rules, f"Say who may open these on the workbench (WORKBENCH_ADMIN): {missing_rules}"


def action_names(site, model_admin):
    site_wide = [name for name, _func in site.actions]
    own = [action if isinstance(action, str) else action.__name__ for action in model_admin.actions or ()]
    return set(site_wide + own)


def test_every_admin_action_is_in_the_matrix():
    tried = {row.id for row in ROWS}
    untried = sorted(
        f"{site.name}:{model._meta.label_lower}:action:{name}"
        for site in (admin.site, doctor_admin_site)
        for model, model_admin in site._registry.items()
        for name in action_names(site, model_admin)
        if f"{site.name}:{model._meta.label_lower}:action:{name}" not in tried
    )
    assert not untried, "Add these admin actions to the access matrix:\n" + "\n".join(untried)


def test_each_row_has_its_own_name():
    names = [row.id for row in ROWS]
    assert len(names) == len(set(names))
