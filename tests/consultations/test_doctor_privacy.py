"""Doctors never see a patient's name or e-mail: every page of the doctors'
workbench is rendered for a question full of the patient's traces and searched."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from consultations import services
from consultations.models import Attachment, Escalation, EscalationLevel
from tests.factories import QuestionFactory, UserFactory

pytestmark = pytest.mark.django_db

QUEUE = reverse("doctor_admin:consultations_question_changelist")


def workbench_url(view, *args):
    return reverse(f"doctor_admin:consultations_question_{view}", args=args)


@pytest.fixture
def patient(db):
    """A name and address distinctive enough that any trace of them on a page is a leak."""
    return UserFactory(email="paula.quintana77@example.org", full_name="Paula Quintana-Marsh", age=34, sex="female")


@pytest.fixture
def case(specialty, patient, senior_doctor):
    """A question with everything that could leak: files named after the patient,
    a thread, a follow-up, an escalation, a question answered earlier."""
    question = QuestionFactory(
        specialty=specialty,
        patient=patient,
        title="Itchy rash on my arm",
        is_urgent=False,
        submitted_at=timezone.now() - timedelta(hours=3, minutes=30),
    )
    Attachment.objects.create(
        question=question,
        file=SimpleUploadedFile("upload.jpg", b"\xff\xd8\xff\xe0 photo bytes"),
        original_name=f"{patient.full_name} rash photo.jpg",
        content_type="image/jpeg",
        size=20,
    )
    Attachment.objects.create(
        question=question,
        file=SimpleUploadedFile("upload.pdf", b"%PDF-1.4 lab results"),
        original_name=f"{patient.email}-results.pdf",
        content_type="application/pdf",
        size=20,
    )
    services.request_information(question, senior_doctor, "How long have you had it?")
    services.post_follow_up(question, patient, "About a week.")
    Escalation.objects.create(
        question=question,
        level=EscalationLevel.AT_RISK,
        clock_due_at=question.due_at,
        recipients=[senior_doctor.user.email],
    )
    answered = QuestionFactory(specialty=specialty, patient=patient, title="Earlier question", is_urgent=False)
    services.post_answer(answered, senior_doctor, "Earlier answer.")
    return question


def forbidden_traces(patient):
    return [patient.full_name, patient.full_name.split()[0], patient.email, patient.email.split("@")[0]]


def assert_private(response, patient):
    assert response.status_code == 200, response.status_code
    html = response.content.decode()
    for trace in forbidden_traces(patient):
        assert trace.lower() not in html.lower(), f"{trace!r} appears on {response.request['PATH_INFO']}"
    return html


def workbench_pages(question):
    return [
        QUEUE,
        QUEUE + "?q=rash",
        QUEUE + "?q=Quintana",
        QUEUE + "?claim=unclaimed",
        QUEUE + "?claim=mine",
        QUEUE + "?claim=others",
        QUEUE + "?sla=at_risk",
        QUEUE + "?sla=on_track",
        QUEUE + "?sla=breached",
        QUEUE + "?sla=paused",
        QUEUE + f"?specialty={question.specialty_id}",
        QUEUE + "?show=answered",
        QUEUE + "?show=all",
        workbench_url("change", question.pk),
        workbench_url("history", question.pk),
    ]


def test_no_workbench_page_shows_the_patients_name_or_email(client, doctor, patient, case):
    client.force_login(doctor.user)
    for url in workbench_pages(case):
        assert_private(client.get(url), patient)

    # The pages every action lands on, messages included.
    assert_private(client.post(workbench_url("claim", case.pk), follow=True), patient)
    assert_private(client.post(workbench_url("release", case.pk), follow=True), patient)
    assert_private(
        client.post(QUEUE, {"action": "claim_selected", "_selected_action": [case.pk]}, follow=True), patient
    )
    assert_private(client.post(workbench_url("change", case.pk), {"body": "", "intent": "answer"}), patient)
    assert_private(
        client.post(workbench_url("change", case.pk), {"body": "Please send a photo.", "intent": "info"}, follow=True),
        patient,
    )


def test_the_question_page_shows_the_patient_as_a_code_and_files_by_neutral_names(client, doctor, patient, case):
    client.force_login(doctor.user)
    html = assert_private(client.get(workbench_url("change", case.pk)), patient)
    assert patient.patient_label in html
    for attachment in case.attachments.all():
        assert attachment.neutral_name in html
        assert reverse("consultations:attachment", args=[attachment.pk]) in html
        assert attachment.original_name not in html


def test_a_doctors_download_is_named_neutrally(client, doctor, patient, case):
    client.force_login(doctor.user)
    for attachment in case.attachments.all():
        response = client.get(reverse("consultations:attachment", args=[attachment.pk]))
        assert response.status_code == 200
        disposition = response["Content-Disposition"]
        assert attachment.neutral_name in disposition
        assert all(trace.lower() not in disposition.lower() for trace in forbidden_traces(patient))


def test_staff_on_the_workbench_see_no_names_either(client, staff, patient, case):
    client.force_login(staff)
    for url in workbench_pages(case):
        assert_private(client.get(url), patient)


def test_the_timeline_tells_what_happened_without_names(client, doctor, patient, case):
    client.force_login(doctor.user)
    html = assert_private(client.get(workbench_url("history", case.pk)), patient)
    assert f"{patient.patient_label} asked the question." in html
    assert "Dr. Sena Senior asked for more information." in html
    assert f"{patient.patient_label} wrote a follow-up." in html
    assert "Escalation: At risk." in html
