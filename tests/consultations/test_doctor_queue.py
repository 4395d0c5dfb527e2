"""The doctors' queue: what it lists, in which order, its filters, and its cost."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from consultations import queue, services, sla
from consultations.doctor_admin import CappedCountPaginator, describe_time_left
from consultations.models import Question, QuestionStatus
from tests.factories import DoctorFactory, QuestionFactory, UserFactory

pytestmark = pytest.mark.django_db

QUEUE = reverse("doctor_admin:consultations_question_changelist")


def ask(specialty, *, hours_ago=0.0, **kwargs):
    """An open question whose clock started `hours_ago` (4-hour window, warning at 3 h)."""
    kwargs.setdefault("is_urgent", False)
    return QuestionFactory(specialty=specialty, submitted_at=timezone.now() - timedelta(hours=hours_ago), **kwargs)


def answered(specialty, **kwargs):
    """An answered question: its clock stopped (built by hand: the factory's answered_after is ignored)."""
    question = ask(specialty, hours_ago=2, **kwargs)
    Question.objects.filter(pk=question.pk).update(
        status=QuestionStatus.ANSWERED,
        first_answered_at=question.submitted_at + timedelta(hours=1),
        clock_started_at=None,
        clock_warn_at=None,
        clock_due_at=None,
    )
    return Question.objects.get(pk=question.pk)


def listed(client, query=""):
    response = client.get(QUEUE + query)
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


@pytest.fixture
def signed_in(client, doctor):
    client.force_login(doctor.user)
    return client


# --- What is listed, and in which order ------------------------------------------------


def test_queue_lists_open_questions_of_my_specialties_urgent_first_then_soonest_due(
    signed_in, specialty, other_specialty
):
    later = ask(specialty, hours_ago=0.5, title="Later")
    sooner = ask(specialty, hours_ago=2, title="Sooner")
    urgent = ask(specialty, hours_ago=0, title="Urgent one", is_urgent=True)
    answered(specialty, title="Answered")
    ask(other_specialty, hours_ago=3, title="Heart question")

    assert listed(signed_in) == [urgent, sooner, later]


def test_questions_waiting_for_the_patient_stay_in_the_queue_marked_as_such(signed_in, specialty, doctor):
    question = ask(specialty, hours_ago=1)
    services.request_information(question, doctor, "Does it itch at night?")

    response = signed_in.get(QUEUE)
    assert list(response.context["cl"].result_list) == [question]
    assert "Waiting for the patient" in response.content.decode()


def test_questions_claimed_by_me_in_another_specialty_are_in_my_queue(signed_in, other_specialty, doctor):
    reassigned = ask(other_specialty, claimed_by=doctor)
    assert listed(signed_in) == [reassigned]


def test_answered_and_closed_questions_are_one_filter_away(signed_in, specialty):
    done = answered(specialty)
    closed = ask(specialty, status=QuestionStatus.CLOSED)
    assert listed(signed_in) == []
    assert listed(signed_in, "?show=answered") == [done]
    assert listed(signed_in, "?show=closed") == [closed]
    assert set(listed(signed_in, "?show=all")) == {done, closed}


def test_follow_up_is_marked_in_the_queue(signed_in, specialty, doctor, patient):
    question = ask(specialty, patient=patient)
    services.post_answer(question, doctor, "Try an emollient twice a day.")
    services.post_follow_up(question, patient, "It is not better after a week.")

    response = signed_in.get(QUEUE)
    assert list(response.context["cl"].result_list) == [question]
    assert "Follow-up" in response.content.decode()


# --- Filters ---------------------------------------------------------------------------


def test_claim_filters(signed_in, specialty, doctor, senior_doctor):
    mine = ask(specialty, claimed_by=doctor)
    theirs = ask(specialty, claimed_by=senior_doctor)
    free = ask(specialty)
    assert listed(signed_in, "?claim=unclaimed") == [free]
    assert listed(signed_in, "?claim=mine") == [mine]
    assert listed(signed_in, "?claim=others") == [theirs]


def test_specialty_filter_offers_only_my_specialties(signed_in, specialty, other_specialty, doctor):
    dermatology = ask(specialty)
    response = signed_in.get(QUEUE)
    filter_html = response.content.decode().split('id="changelist-filter"')[1]
    assert "Dermatology" in filter_html and "Cardiology" not in filter_html
    assert listed(signed_in, f"?specialty={specialty.pk}") == [dermatology]
    assert listed(signed_in, f"?specialty={other_specialty.pk}") == []


def test_search_by_title(signed_in, specialty):
    rash = ask(specialty, title="Rash after a new soap")
    ask(specialty, title="Dry skin in winter")
    assert listed(signed_in, "?q=soap") == [rash]


def test_sla_filter_matches_the_state_shown_in_each_row(signed_in, specialty, doctor):
    on_track = ask(specialty, hours_ago=1)
    at_risk = ask(specialty, hours_ago=3.5)
    breached = ask(specialty, hours_ago=5)
    paused = ask(specialty, hours_ago=1)
    services.request_information(paused, doctor, "Any fever?")
    expected = {sla.ON_TRACK: on_track, sla.AT_RISK: at_risk, sla.BREACHED: breached, sla.PAUSED: paused}

    now = timezone.now()
    for state, question in expected.items():
        rows = listed(signed_in, f"?sla={state}")
        assert rows == [question], state
        assert all(sla.sla_state(row, now) == state for row in rows)


def test_unknown_filter_values_are_ignored_not_errors(signed_in, specialty):
    question = ask(specialty)
    assert listed(signed_in, "?sla=purple&claim=whatever&specialty=abc") == [question]


# --- The header and the cells -------------------------------------------------------------


def test_queue_counts_cover_open_questions_only(specialty, doctor, senior_doctor):
    ask(specialty, hours_ago=1, claimed_by=doctor)
    ask(specialty, hours_ago=3.5, is_urgent=False)
    ask(specialty, hours_ago=0.1, is_urgent=True, claimed_by=senior_doctor)
    ask(specialty, hours_ago=6)
    answered(specialty)

    counts = queue.queue_counts(Question.objects.all(), doctor, timezone.now())

    assert counts == {
        "total": 4,
        sla.ON_TRACK: 2,
        sla.AT_RISK: 1,
        sla.BREACHED: 1,
        sla.PAUSED: 0,
        "unclaimed": 2,
        "mine": 1,
        "follow_ups": 0,
        "urgent": 1,
    }


def test_queue_header_shows_the_counts_as_links_to_the_filters(signed_in, specialty):
    ask(specialty, hours_ago=5)
    html = signed_in.get(QUEUE).content.decode()
    assert 'href="?sla=breached"><span class="count-number" data-count="breached">1</span> Breached' in html


def test_time_left_is_written_in_words_as_well_as_colour(signed_in, specialty):
    ask(specialty, hours_ago=3.5)
    ask(specialty, hours_ago=5)
    html = signed_in.get(QUEUE).content.decode()
    assert 'class="sla-badge sla-at_risk">At risk</span>' in html
    assert 'class="sla-badge sla-breached">Breached</span>' in html
    assert "overdue by 1 h" in html


def test_rows_offer_claim_or_release_as_fits(signed_in, specialty, doctor, senior_doctor):
    free = ask(specialty)
    mine = ask(specialty, claimed_by=doctor)
    theirs = ask(specialty, claimed_by=senior_doctor)
    html = signed_in.get(QUEUE).content.decode()
    claim = reverse("doctor_admin:consultations_question_claim", args=[free.pk])
    release = reverse("doctor_admin:consultations_question_release", args=[mine.pk])
    assert f'formaction="{claim}"' in html
    assert f'formaction="{release}"' in html
    assert "Dr. Sena Senior" in html
    assert reverse("doctor_admin:consultations_question_claim", args=[theirs.pk]) not in html


def test_describe_time_left():
    assert describe_time_left(timedelta(hours=2, minutes=5)) == "2 h 05 min left"
    assert describe_time_left(timedelta(minutes=42, seconds=30)) == "42 min left"
    assert describe_time_left(timedelta(minutes=-75)) == "overdue by 1 h 15 min"
    assert describe_time_left(None) == ""


# --- Cost ---------------------------------------------------------------------------------


def _queue_queries(client):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(QUEUE)
    assert response.status_code == 200
    return len(captured), [q["sql"] for q in captured.captured_queries], response


def test_queue_costs_the_same_number_of_queries_for_5_and_50_questions(signed_in, specialty, doctor, senior_doctor):
    def fill(count):
        for n in range(count):
            ask(
                specialty,
                hours_ago=n % 6,
                is_urgent=n % 7 == 0,
                claimed_by=[None, doctor, senior_doctor][n % 3],
                patient=UserFactory(),
            )

    fill(5)
    # The session's idle end is written at most once a minute: the first request pays for it.
    _queue_queries(signed_in)
    five, _, response = _queue_queries(signed_in)
    assert len(response.context["cl"].result_list) == 5
    fill(45)
    fifty, _, response = _queue_queries(signed_in)
    assert len(response.context["cl"].result_list) == 50
    assert five == fifty


def test_queue_never_counts_the_whole_table(signed_in, specialty):
    ask(specialty)
    _, sqls, _ = _queue_queries(signed_in)
    counting = [sql for sql in sqls if "COUNT(" in sql.upper()]
    assert counting, "the queue shows counts, so some query counts"
    for sql in counting:
        assert "LIMIT" in sql.upper() or "status" in sql, sql


def test_capped_paginator_stops_counting_at_its_cap(specialty):
    for _ in range(5):
        ask(specialty)
    paginator = CappedCountPaginator(Question.objects.order_by("pk"), 2)
    paginator.cap = 3
    assert paginator.count == 3
    assert paginator.capped is True
    assert paginator.num_pages == 2


def test_a_doctor_with_many_specialties_sees_each_question_once(client, specialty, other_specialty):
    both = DoctorFactory(specialties=[specialty, other_specialty])
    question = ask(specialty, claimed_by=both, answered_by=both)
    client.force_login(both.user)
    assert listed(client) == [question]
