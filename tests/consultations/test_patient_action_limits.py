"""A patient's actions on their question page are rate limited, kindly: follow-ups
(and replies to a doctor's request for information), ratings and closing. Over the
limit the page comes back with status 429, what the patient typed still in the
form, and nothing saved. Ratings may be changed, and the page says so."""

import html

import pytest
from django.conf import settings as project_settings
from django.urls import reverse
from django.utils import timezone

from consultations import services
from consultations.models import QuestionStatus, Reply, ReplyKind
from portal import ratelimit
from tests.factories import QuestionFactory

pytestmark = pytest.mark.django_db

HOUR = 3600


@pytest.fixture
def answered(patient, specialty, doctor):
    question = QuestionFactory(patient=patient, specialty=specialty, is_urgent=False)
    services.post_answer(question, doctor, "Stop the new soap for two weeks.")
    question.refresh_from_db()
    return question


@pytest.fixture
def patient_client(client, patient):
    client.force_login(patient)
    return client


@pytest.fixture
def limits(settings, patient):
    """Limits on, two of each per hour, this patient's counters fresh."""
    settings.RATELIMIT_ENABLED = True
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "follow_up": (2, HOUR), "rating": (2, HOUR), "close": (2, HOUR)}
    for scope in ("follow_up", "rating", "close"):
        ratelimit.reset(scope, f"user:{patient.pk}", HOUR)


def url(name, question):
    return reverse(f"consultations:{name}", args=[question.pk])


def test_every_patient_action_has_a_limit_by_default():
    """Issue 11 item 11: 40 follow-ups went through in 1.8 s."""
    for scope in ("follow_up", "rating", "close"):
        limit, period = project_settings.RATE_LIMITS[scope]
        assert 0 < limit <= 30 and period == HOUR


def test_follow_ups_over_the_limit_are_refused_and_the_text_is_kept(patient_client, answered, limits):
    """Issue 11 item 11: a friendly 429 that keeps what was typed, and nothing is sent."""
    for n in range(2):
        assert patient_client.post(url("follow_up", answered), {"body": f"Message {n}"}).status_code == 302
    typed = "It spread to my neck & shoulders overnight."
    response = patient_client.post(url("follow_up", answered), {"body": typed})
    assert response.status_code == 429
    page = html.unescape(response.content.decode())
    assert typed in page
    assert "2 times in 60 minutes" in page
    assert "Your message is still in the box below, not sent yet." in page
    assert Reply.objects.filter(question=answered, kind=ReplyKind.FOLLOW_UP).count() == 2


def test_replies_to_a_request_for_information_share_the_follow_up_limit(
    patient_client, patient, specialty, doctor, limits
):
    """Issue 11 item 11: info responses go through the same view and limit."""
    question = QuestionFactory(patient=patient, specialty=specialty, is_urgent=False)
    services.request_information(question, doctor, "Since when?")
    assert patient_client.post(url("follow_up", question), {"body": "Since Monday."}).status_code == 302
    services.request_information(question, doctor, "Any fever?")
    assert patient_client.post(url("follow_up", question), {"body": "No fever."}).status_code == 302
    services.request_information(question, doctor, "Any itching?")
    response = patient_client.post(url("follow_up", question), {"body": "Yes, at night."})
    assert response.status_code == 429
    question.refresh_from_db()
    assert question.status == QuestionStatus.INFO_REQUESTED


def test_ratings_over_the_limit_are_refused_and_the_comment_is_kept(patient_client, answered, limits):
    """Issue 11 item 11."""
    for rating in ("3", "4"):
        assert patient_client.post(url("rate", answered), {"rating": rating}).status_code == 302
    response = patient_client.post(url("rate", answered), {"rating": "1", "comment": "Changed my mind again"})
    assert response.status_code == 429
    page = response.content.decode()
    assert "Changed my mind again" in page
    assert "Your rating and comment are still below, not saved yet." in page
    answered.refresh_from_db()
    assert answered.rating == 4


def test_closing_over_the_limit_is_refused_kindly(patient_client, answered, limits):
    """Issue 11 item 11."""
    assert [patient_client.post(url("close", answered)).status_code for _ in range(2)] == [302, 302]
    response = patient_client.post(url("close", answered))
    assert response.status_code == 429
    assert "2 times in 60 minutes" in response.content.decode()


def test_limits_count_per_patient_not_per_question(patient_client, patient, specialty, doctor, answered, limits):
    other = QuestionFactory(patient=patient, specialty=specialty, is_urgent=False)
    services.post_answer(other, doctor, "Rest.")
    assert patient_client.post(url("follow_up", answered), {"body": "One"}).status_code == 302
    assert patient_client.post(url("follow_up", other), {"body": "Two"}).status_code == 302
    assert patient_client.post(url("follow_up", other), {"body": "Three"}).status_code == 429


def test_invalid_posts_are_answered_with_the_field_error_not_counted(patient_client, answered, limits):
    for _ in range(3):
        assert patient_client.post(url("follow_up", answered), {"body": "  "}).status_code == 200
    assert patient_client.post(url("follow_up", answered), {"body": "Now a real one"}).status_code == 302


# --- Changing a rating (Issue 11 item 11: no silent overwrite) -------------------------


def test_changing_a_rating_says_what_changed_and_the_page_shows_the_rating_on_record(patient_client, answered):
    """Issue 11 item 11: a rating may be changed; the patient is told, and sees which rating counts and since when."""
    patient_client.post(url("rate", answered), {"rating": "3", "comment": "Slow."})
    response = patient_client.post(url("rate", answered), {"rating": "5", "comment": "Helped a lot."}, follow=True)
    page = response.content.decode()
    assert "Your rating was changed from 3 to 5 out of 5." in page
    today = timezone.localtime(timezone.now()).strftime("%-d %b %Y")
    assert "You rated it <strong>5 out of 5</strong> on" in page
    assert today in page
    assert "saving again replaces it" in page
    assert ">Change rating</button>" in page
    answered.refresh_from_db()
    assert (answered.rating, answered.rating_comment) == (5, "Helped a lot.")


def test_first_rating_is_thanked_and_the_button_says_save(patient_client, answered):
    assert ">Save rating</button>" in patient_client.get(url("question_detail", answered)).content.decode()
    response = patient_client.post(url("rate", answered), {"rating": "4"}, follow=True)
    assert "Thank you for rating the answer." in response.content.decode()
