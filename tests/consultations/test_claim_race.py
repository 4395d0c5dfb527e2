"""Two doctors pressing "Claim" (or "Send answer") at the same moment, on two
real PostgreSQL connections: exactly one wins and the other is told who did."""

import threading

import pytest
from django.db import connection, connections

from consultations import services
from consultations.models import Question, Reply
from tests.factories import DoctorFactory, QuestionFactory, UserFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL: SQLite serialises all writers, so two connections never race",
    ),
]


def race(*calls):
    """Run each call in its own thread and database connection, released together by a barrier."""
    barrier = threading.Barrier(len(calls))
    results, errors = [None] * len(calls), []

    def run(index, call):
        try:
            barrier.wait(timeout=10)
            results[index] = call()
        except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    return results


@pytest.fixture
def two_doctors(specialty):
    return (
        DoctorFactory(
            user=UserFactory(email="first@example.com"), display_name="Dr. Ada First", specialties=[specialty]
        ),
        DoctorFactory(
            user=UserFactory(email="second@example.com"), display_name="Dr. Ben Second", specialties=[specialty]
        ),
    )


@pytest.fixture
def question(specialty):
    return QuestionFactory(specialty=specialty, is_urgent=False)


@pytest.mark.parametrize("attempt", range(5))
def test_two_doctors_claiming_at_once_exactly_one_wins(two_doctors, question, attempt):
    first, second = two_doctors
    results = race(
        lambda: services.claim_question(question.pk, first),
        lambda: services.claim_question(question.pk, second),
    )

    winners = [r for r in results if r.ok]
    losers = [r for r in results if not r.ok]
    assert len(winners) == 1 and len(losers) == 1
    winner = winners[0].holder
    assert Question.objects.get(pk=question.pk).claimed_by == winner
    assert losers[0].holder == winner
    assert losers[0].message == f"{winner.display_name} has already claimed this question."


@pytest.mark.parametrize("attempt", range(3))
def test_two_doctors_answering_at_once_record_exactly_one_answer(two_doctors, question, attempt):
    first, second = two_doctors
    results = race(
        lambda: services.reply_as_doctor(question.pk, first, "Answer from the first doctor."),
        lambda: services.reply_as_doctor(question.pk, second, "Answer from the second doctor."),
    )

    assert sorted(r.ok for r in results) == [False, True]
    refused = next(r for r in results if not r.ok)
    reply = Reply.objects.get(question=question)
    assert Question.objects.get(pk=question.pk).answered_by == reply.doctor
    # The loser either met the winner's claim or the question already answered.
    assert refused.refusal in {
        f"{reply.doctor.display_name} has already claimed this question.",
        "This question is no longer open.",
    }
