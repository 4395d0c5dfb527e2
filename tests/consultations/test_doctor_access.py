"""Who may enter the doctors' workbench at /doctor/, and which questions they may touch.

Every forbidden path is tried the way an attacker would: by editing the id in
the URL or in the POST body.
"""

import importlib

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from consultations.models import AccessLog, Attachment, Question, QuestionStatus, Reply
from tests.factories import PASSWORD, QuestionFactory, UserFactory

pytestmark = pytest.mark.django_db


def workbench_url(view, *args):
    return reverse(f"doctor_admin:consultations_question_{view}", args=args)


@pytest.fixture
def question(specialty, patient):
    return QuestionFactory(specialty=specialty, patient=patient, title="Itchy rash on my arm", is_urgent=False)


@pytest.fixture
def attachment(question):
    return Attachment.objects.create(
        question=question,
        file=SimpleUploadedFile("upload.jpg", b"\xff\xd8\xff\xe0 not really a photo"),
        original_name="rash.jpg",
        content_type="image/jpeg",
        size=26,
    )


# --- Entering the site ------------------------------------------------------------


def test_patient_is_sent_to_the_login_page_of_the_doctors_admin(client, patient, question):
    client.force_login(patient)
    for url in ("/doctor/", workbench_url("changelist"), workbench_url("change", question.pk)):
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith("/doctor/login/")


def test_patient_cannot_sign_in_to_the_doctors_admin(client, patient):
    response = client.post("/doctor/login/", {"username": patient.email, "password": PASSWORD})
    assert response.status_code == 200
    assert "This sign-in is for the clinic&#x27;s doctors" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_verified_doctor_signs_in_without_being_staff(client, doctor, question):
    assert not doctor.user.is_staff and not doctor.user.is_superuser
    login_page = client.get("/doctor/login/")
    assert 'name="next" value="/doctor/"' in login_page.content.decode()
    response = client.post("/doctor/login/", {"username": doctor.user.email, "password": PASSWORD, "next": "/doctor/"})
    assert response.status_code == 302
    response = client.get(response.url, follow=True)
    assert response.status_code == 200
    assert question.title in response.content.decode()


def test_unverified_doctor_cannot_sign_in(client, unverified_doctor):
    response = client.post("/doctor/login/", {"username": unverified_doctor.user.email, "password": PASSWORD})
    assert response.status_code == 200
    assert "has not been verified by the clinic team" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_unverified_doctor_with_a_session_sees_no_queue(client, unverified_doctor, question):
    client.force_login(unverified_doctor.user)
    response = client.get(workbench_url("changelist"))
    assert response.status_code == 302
    assert response.url.startswith("/doctor/login/")
    followed = client.get(workbench_url("changelist"), follow=True)
    assert question.title not in followed.content.decode()


def test_staff_keep_the_full_admin(client, staff, question):
    client.force_login(staff)
    assert client.get("/admin/").status_code == 200
    assert client.get(reverse("admin:consultations_question_change", args=[question.pk])).status_code == 200


def test_doctor_who_is_not_staff_cannot_enter_the_staff_admin(client, doctor):
    client.force_login(doctor.user)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response.url.startswith("/admin/login/")


# --- A doctor of another specialty ----------------------------------------------------


def test_other_specialty_question_is_not_in_the_queue_nor_found_by_search(client, other_doctor, question):
    client.force_login(other_doctor.user)
    for query in ("", "?q=rash", "?show=all", f"?specialty={question.specialty_id}"):
        response = client.get(workbench_url("changelist") + query)
        assert response.status_code == 200
        assert question.title not in response.content.decode()


@pytest.mark.parametrize("view", ["change", "history"])
def test_other_specialty_doctor_gets_404_on_question_pages(client, other_doctor, question, view):
    client.force_login(other_doctor.user)
    assert client.get(workbench_url(view, question.pk)).status_code == 404
    assert not AccessLog.objects.filter(question=question).exists()


