"""Who may enter the doctors' workbench at /doctor/, and which questions they may touch.

Every forbidden path is tried the way an attacker would: by editing the id in
the URL or in the POST body.
"""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from consultations.models import AccessLog, Attachment, QuestionStatus, Reply
from tests.factories import PASSWORD, QuestionFactory

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
