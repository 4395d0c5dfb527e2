"""The staff admin at /admin/: every page opens, questions can be reassigned,
audit records stay read-only, and opening a question is logged."""

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from consultations import services
from consultations.models import AccessLog, Attachment, QuestionStatus
from portal.models import User
from tests.factories import QuestionFactory, ReplyFactory, UserFactory

pytestmark = pytest.mark.django_db


def messages_of(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def question(specialty, patient):
    return QuestionFactory(specialty=specialty, patient=patient, title="Itchy rash on my arm", is_urgent=False)


@pytest.fixture
def signed_in(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture
def records(question, doctor, patient):
    ReplyFactory(question=question, author=patient)
    attachment = Attachment.objects.create(
        question=question,
        file=SimpleUploadedFile("upload.png", b"\x89PNG fake"),
        original_name="arm.png",
        content_type="image/png",
        size=9,
    )
    services.log_access(doctor.user, question, "view")
    return attachment


def test_every_staff_page_for_consultations_and_users_opens(signed_in, question, doctor, records, patient):
    models = ["specialty", "doctorprofile", "question", "reply", "attachment", "accesslog"]
    objects = {
        "specialty": question.specialty_id,
        "doctorprofile": doctor.pk,
        "question": question.pk,
        "reply": question.replies.get().pk,
        "attachment": records.pk,
        "accesslog": AccessLog.objects.get().pk,
    }
    for model in models:
        assert signed_in.get(reverse(f"admin:consultations_{model}_changelist")).status_code == 200, model
        assert signed_in.get(reverse(f"admin:consultations_{model}_change", args=[objects[model]])).status_code == 200
    for url in (
        reverse("admin:portal_user_changelist"),
        reverse("admin:portal_user_change", args=[patient.pk]),
        reverse("admin:portal_user_add"),
        reverse("admin:consultations_specialty_add"),
        reverse("admin:consultations_doctorprofile_add"),
    ):
        assert signed_in.get(url).status_code == 200, url


def test_questions_are_not_typed_in_by_staff(signed_in):
    assert signed_in.get(reverse("admin:consultations_question_add")).status_code == 403


def test_opening_a_question_in_the_staff_admin_is_logged(signed_in, staff, question):
    signed_in.get(reverse("admin:consultations_question_change", args=[question.pk]))
    log = AccessLog.objects.get(question=question)
    assert log.user == staff and log.action == "view"


def test_staff_read_who_opened_a_question(signed_in, question, specialty, doctor):
    other = QuestionFactory(specialty=specialty, is_urgent=False)
    services.log_access(doctor.user, question, "view")
    services.log_access(doctor.user, other, "view")
    response = signed_in.get(reverse("admin:consultations_accesslog_changelist") + f"?question={question.pk}")
    assert [log.question_id for log in response.context["cl"].result_list] == [question.pk]


def test_question_workflow_fields_are_read_only(signed_in, question):
    html = signed_in.get(reverse("admin:consultations_question_change", args=[question.pk])).content.decode()
    for field in ("status", "claimed_by", "clock_due_at", "due_at", "first_answered_at"):
        assert f'name="{field}"' not in html
    assert 'name="specialty"' in html and 'name="title"' in html


@pytest.mark.parametrize("model", ["accesslog", "reply", "attachment"])
def test_audit_records_are_read_only(signed_in, records, question, model):
    obj = {"accesslog": AccessLog.objects.get(), "reply": question.replies.get(), "attachment": records}[model]
    assert signed_in.get(reverse(f"admin:consultations_{model}_add")).status_code == 403
    assert (
        signed_in.post(reverse(f"admin:consultations_{model}_delete", args=[obj.pk]), {"post": "yes"}).status_code
        == 403
    )
    obj.__class__.objects.get(pk=obj.pk)


def test_attachment_metadata_links_to_the_checked_download(signed_in, records):
    html = signed_in.get(reverse("admin:consultations_attachment_change", args=[records.pk])).content.decode()
    assert reverse("consultations:attachment", args=[records.pk]) in html


# --- Reassigning ---------------------------------------------------------------------------


def test_staff_reassign_a_question_from_its_page(signed_in, question, doctor, senior_doctor):
    services.claim_question(question.pk, doctor)
    url = reverse("admin:consultations_question_reassign", args=[question.pk])
    assert "Hand this question to" in signed_in.get(url).content.decode()
    response = signed_in.post(url, {"doctor": senior_doctor.pk})
    assert response.status_code == 302
    question.refresh_from_db()
    assert question.claimed_by == senior_doctor
    assert "1 question(s) now belong to Dr. Sena Senior." in messages_of(response)


def test_reassign_form_without_a_doctor_says_so_and_changes_nothing(signed_in, question):
    url = reverse("admin:consultations_question_reassign", args=[question.pk])
    response = signed_in.post(url, {"doctor": ""})
    assert response.status_code == 200
    assert "Choose the doctor who should answer." in response.content.decode()
    question.refresh_from_db()
    assert question.claimed_by is None


def test_staff_reassign_several_questions_with_the_list_action(signed_in, question, specialty, senior_doctor):
    answered = QuestionFactory(specialty=specialty, is_urgent=False, status=QuestionStatus.ANSWERED)
    changelist = reverse("admin:consultations_question_changelist")
    selected = {"action": "reassign_selected", "_selected_action": [question.pk, answered.pk]}
    page = signed_in.post(changelist, selected)
    assert page.status_code == 200 and "Hand this question to" in page.content.decode()

    response = signed_in.post(changelist, {**selected, "apply": "yes", "doctor": senior_doctor.pk})
    assert response.status_code == 302
    question.refresh_from_db()
    answered.refresh_from_db()
    assert question.claimed_by == senior_doctor and answered.claimed_by is None
    shown = messages_of(response)
    assert "1 question(s) now belong to Dr. Sena Senior." in shown
    assert "1 question(s) were not open any more and were left as they are." in shown


def test_staff_without_the_reassign_permission_cannot_reassign(client, question, senior_doctor):
    clerk = UserFactory(email="clerk@example.com", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_question"))
    client.force_login(clerk)
    url = reverse("admin:consultations_question_reassign", args=[question.pk])
    assert client.post(url, {"doctor": senior_doctor.pk}).status_code == 403
    changelist = client.get(reverse("admin:consultations_question_changelist"))
    assert "reassign_selected" not in changelist.content.decode()
    question.refresh_from_db()
    assert question.claimed_by is None


def test_staff_reassign_from_the_doctors_workbench_too(signed_in, question, doctor, senior_doctor):
    services.claim_question(question.pk, doctor)
    page = signed_in.get(reverse("doctor_admin:consultations_question_change", args=[question.pk]))
    assert "Hand this question to" in page.content.decode()
    signed_in.post(
        reverse("doctor_admin:consultations_question_reassign", args=[question.pk]), {"doctor": senior_doctor.pk}
    )
    question.refresh_from_db()
    assert question.claimed_by == senior_doctor


# --- Users --------------------------------------------------------------------------------


def test_staff_create_a_user_by_email_without_a_username(signed_in):
    response = signed_in.post(
        reverse("admin:portal_user_add"),
        {
            "email": "new.doctor@example.com",
            "full_name": "New Doctor",
            "usable_password": "true",
            "password1": "a-long-and-unusual-pass-9",
            "password2": "a-long-and-unusual-pass-9",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    user = User.objects.get(email="new.doctor@example.com")
    assert user.check_password("a-long-and-unusual-pass-9") and not user.is_staff


def test_user_admin_finds_people_by_email_name_or_patient_code(signed_in, patient):
    url = reverse("admin:portal_user_changelist")
    for query in (patient.email, "Paula", patient.patient_code):
        response = signed_in.get(url, {"q": query})
        assert patient in response.context["cl"].result_list, query