def test_other_specialty_doctor_gets_404_on_the_attachment(client, other_doctor, doctor, attachment):
    url = reverse("consultations:attachment", args=[attachment.pk])
    client.force_login(other_doctor.user)
    assert client.get(url).status_code == 404
    client.force_login(doctor.user)
    assert client.get(url).status_code == 200


@pytest.mark.parametrize(
    ("view", "data"),
    [
        ("claim", {}),
        ("release", {}),
        ("change", {"body": "Use a mild steroid cream.", "intent": "answer"}),
        ("change", {"body": "How long has it itched?", "intent": "info"}),
    ],
)
def test_other_specialty_doctor_gets_404_on_every_action(client, other_doctor, question, view, data):
    client.force_login(other_doctor.user)
    response = client.post(workbench_url(view, question.pk), data)
    assert response.status_code == 404
    question.refresh_from_db()
    assert question.claimed_by is None
    assert question.status == QuestionStatus.OPEN
    assert not Reply.objects.filter(question=question).exists()


def test_other_specialty_doctor_cannot_release_a_claim_by_editing_the_id(client, doctor, other_doctor, question):
    question.claimed_by = doctor
    question.save()
    client.force_login(other_doctor.user)
    assert client.post(workbench_url("release", question.pk)).status_code == 404
    question.refresh_from_db()
    assert question.claimed_by == doctor


def test_other_specialty_doctor_cannot_claim_through_a_list_action_with_edited_ids(client, other_doctor, question):
    client.force_login(other_doctor.user)
    client.post(workbench_url("changelist"), {"action": "claim_selected", "_selected_action": [question.pk]})
    question.refresh_from_db()
    assert question.claimed_by is None


def test_nonsense_ids_are_404_not_errors(client, doctor):
    client.force_login(doctor.user)
    assert client.get("/doctor/consultations/question/not-a-number/change/").status_code == 404
    assert client.post(workbench_url("claim", 999999)).status_code == 404


def test_a_reassigned_question_opens_for_its_new_doctor_of_another_specialty(client, other_doctor, question):
    question.claimed_by = other_doctor
    question.save()
    client.force_login(other_doctor.user)
    assert client.get(workbench_url("change", question.pk)).status_code == 200


# --- What nobody does on the workbench ------------------------------------------------


def test_doctors_cannot_add_delete_or_reassign(client, doctor, senior_doctor, question):
    client.force_login(doctor.user)
    assert client.get(workbench_url("add")).status_code == 403
    assert client.post(workbench_url("delete", question.pk), {"post": "yes"}).status_code == 403
    assert client.post(workbench_url("reassign", question.pk), {"doctor": senior_doctor.pk}).status_code == 403
    question.refresh_from_db()
    assert question.claimed_by is None


def test_actions_refuse_get_requests(client, doctor, question):
    client.force_login(doctor.user)
    assert client.get(workbench_url("claim", question.pk)).status_code == 405
    question.refresh_from_db()
    assert question.claimed_by is None


def test_staff_without_a_doctor_profile_can_read_but_not_answer(client, staff, question):
    client.force_login(staff)
    assert client.get(workbench_url("change", question.pk)).status_code == 200
    response = client.post(workbench_url("change", question.pk), {"body": "Hello", "intent": "answer"})
    assert response.status_code == 403
    assert client.post(workbench_url("claim", question.pk)).status_code == 403
    assert not Reply.objects.filter(question=question).exists()


# --- Staff need the medical-record permission (issue 11 item 2) --------------------------------


def staff_user(email, *, app_label="consultations", codenames=()):
    user = UserFactory(email=email, is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames))
    return user


@pytest.fixture
def bare_staff(db):
    """Staff status and nothing else."""
    return staff_user("support@example.com")


@pytest.fixture
def editor(db):
    """Staff who edit articles: every article permission, no clinical one."""
    return staff_user("editor@example.com", app_label="articles", codenames=["view_article", "change_article"])


@pytest.fixture
def clinical_staff(db):
    return staff_user("nurse@example.com", codenames=["view_medical_record", "view_question"])


