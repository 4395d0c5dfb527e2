"""Claiming, answering and asking for more information on the doctors' workbench,
and follow-ups bringing a question back to the doctor who answered it."""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from consultations import services
from consultations.models import AccessLog, Notification, Question, QuestionStatus, Reply, ReplyKind
from tests.factories import QuestionFactory

pytestmark = pytest.mark.django_db

QUEUE = reverse("doctor_admin:consultations_question_changelist")


def workbench_url(view, *args):
    return reverse(f"doctor_admin:consultations_question_{view}", args=args)


def messages_of(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def question(specialty, patient):
    return QuestionFactory(
        specialty=specialty,
        patient=patient,
        title="Itchy rash on my arm",
        is_urgent=False,
        submitted_at=timezone.now() - timedelta(hours=1),
    )


@pytest.fixture
def signed_in(client, doctor):
    client.force_login(doctor.user)
    return client


# --- Claim and release ----------------------------------------------------------------


def test_claim_and_release_from_the_question_page(signed_in, doctor, question):
    response = signed_in.post(workbench_url("claim", question.pk))
    assert response.status_code == 302 and response.url == workbench_url("change", question.pk)
    question.refresh_from_db()
    assert question.claimed_by == doctor and question.claimed_at is not None

    signed_in.post(workbench_url("release", question.pk))
    question.refresh_from_db()
    assert question.claimed_by is None and question.claimed_at is None


def test_claim_from_the_list_returns_to_the_same_filtered_list(signed_in, doctor, question):
    back_to = QUEUE + "?claim=unclaimed"
    response = signed_in.post(workbench_url("claim", question.pk), {"next": back_to})
    assert response.url == back_to
    question.refresh_from_db()
    assert question.claimed_by == doctor


def test_claim_ignores_a_next_address_on_another_site(signed_in, question):
    response = signed_in.post(workbench_url("claim", question.pk), {"next": "https://evil.example/"})
    assert response.url == workbench_url("change", question.pk)


def test_loser_of_a_claim_is_told_who_holds_the_question(client, doctor, senior_doctor, question):
    services.claim_question(question.pk, doctor)
    client.force_login(senior_doctor.user)
    response = client.post(workbench_url("claim", question.pk))
    assert "Dr. Dana Derm has already claimed this question." in messages_of(response)
    question.refresh_from_db()
    assert question.claimed_by == doctor


def test_only_the_holder_can_release(client, doctor, senior_doctor, question):
    services.claim_question(question.pk, doctor)
    client.force_login(senior_doctor.user)
    response = client.post(workbench_url("release", question.pk))
    assert "You do not hold this question" in messages_of(response)[0]
    question.refresh_from_db()
    assert question.claimed_by == doctor


def test_claim_and_release_as_list_actions(signed_in, doctor, senior_doctor, specialty, question):
    taken = QuestionFactory(specialty=specialty, is_urgent=False, claimed_by=senior_doctor, title="Taken")
    response = signed_in.post(QUEUE, {"action": "claim_selected", "_selected_action": [question.pk, taken.pk]})
    shown = messages_of(response)
    assert "You claimed 1 question." in shown
    assert "“Taken”: Dr. Sena Senior has already claimed this question." in shown
    question.refresh_from_db()
    taken.refresh_from_db()
    assert question.claimed_by == doctor and taken.claimed_by == senior_doctor

    signed_in.post(QUEUE, {"action": "release_selected", "_selected_action": [question.pk, taken.pk]})
    question.refresh_from_db()
    taken.refresh_from_db()
    assert question.claimed_by is None and taken.claimed_by == senior_doctor


# --- The question page ----------------------------------------------------------------------


def test_question_page_shows_the_case_read_only(signed_in, question, patient):
    question.medical_history = "Eczema as a child."
    question.current_medication = "Cetirizine 10 mg"
    question.save()
    html = signed_in.get(workbench_url("change", question.pk)).content.decode()
    assert patient.patient_label in html
    assert "A red, itchy rash on my forearm" in html
    assert "Eczema as a child." in html and "Cetirizine 10 mg" in html
    assert "Send answer" in html and "Ask for more information" in html
    for editable in ('name="title"', 'name="description"', 'name="age"', 'name="medical_history"'):
        assert editable not in html


def test_posting_patient_fields_changes_nothing(signed_in, question):
    signed_in.post(
        workbench_url("change", question.pk),
        {"title": "Changed", "description": "Changed", "age": 99, "body": "Apply the cream.", "intent": "answer"},
    )
    question.refresh_from_db()
    assert question.title == "Itchy rash on my arm" and question.age == 34


def test_urgent_question_shows_the_red_flag_banner(signed_in, specialty):
    urgent = QuestionFactory(specialty=specialty, is_urgent=True, red_flags=["chest pain"])
    html = signed_in.get(workbench_url("change", urgent.pk)).content.decode()
    assert "Urgent: possible emergency." in html and "chest pain" in html


def test_thread_shows_the_doctor_by_name_and_the_patient_by_code(signed_in, doctor, patient, question):
    services.request_information(question, doctor, "Does it itch more at night?")
    services.post_follow_up(question, patient, "Yes, mostly at night.")
    html = signed_in.get(workbench_url("change", question.pk)).content.decode()
    assert "Dr. Dana Derm</strong>" in html and "Does it itch more at night?" in html
    assert f"{patient.patient_label}</strong>" in html and "Yes, mostly at night." in html


def test_opening_a_question_is_written_to_the_access_log(signed_in, doctor, question):
    signed_in.get(workbench_url("change", question.pk))
    log = AccessLog.objects.get(question=question)
    assert log.user == doctor.user and log.action == "view" and log.ip_address == "127.0.0.1"


def test_question_held_by_someone_else_offers_no_reply_box(client, senior_doctor, doctor, question):
    services.claim_question(question.pk, senior_doctor)
    client.force_login(doctor.user)
    html = client.get(workbench_url("change", question.pk)).content.decode()
    assert "Dr. Sena Senior has claimed this question" in html
    assert "Send answer" not in html


# --- Answering ----------------------------------------------------------------------------------


def test_sending_an_answer_stops_the_clock_leaves_the_queue_and_emails_the_patient(
    signed_in, doctor, patient, question, django_capture_on_commit_callbacks
):
    services.claim_question(question.pk, doctor)
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(
            workbench_url("change", question.pk), {"body": "Use a fragrance-free emollient.", "intent": "answer"}
        )
    assert response.status_code == 302 and response.url == QUEUE

    question.refresh_from_db()
    assert question.status == QuestionStatus.ANSWERED
    assert question.first_answered_at is not None and question.answered_by == doctor
    assert question.clock_due_at is None
    reply = Reply.objects.get(question=question)
    assert reply.kind == ReplyKind.ANSWER and reply.doctor == doctor
    assert [m.to for m in mail.outbox] == [[patient.email]]
    assert Notification.objects.filter(question=question, kind="answer_posted").exists()
    assert AccessLog.objects.filter(question=question, action="answer").exists()
    assert list(signed_in.get(QUEUE).context["cl"].result_list) == []


def test_answering_an_unclaimed_question_claims_it_first(signed_in, doctor, question):
    signed_in.post(workbench_url("change", question.pk), {"body": "Keep it dry.", "intent": "answer"})
    question.refresh_from_db()
    assert question.claimed_by == doctor and question.status == QuestionStatus.ANSWERED


def test_answer_is_refused_when_another_doctor_holds_the_question_and_the_text_is_kept(
    client, doctor, senior_doctor, question
):
    services.claim_question(question.pk, senior_doctor)
    client.force_login(doctor.user)
    response = client.post(
        workbench_url("change", question.pk), {"body": "My carefully written answer.", "intent": "answer"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Dr. Sena Senior has already claimed this question." in html
    assert "My carefully written answer." in html
    assert not Reply.objects.filter(question=question).exists()


def test_an_empty_reply_is_refused_next_to_the_box(signed_in, question):
    response = signed_in.post(workbench_url("change", question.pk), {"body": "   ", "intent": "answer"})
    assert response.status_code == 200
    assert "Write your reply before sending it." in response.content.decode()
    assert not Reply.objects.filter(question=question).exists()


def test_asking_for_more_information_is_its_own_reply_kind_and_pauses_the_clock(
    signed_in, doctor, patient, question, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        signed_in.post(workbench_url("change", question.pk), {"body": "Any new soap or detergent?", "intent": "info"})
    question.refresh_from_db()
    assert question.status == QuestionStatus.INFO_REQUESTED
    assert question.clock_paused_at is not None and question.first_answered_at is None
    assert Reply.objects.get(question=question).kind == ReplyKind.INFO_REQUEST
    assert [m.to for m in mail.outbox] == [[patient.email]]


def test_patient_reply_to_a_request_for_information_puts_it_back_in_the_queue(signed_in, doctor, patient, question):
    services.request_information(question, doctor, "Any fever?")
    services.post_follow_up(question, patient, "No fever.")
    question.refresh_from_db()
    assert question.status == QuestionStatus.OPEN and question.claimed_by == doctor
    assert list(signed_in.get(QUEUE + "?claim=mine").context["cl"].result_list) == [question]


def test_follow_up_returns_the_question_to_the_answering_doctor_with_a_new_clock(signed_in, doctor, patient, question):
    services.reply_as_doctor(question.pk, doctor, "Use the cream for two weeks.")
    services.release_claim(question.pk, doctor)
    services.post_follow_up(question, patient, "Should I keep using it after the rash is gone?")

    question.refresh_from_db()
    assert question.status == QuestionStatus.OPEN and question.is_follow_up
    assert question.claimed_by == doctor
    assert question.clock_due_at - question.clock_started_at == timedelta(hours=4)
    response = signed_in.get(QUEUE + "?claim=mine")
    assert list(response.context["cl"].result_list) == [question]
    assert "Follow-up" in response.content.decode()


# --- The rule behind the reply box ------------------------------------------------------------------


def test_reply_as_doctor_refuses_and_names_the_holder(doctor, senior_doctor, question):
    services.claim_question(question.pk, senior_doctor)
    result = services.reply_as_doctor(question.pk, doctor, "An answer.")
    assert not result.ok and result.holder == senior_doctor
    assert result.refusal == "Dr. Sena Senior has already claimed this question."
    assert not Reply.objects.exists()


def test_reply_as_doctor_refuses_a_question_no_longer_open(doctor, senior_doctor, question):
    services.reply_as_doctor(question.pk, senior_doctor, "First answer.")
    services.release_claim(question.pk, senior_doctor)
    result = services.reply_as_doctor(question.pk, doctor, "Second answer.")
    assert not result.ok and result.refusal == "This question is no longer open."
    assert Reply.objects.count() == 1


def test_reply_as_doctor_keeps_the_original_claim_time_for_the_holder(doctor, question):
    claimed_at = timezone.now() - timedelta(minutes=20)
    services.claim_question(question.pk, doctor, now=claimed_at)
    services.reply_as_doctor(question.pk, doctor, "An answer.")
    assert Question.objects.get(pk=question.pk).claimed_at == claimed_at


def test_reply_as_doctor_needs_text(doctor, question):
    with pytest.raises(ValueError):
        services.reply_as_doctor(question.pk, doctor, "  ")
