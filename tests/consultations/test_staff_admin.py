"""The staff admin at /admin/: every page opens, questions can be reassigned,
audit records stay read-only, and opening a question is logged."""

from datetime import timedelta

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.admin.templatetags.admin_list import result_headers
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from consultations import services
from consultations.models import AccessLog, Attachment, Notification, QuestionStatus
from portal.models import User
from tests.factories import DoctorFactory, QuestionFactory, ReplyFactory, UserFactory, hours_ago

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


PATIENT_FIELDS = ("title", "description", "medical_history", "current_medication", "age", "sex", "specialty")


def test_what_the_patient_wrote_is_shown_read_only(signed_in, question):
    """Issue 11 item 4: the page was an editable form of the patient's own words, with
    add/change/delete icons on the specialty."""
    question.medical_history, question.current_medication = "Eczema as a child", "Cetirizine 10 mg"
    question.save()
    html = signed_in.get(reverse("admin:consultations_question_change", args=[question.pk])).content.decode()
    for field in (*PATIENT_FIELDS, "status", "claimed_by", "clock_due_at", "due_at", "first_answered_at"):
        assert f'name="{field}"' not in html, field
    assert 'name="_save"' not in html
    assert "add_id_specialty" not in html and "change_id_specialty" not in html and "delete_id_specialty" not in html
    for text in (question.title, question.description, "Eczema as a child", "Cetirizine 10 mg"):
        assert text in html


def test_posting_the_change_form_changes_nothing(signed_in, question, other_specialty):
    """Issue 11 item 4."""
    url = reverse("admin:consultations_question_change", args=[question.pk])
    data = {
        "title": "Edited by staff",
        "description": "Edited",
        "age": 99,
        "sex": "male",
        "specialty": other_specialty.pk,
    }
    assert signed_in.post(url, data).status_code == 403
    question.refresh_from_db()
    assert (question.title, question.age, question.specialty_id) != ("Edited by staff", 99, other_specialty.pk)


def test_moving_a_question_to_another_specialty_is_logged_and_rechecks_the_doctor(
    signed_in, staff, question, doctor, other_specialty
):
    """Issue 11 item 4: the specialty changes only through an explicit action, written to the
    admin's log, and a doctor of the old specialty loses the claim."""
    services.claim_question(question.pk, doctor)
    page = signed_in.get(reverse("admin:consultations_question_change", args=[question.pk])).content.decode()
    url = reverse("admin:consultations_question_specialty", args=[question.pk])
    assert f'href="{url}"' in page
    response = signed_in.post(url, {"specialty": other_specialty.pk})
    assert response.status_code == 302
    question.refresh_from_db()
    assert question.specialty == other_specialty and question.claimed_by is None
    entry = LogEntry.objects.get(object_id=str(question.pk), content_type__model="question")
    assert entry.user == staff and entry.action_flag == CHANGE
    assert "from Dermatology to Cardiology" in entry.change_message
    assert "Dr. Dana Derm is not of Cardiology" in entry.change_message
    assert question.title not in entry.object_repr


def test_moving_keeps_the_claim_of_a_doctor_of_both_specialties(signed_in, question, specialty, other_specialty):
    both = DoctorFactory(specialties=[specialty, other_specialty])
    services.claim_question(question.pk, both)
    signed_in.post(
        reverse("admin:consultations_question_specialty", args=[question.pk]), {"specialty": other_specialty.pk}
    )
    question.refresh_from_db()
    assert question.specialty == other_specialty and question.claimed_by == both


def test_moving_an_answered_question_is_refused_next_to_the_field(signed_in, question, other_specialty):
    question.status = QuestionStatus.ANSWERED
    question.save()
    url = reverse("admin:consultations_question_specialty", args=[question.pk])
    response = signed_in.post(url, {"specialty": other_specialty.pk})
    assert response.status_code == 200
    assert "Only a question still waiting for a doctor" in response.content.decode()
    question.refresh_from_db()
    assert question.specialty != other_specialty
    assert not LogEntry.objects.exists()


def test_moving_needs_the_change_permission_and_clinical_access(client, question, other_specialty):
    reader = UserFactory(email="reader@example.com", is_staff=True)
    reader.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_question", "view_medical_record"]),
    )
    client.force_login(reader)
    url = reverse("admin:consultations_question_specialty", args=[question.pk])
    assert client.post(url, {"specialty": other_specialty.pk}).status_code == 403
    question.refresh_from_db()
    assert question.specialty != other_specialty


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
    assert "1 question now belongs to Dr. Sena Senior." in messages_of(response)


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
    assert "1 question now belongs to Dr. Sena Senior." in shown
    assert "1 question was not open any more and was left as it is." in shown