@pytest.mark.parametrize("who", ["bare_staff", "editor"])
def test_staff_without_the_medical_record_permission_read_no_question_anywhere(client, request, who, attachment):
    """Issue 11 item 2: staff status alone used to open the workbench with ?show=all, every
    question page and every attachment."""
    question = attachment.question
    client.force_login(request.getfixturevalue(who))
    for url in (
        workbench_url("changelist") + "?show=all",
        workbench_url("change", question.pk),
        workbench_url("history", question.pk),
    ):
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith("/doctor/login/"), url
        assert question.title not in client.get(url, follow=True).content.decode()
    assert client.get(reverse("consultations:attachment", args=[attachment.pk])).status_code == 404
    for model in ("question", "reply", "attachment"):
        assert client.get(reverse(f"admin:consultations_{model}_changelist")).status_code == 403, model
    assert client.get(reverse("admin:consultations_question_change", args=[question.pk])).status_code == 403
    assert not AccessLog.objects.filter(question=question).exists()


def test_the_model_permission_alone_does_not_open_patients_records(client, attachment):
    """Issue 11 item 2: "view question" is an admin permission, not clinical access."""
    clerk = staff_user("clerk@example.com", codenames=["view_question", "view_reply", "view_attachment"])
    client.force_login(clerk)
    assert client.get(reverse("admin:consultations_question_changelist")).status_code == 403
    assert client.get(reverse("consultations:attachment", args=[attachment.pk])).status_code == 404


def test_staff_without_clinical_access_are_told_why_at_the_workbench_login(client, bare_staff):
    response = client.post("/doctor/login/", {"username": bare_staff.email, "password": PASSWORD})
    assert "may not read patients&#x27; questions" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_clinical_staff_read_questions_and_files(client, clinical_staff, attachment):
    question = attachment.question
    client.force_login(clinical_staff)
    assert question.title in client.get(workbench_url("changelist") + "?show=all").content.decode()
    assert client.get(workbench_url("change", question.pk)).status_code == 200
    assert client.get(reverse("consultations:attachment", args=[attachment.pk])).status_code == 200
    assert client.get(reverse("admin:consultations_question_change", args=[question.pk])).status_code == 200


def test_the_clinical_staff_group_is_created_by_the_migration(db):
    from consultations.access import CLINICAL_PERMISSIONS, CLINICAL_STAFF_GROUP

    migration = importlib.import_module("consultations.migrations.0006_medical_record_permission")
    Group.objects.filter(name=CLINICAL_STAFF_GROUP).delete()
    migration.create_clinical_group(django_apps, None)
    granted = set(Group.objects.get(name=CLINICAL_STAFF_GROUP).permissions.values_list("codename", flat=True))
    assert granted == set(CLINICAL_PERMISSIONS)


def test_a_question_is_named_by_its_number_never_its_title(question):
    """Issue 11 item 2: the access log, escalations and the outbox name their question to
    staff who may not read it."""
    assert str(question) == f"Question #{question.pk}"
    assert question.title not in str(question)


# --- Filters (issue 11 item 8) ---------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "rating_comment__contains=a",
        "rating_comment__startswith=The",
        "patient=1",
        "patient__email__startswith=p",
        "description__icontains=rash",
        "claimed_by__user__email__startswith=d",
        "status=closed",
        "no_such_field=1",
    ],
)
def test_the_queue_refuses_filters_it_does_not_offer(client, doctor, question, query):
    """Issue 11 item 8: Django admits any of the model's own fields as a filter, so a doctor
    could read patients' rating comments letter by letter, or group questions by patient id."""
    question.rating, question.rating_comment = 5, "The best doctor"
    question.status = QuestionStatus.ANSWERED
    question.save()
    client.force_login(doctor.user)
    response = client.get(f"{workbench_url('changelist')}?show=all&{query}")
    assert response.status_code == 400
    assert question.title not in response.content.decode()


