"""A doctor taken off a specialty, unverified or deactivated keeps no patient thread of it
(security review 3, finding A): their open claims go back to the queue with the clock as
it was, a follow-up on their old answer goes to the specialty's doctors instead of them,
and they can post nothing more there. Their own answered threads stay readable."""

from datetime import UTC, datetime, timedelta

import pytest
from django.http import Http404
from django.urls import reverse

from consultations import access, services
from consultations.models import DoctorProfile, Notification, Question, QuestionStatus, ReplyKind
from tests.factories import DoctorFactory, QuestionFactory, UserFactory

pytestmark = pytest.mark.django_db

# A Monday, 10:02 UTC (as in the new-work tests).
NOW = datetime(2026, 1, 5, 10, 2, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.NEW_WORK_EMAIL_MINUTES = 15


@pytest.fixture
def colleague(specialty):
    return DoctorFactory(
        user=UserFactory(email="colleague@example.com"), specialties=[specialty], on_duty_until=NOW + timedelta(days=1)
    )


def clock(question):
    question.refresh_from_db()
    return (question.due_at, question.clock_warn_at, question.clock_due_at, question.clock_paused_at)


def claimed(doctor, specialty, patient, title="Mole changing colour"):
    question = QuestionFactory(specialty=specialty, patient=patient, title=title)
    assert services.claim_question(question.pk, doctor).ok
    return question


def answered(doctor, specialty, patient, title="Old eczema question"):
    question = QuestionFactory(specialty=specialty, patient=patient, title=title)
    assert services.reply_as_doctor(question.pk, doctor, "Use emollients.", now=NOW - timedelta(days=1)).ok
    return question


@pytest.mark.parametrize(
    "leave",
    [
        pytest.param(lambda doctor, other: doctor.specialties.set([other]), id="specialties-set"),
        pytest.param(lambda doctor, other: doctor.specialties.remove(*doctor.specialties.all()), id="remove"),
        pytest.param(lambda doctor, other: doctor.specialties.clear(), id="clear"),
    ],
)
def test_leaving_a_specialty_puts_its_claimed_questions_back_in_the_queue(
    leave, specialty, other_specialty, doctor, colleague, patient
):
    question = claimed(doctor, specialty, patient)
    before = clock(question)

    leave(doctor, other_specialty)

    question.refresh_from_db()
    assert question.claimed_by_id is None and question.claimed_at is None
    assert question.status == QuestionStatus.OPEN
    assert clock(question) == before  # the patient's guarantee runs on unchanged
    with pytest.raises(Http404):
        access.question_for(doctor.user, question.pk)
    assert services.claim_question(question.pk, colleague).ok


def test_a_claim_in_a_specialty_the_doctor_keeps_stays(specialty, other_specialty, doctor, patient):
    kept = claimed(doctor, specialty, patient)
    doctor.specialties.add(other_specialty)
    cardio = claimed(doctor, other_specialty, patient, title="Palpitations")

    doctor.specialties.remove(other_specialty)

    kept.refresh_from_db()
    cardio.refresh_from_db()
    assert kept.claimed_by_id == doctor.pk
    assert cardio.claimed_by_id is None


@pytest.mark.parametrize(
    "lose",
    [
        pytest.param("unverified", id="unverified"),
        pytest.param("deactivated", id="deactivated"),
    ],
)
def test_losing_verification_or_the_account_releases_every_claim(lose, specialty, doctor, colleague, patient):
    question = claimed(doctor, specialty, patient)
    held_answer = answered(doctor, specialty, patient)  # the answer leaves them holding it
    before = clock(question)

    if lose == "unverified":
        doctor.is_verified = False
        doctor.save()
    else:
        doctor.user.is_active = False
        doctor.user.save()

    assert not Question.objects.filter(claimed_by=doctor, status__in=services.OPEN_STATUSES).exists()
    assert clock(question) == before
    # An answered question is no open claim: it stays theirs until a follow-up, which the
    # handover then gives to the specialty instead (tested below).
    held_answer.refresh_from_db()
    assert held_answer.status == QuestionStatus.ANSWERED and held_answer.answered_by_id == doctor.pk
    assert services.claim_question(question.pk, colleague).ok


def test_the_release_rule_catches_a_bulk_update_that_sends_no_signal(specialty, doctor, patient):
    """A queryset .update() sends no signal: the admin's verify/unverify actions call the rule."""
    question = claimed(doctor, specialty, patient)
    DoctorProfile.objects.filter(pk=doctor.pk).update(is_verified=False)
    doctor.refresh_from_db()

    assert services.release_claims_doctor_may_not_hold(doctor) == 1

    question.refresh_from_db()
    assert question.claimed_by_id is None


def test_a_follow_up_on_an_answer_of_a_doctor_who_left_goes_to_the_specialty(
    specialty, other_specialty, doctor, colleague, patient
):
    question = answered(doctor, specialty, patient)
    doctor.specialties.set([other_specialty])

    services.post_follow_up(question, patient, "It came back", now=NOW)

    question.refresh_from_db()
    assert question.status == QuestionStatus.OPEN
    assert question.claimed_by_id is None
    assert question.clock_due_at is not None  # the follow-up's own window runs
    # Not e-mailed to the doctor who left; the specialty's doctors on duty hear of it.
    recipients = set(Notification.objects.filter(question=question).values_list("to_email", flat=True))
    assert "doctor@example.com" not in recipients
    assert "colleague@example.com" in recipients
    assert services.claim_question(question.pk, colleague).ok


def test_a_follow_up_for_an_unverified_doctor_is_not_stuck_with_them(specialty, doctor, colleague, patient):
    question = answered(doctor, specialty, patient)
    # Bypass the signal, as a bulk update would: the handover must check on its own.
    DoctorProfile.objects.filter(pk=doctor.pk).update(is_verified=False)

    services.post_follow_up(question, patient, "It came back", now=NOW)

    question.refresh_from_db()
    assert question.claimed_by_id is None
    assert services.claim_question(question.pk, colleague).ok


def test_a_follow_up_still_goes_to_the_doctor_who_answered_when_they_may_take_it(specialty, doctor, patient):
    question = answered(doctor, specialty, patient)
    services.post_follow_up(question, patient, "It came back", now=NOW)
    question.refresh_from_db()
    assert question.claimed_by_id == doctor.pk and question.status == QuestionStatus.OPEN


def test_a_doctor_who_left_reads_their_own_answered_thread_but_cannot_answer_again(
    client, specialty, other_specialty, doctor, patient
):
    question = answered(doctor, specialty, patient)
    doctor.specialties.set([other_specialty])
    services.post_follow_up(question, patient, "It came back", now=NOW)

    client.force_login(doctor.user)
    url = reverse("doctor_admin:consultations_question_change", args=[question.pk])
    page = client.get(url)
    assert page.status_code == 200 and "Old eczema question" in page.content.decode()
    assert not page.context["can_claim"] and not page.context["can_reply"]

    client.post(url, {"body": "It is fine.", "intent": "answer"})
    assert not services.claim_question(question.pk, doctor).ok
    question.refresh_from_db()
    assert question.claimed_by_id is None and question.status == QuestionStatus.OPEN
    assert question.replies.filter(kind=ReplyKind.ANSWER).count() == 1


def test_a_holder_who_may_no_longer_take_the_question_cannot_reply(specialty, other_specialty, doctor, patient):
    """Even if a claim survived (a path that sent no signal), the reply itself is refused."""
    question = claimed(doctor, specialty, patient)
    DoctorProfile.specialties.through.objects.filter(doctorprofile=doctor).update(specialty=other_specialty)

    result = services.reply_as_doctor(question.pk, doctor, "It is fine.")

    assert not result.ok
    assert question.replies.count() == 0