def test_staff_without_the_reassign_permission_cannot_reassign(client, question, senior_doctor):
    clerk = UserFactory(email="clerk@example.com", is_staff=True)
    clerk.user_permissions.add(*Permission.objects.filter(codename__in=["view_question", "view_medical_record"]))
    client.force_login(clerk)
    url = reverse("admin:consultations_question_reassign", args=[question.pk])
    assert client.post(url, {"doctor": senior_doctor.pk}).status_code == 403
    changelist = client.get(reverse("admin:consultations_question_changelist"))
    assert "reassign_selected" not in changelist.content.decode()
    question.refresh_from_db()
    assert question.claimed_by is None


def test_an_sla_manager_without_the_medical_record_permission_cannot_open_the_admins_reassign_page(
    client, question, senior_doctor
):
    """The SLA dashboard's role (reassign, no patients' text) reassigns from the dashboard,
    which names questions by number. The admin's reassign page shows the question's title,
    like its change page, so it needs what that page needs: before, it showed any
    question's title to anyone allowed to reassign."""
    manager = UserFactory(email="sla.manager@example.com", is_staff=True)
    manager.user_permissions.add(*Permission.objects.filter(codename__in=["reassign_question", "view_sla_dashboard"]))
    client.force_login(manager)
    url = reverse("admin:consultations_question_reassign", args=[question.pk])
    assert client.get(reverse("admin:consultations_question_change", args=[question.pk])).status_code == 403

    page = client.get(url)
    post = client.post(url, {"doctor": senior_doctor.pk})

    assert (page.status_code, post.status_code) == (403, 403)
    assert "Itchy rash" not in page.content.decode()
    question.refresh_from_db()
    assert question.claimed_by is None
    # The dashboard's one-click reassign is theirs.
    client.post(reverse("staff:sla_reassign", args=[question.pk]), {"doctor": senior_doctor.pk})
    question.refresh_from_db()
    assert question.claimed_by == senior_doctor


def test_staff_reassign_from_the_doctors_workbench_too(signed_in, question, doctor, senior_doctor):
    services.claim_question(question.pk, doctor)
    page = signed_in.get(reverse("doctor_admin:consultations_question_change", args=[question.pk]))
    assert "Hand this question to" in page.content.decode()
    signed_in.post(
        reverse("doctor_admin:consultations_question_reassign", args=[question.pk]), {"doctor": senior_doctor.pk}
    )
    question.refresh_from_db()
    assert question.claimed_by == senior_doctor


@pytest.mark.parametrize("who", ["other_doctor", "unverified_doctor", "inactive_doctor"])
def test_the_reassign_service_refuses_a_doctor_who_may_not_have_the_question(question, request, who, mailoutbox):
    """Issue 11 item 3: checked in the service, so no view (present or future) can skip it."""
    if who == "inactive_doctor":
        chosen = DoctorFactory(specialties=[question.specialty], user__is_active=False)
    else:
        chosen = request.getfixturevalue(who)
    with pytest.raises(services.AssignmentRefused) as refused:
        services.reassign_question(question.pk, chosen)
    assert chosen.display_name in str(refused.value)
    question.refresh_from_db()
    assert question.claimed_by is None
    assert not Notification.objects.filter(kind="question_assigned").exists() and mailoutbox == []


def test_a_doctor_cannot_claim_a_question_outside_their_scope_even_through_the_service(question, other_doctor):
    """Issue 11 item 3: claiming is taking a question for oneself; the service keeps it to the doctor's specialties."""
    assert not services.claim_question(question.pk, other_doctor).ok
    question.refresh_from_db()
    assert question.claimed_by is None


def test_reassign_offers_only_verified_doctors_of_the_questions_specialty(
    signed_in, question, doctor, other_doctor, unverified_doctor
):
    """Issue 11 item 3: the list offered every doctor; a Dermatology question went to a gynaecologist."""
    page = signed_in.post(
        reverse("admin:consultations_question_changelist"),
        {"action": "reassign_selected", "_selected_action": [question.pk]},
    )
    offered = {doctor.pk for doctor in page.context["form"].fields["doctor"].queryset}
    assert offered == {doctor.pk}
    html = page.content.decode()
    assert other_doctor.display_name not in html and unverified_doctor.display_name not in html