def test_the_queues_own_filters_still_work(client, doctor, question, specialty):
    client.force_login(doctor.user)
    query = f"show=all&claim=unclaimed&sla=on_track&specialty={specialty.pk}&q=rash&p=1"
    response = client.get(f"{workbench_url('changelist')}?{query}")
    assert response.status_code == 200
    assert question.title in response.content.decode()


# --- NUL characters and the "view on site" redirect (issue 11 item 18) -----------------------


@pytest.mark.parametrize(
    "url",
    [
        "/admin/consultations/question/?status=%00",
        "/admin/consultations/question/?q=%00",
        "/admin/portal/user/?q=a%00b",
        "/doctor/consultations/question/?q=%00",
        "/doctor/consultations/question/?show=all&%00=1",
    ],
)
def test_a_nul_character_in_a_filter_is_a_bad_request_not_a_crash(client, staff, question, url):
    """Issue 11 item 18: PostgreSQL refuses NUL in text, which was a 500."""
    client.raise_request_exception = False
    client.force_login(staff)
    assert client.get(url).status_code == 400


def test_a_nul_character_in_a_posted_form_is_a_bad_request(client, staff, question):
    """Issue 11 item 18."""
    client.raise_request_exception = False
    client.force_login(staff)
    response = client.post(
        reverse("admin:consultations_question_changelist"),
        {"action": "reassign_selected", "_selected_action": ["\x00"]},
    )
    assert response.status_code == 400


def view_on_site(site, pk):
    return f"/{site}/r/{ContentType.objects.get_for_model(Question).pk}/{pk}/"


def test_view_on_site_answers_alike_for_a_forbidden_and_a_missing_question(client, other_doctor, question):
    """Issue 11 item 18: the redirect answered 302 for any existing question and 404 for a
    missing one, so a doctor could count the questions of other specialties."""
    client.force_login(other_doctor.user)
    forbidden = client.get(view_on_site("doctor", question.pk))
    missing = client.get(view_on_site("doctor", question.pk + 1000))
    assert forbidden.status_code == missing.status_code == 404
    assert forbidden.content == missing.content


@pytest.mark.parametrize("site", ["doctor", "admin"])
def test_view_on_site_of_a_question_leads_nowhere_even_for_those_who_see_it(client, staff, question, site):
    """Issue 11 item 18: the question's own page is the patient's: the admin sites do not forward to it."""
    client.force_login(staff)
    assert client.get(view_on_site(site, question.pk)).status_code == 404
    assert client.get(view_on_site(site, "not-a-number")).status_code == 404
    assert client.get(f"/{site}/r/999999/{question.pk}/").status_code == 404


# --- Issue 16 (boundaries): one clinician predicate ---------------------------------


@pytest.mark.parametrize("verified", [True, False])
@pytest.mark.parametrize("active", [True, False])
def test_one_clinician_rule_in_python_and_sql(verified, active, specialty):
    """DoctorProfile.may_practise is the rule (verified and active) that the workbench,
    assignment, duty and the admin's "doctor" column ask; DoctorProfile.objects.verified()
    is its SQL form, and the two agree."""
    from django.contrib import admin

    from consultations import access, duty, services
    from consultations.models import DoctorProfile
    from portal.admin import PortalUserAdmin
    from tests.factories import DoctorFactory

    doctor = DoctorFactory(is_verified=verified, user__is_active=active, specialties=[specialty])
    doctor = DoctorProfile.objects.select_related("user").get(pk=doctor.pk)
    expected = verified and active
    assert doctor.may_practise is expected
    assert DoctorProfile.objects.verified().filter(pk=doctor.pk).exists() is expected
    assert (access.verified_doctor(doctor.user) is not None) is expected
    question = QuestionFactory(specialty=specialty)
    assert (services.assignment_refusal(question, doctor) == "") is expected
    if not expected:
        assert duty.duty_intervals(doctor, question.submitted_at, question.due_at) == []
    user_admin = PortalUserAdmin(type(doctor.user), admin.site)
    assert user_admin.is_doctor(doctor.user) is expected
