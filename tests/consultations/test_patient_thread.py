"""The patient's side of a consultation: reading the doctor's answer, rating it,
following up (back to the same doctor with a new clock) and closing."""

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from consultations import services
from consultations.models import Question, QuestionStatus, ReplyKind
from tests.factories import QuestionFactory
from tests.portal.sample_files import png_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def question(patient, specialty):
    return QuestionFactory(patient=patient, specialty=specialty, is_urgent=False, title="Rash after a new soap")


@pytest.fixture
def answered(question, doctor):
    doctor.qualifications = "MD, specialist in dermatology"
    doctor.photo.save("dana.png", ContentFile(png_bytes()), save=True)
    services.post_answer(question, doctor, "This looks like contact dermatitis.\nStop the new soap for two weeks.")
    question.refresh_from_db()
    return question


@pytest.fixture
def patient_client(client, patient):
    client.force_login(patient)
    return client


def detail_url(question):
    return reverse("consultations:question_detail", args=[question.pk])


def test_answer_shows_the_doctors_name_qualifications_photo_and_profile_link(patient_client, answered, doctor):
    html = patient_client.get(detail_url(answered)).content.decode()
    assert "Dr. Dana Derm" in html
    assert "MD, specialist in dermatology" in html
    assert f'href="{reverse("doctor_profile", args=[doctor.slug])}"' in html
    assert f'src="{doctor.photo.url}"' in html
    assert "This looks like contact dermatitis.<br>Stop the new soap for two weeks." in html
    # Issue 15: the "Answered" badge says it; no clock line repeats it.
    assert "status-answered" in html and 'data-state="answered"' not in html


def test_thread_is_shown_in_the_order_it_was_written(patient_client, answered, patient, doctor):
    services.post_follow_up(answered, patient, "Can I use a steroid cream meanwhile?")
    answered.refresh_from_db()
    services.post_answer(answered, doctor, "Yes, hydrocortisone 1% twice a day for up to a week.")
    html = patient_client.get(detail_url(answered)).content.decode()
    positions = [html.index(text) for text in ("contact dermatitis", "steroid cream meanwhile", "hydrocortisone 1%")]
    assert positions == sorted(positions)


def test_patient_rates_the_answer(patient_client, answered):
    response = patient_client.post(
        reverse("consultations:rate", args=[answered.pk]), {"rating": "4", "comment": "Clear and quick."}
    )
    assert response.status_code == 302
    answered.refresh_from_db()
    assert (answered.rating, answered.rating_comment) == (4, "Clear and quick.")
    assert answered.rated_at is not None
    assert "You rated it <strong>4 out of 5</strong>" in patient_client.get(detail_url(answered)).content.decode()


@pytest.mark.parametrize("rating", ["0", "6", "x", ""])
def test_rating_outside_one_to_five_is_refused_next_to_the_field(patient_client, answered, rating):
    response = patient_client.post(
        reverse("consultations:rate", args=[answered.pk]), {"rating": rating, "comment": "typed comment"}
    )
    assert response.status_code == 200
    assert response.context["rating_form"].errors["rating"]
    assert "typed comment</textarea>" in response.content.decode()
    answered.refresh_from_db()
    assert answered.rating is None


def test_unanswered_question_cannot_be_rated(patient_client, question):
    response = patient_client.post(reverse("consultations:rate", args=[question.pk]), {"rating": "5"}, follow=True)
    assert "once a doctor has answered" in response.content.decode()
    question.refresh_from_db()
    assert question.rating is None
    assert "Rate the answer" not in patient_client.get(detail_url(question)).content.decode()


def test_follow_up_goes_back_to_the_answering_doctor_with_a_new_clock(patient_client, answered, doctor):
    before = timezone.now()
    response = patient_client.post(
        reverse("consultations:follow_up", args=[answered.pk]), {"body": "The rash spread to my neck."}
    )
    assert response.status_code == 302
    question = Question.objects.get(pk=answered.pk)
    assert question.status == QuestionStatus.OPEN
    assert question.claimed_by == doctor
    assert question.is_follow_up
    assert before <= question.clock_started_at <= timezone.now()
    assert question.clock_due_at - question.clock_started_at == timedelta(hours=4)
    # The first answer's record is untouched.
    assert question.first_answered_at == answered.first_answered_at
    reply = question.replies.last()
    assert (reply.kind, reply.body) == (ReplyKind.FOLLOW_UP, "The rash spread to my neck.")
    html = patient_client.get(detail_url(question)).content.decode()
    assert 'data-state="running"' in html
    assert "answer due in 3 h 59 min" in html or "answer due in 4 h 0 min" in html


def test_reply_to_a_request_for_information_restarts_the_paused_clock(patient_client, question, doctor):
    services.request_information(question, doctor, "Does it itch more at night?")
    page = patient_client.get(detail_url(question)).content.decode()
    assert "Reply to the doctor" in page
    assert "waiting for your reply" in page
    patient_client.post(reverse("consultations:follow_up", args=[question.pk]), {"body": "Yes, mostly at night."})
    question.refresh_from_db()
    assert question.status == QuestionStatus.OPEN
    assert question.clock_paused_at is None
    assert question.clock_due_at > timezone.now()


def test_empty_follow_up_is_refused_next_to_the_field(patient_client, answered):
    response = patient_client.post(reverse("consultations:follow_up", args=[answered.pk]), {"body": "   "})
    assert response.status_code == 200
    assert "Write your message before sending it." in response.content.decode()
    answered.refresh_from_db()
    assert answered.status == QuestionStatus.ANSWERED
    assert answered.replies.count() == 1


def test_too_long_follow_up_is_refused_and_kept(patient_client, answered):
    body = "b" * 5001
    response = patient_client.post(reverse("consultations:follow_up", args=[answered.pk]), {"body": body})
    assert response.status_code == 200
    assert "at most 5000 characters" in response.content.decode()
    assert f">\n{body}</textarea>" in response.content.decode()


def test_follow_up_text_is_escaped_in_the_thread(patient_client, answered):
    patient_client.post(reverse("consultations:follow_up", args=[answered.pk]), {"body": "<script>alert('x')</script>"})
    html = patient_client.get(detail_url(answered)).content.decode()
    assert "<script>alert('x')</script>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html


def test_patient_closes_the_question(patient_client, answered):
    response = patient_client.post(reverse("consultations:close", args=[answered.pk]), follow=True)
    answered.refresh_from_db()
    assert answered.status == QuestionStatus.CLOSED
    assert answered.closed_at is not None
    html = response.content.decode()
    assert "Your question is closed" in html
    assert "Ask a follow-up question" not in html
    assert "Close the question" not in html
    # Rating stays possible after closing: the answer was given.
    assert "Rate the answer" in html


def test_closed_question_takes_no_follow_up(patient_client, answered):
    services.close_question(answered)
    response = patient_client.post(
        reverse("consultations:follow_up", args=[answered.pk]), {"body": "One more thing"}, follow=True
    )
    assert "This question is closed" in response.content.decode()
    answered.refresh_from_db()
    assert answered.status == QuestionStatus.CLOSED
    assert answered.replies.count() == 1


def test_closing_twice_says_it_was_already_closed(patient_client, question):
    services.close_question(question)
    response = patient_client.post(reverse("consultations:close", args=[question.pk]), follow=True)
    assert "already closed" in response.content.decode()