@pytest.mark.parametrize("who", ["other_doctor", "unverified_doctor"])
def test_reassign_to_an_ineligible_doctor_is_refused_on_every_admin_path(signed_in, question, request, who):
    """Issue 11 item 3: the list action, the question's reassign page and the workbench's button."""
    chosen = request.getfixturevalue(who)
    changelist = reverse("admin:consultations_question_changelist")
    action = {"action": "reassign_selected", "_selected_action": [question.pk], "apply": "yes", "doctor": chosen.pk}
    page = signed_in.post(changelist, action)
    assert page.status_code == 200
    assert "Choose a verified doctor of the question" in page.content.decode()
    single = signed_in.post(reverse("admin:consultations_question_reassign", args=[question.pk]), {"doctor": chosen.pk})
    assert single.status_code == 200
    workbench = signed_in.post(
        reverse("doctor_admin:consultations_question_reassign", args=[question.pk]), {"doctor": chosen.pk}
    )
    assert "Choose a verified doctor of the question" in " ".join(messages_of(workbench))
    question.refresh_from_db()
    assert question.claimed_by is None


def test_questions_of_different_specialties_are_reassigned_one_specialty_at_a_time(
    signed_in, question, other_specialty, doctor
):
    cardiology = QuestionFactory(specialty=other_specialty, is_urgent=False)
    page = signed_in.post(
        reverse("admin:consultations_question_changelist"),
        {"action": "reassign_selected", "_selected_action": [question.pk, cardiology.pk]},
    )
    assert "select questions of one specialty at a time" in page.content.decode()


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


# --- Support staff (issue 11 item 2) ---------------------------------------------------------


def test_support_staff_see_the_outbox_without_what_the_emails_say(client, question, patient):
    """Issue 11 item 2: an e-mail's body quotes the patient's question; support staff who
    resend e-mails see who and when, not what."""
    mail = Notification.objects.create(
        to_email=patient.email,
        kind="question_received",
        subject="We received your question",
        body=f"You asked: {question.title}",
        question=question,
        dedupe_key="support-test",
    )
    support = UserFactory(email="support@example.com", is_staff=True)
    support.user_permissions.add(Permission.objects.get(codename="view_notification"))
    client.force_login(support)
    for url in (
        reverse("admin:consultations_notification_changelist"),
        reverse("admin:consultations_notification_change", args=[mail.pk]),
    ):
        html = client.get(url).content.decode()
        assert patient.email in html
        assert question.title not in html, url
    client.force_login(UserFactory(email="lead@example.com", is_staff=True, is_superuser=True))
    html = client.get(reverse("admin:consultations_notification_change", args=[mail.pk])).content.decode()
    assert question.title in html


# --- The question list ---------------------------------------------------------------------


def test_the_question_list_is_sorted_like_the_queue(signed_in, specialty, patient, doctor):
    """Issue 15: urgent running clocks first, then the clock that runs out first, then the
    questions without a running clock, newest first (it was newest submission first)."""
    answered_old = QuestionFactory(specialty=specialty, submitted_at=hours_ago(30), answered_after=timedelta(hours=1))
    answered_new = QuestionFactory(specialty=specialty, submitted_at=hours_ago(20), answered_after=timedelta(hours=1))
    due_late = QuestionFactory(specialty=specialty, submitted_at=hours_ago(0.5))
    due_soon = QuestionFactory(specialty=specialty, submitted_at=hours_ago(3))
    urgent = QuestionFactory(specialty=specialty, submitted_at=hours_ago(0.1), is_urgent=True)
    response = signed_in.get(reverse("admin:consultations_question_changelist"))
    assert [q.pk for q in response.context["cl"].result_list] == [
        urgent.pk,
        due_soon.pk,
        due_late.pk,
        answered_new.pk,
        answered_old.pk,
    ]


def test_the_question_list_has_few_columns_with_tags_in_the_title(signed_in, specialty, doctor):
    question = QuestionFactory(specialty=specialty, title="Chest tightness", is_urgent=True, is_follow_up=True)
    services.claim_question(question.pk, doctor)
    response = signed_in.get(reverse("admin:consultations_question_changelist"))
    html = response.content.decode()
    headers = [str(header["text"]) for header in result_headers(response.context["cl"])]
    assert headers[1:] == ["question", "specialty", "status", "time left", "doctor", "submitted at"]
    assert "Chest tightness" in html and "tag-urgent" in html and "tag-follow-up" in html
    assert "Dr. Dana Derm <small>(claimed)</small>" in html


def test_reassigning_several_says_how_many_in_plain_english(signed_in, specialty, senior_doctor):
    """Issue 15: "1 question(s)" pluralises properly."""
    first, second = QuestionFactory(specialty=specialty), QuestionFactory(specialty=specialty)
    selected = {"action": "reassign_selected", "_selected_action": [first.pk, second.pk]}
    response = signed_in.post(
        reverse("admin:consultations_question_changelist"),
        {**selected, "apply": "1", "doctor": senior_doctor.pk},
        follow=True,
    )
    assert "2 questions now belong to Dr. Sena Senior." in messages_of(response)
