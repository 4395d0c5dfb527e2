"""My questions in few database round trips (issue 17: a signed-in patient's page
spends most of its time waiting on them): one page needs no COUNT, and a patient
without breach credits no credits query, while paging, the credits and "only your
own questions" stay as they were."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from consultations.models import BreachCredit, CreditKind
from consultations.patient_list import PER_PAGE as MY_QUESTIONS_PER_PAGE
from tests.factories import QuestionFactory

pytestmark = pytest.mark.django_db
URL = reverse("consultations:my_questions")


def _credit(question):
    due = timezone.now() - timedelta(hours=1)
    return BreachCredit.objects.create(
        patient=question.patient,
        question=question,
        clock_due_at=due,
        breached_at=due + timedelta(minutes=5),
        minutes_late=5,
        kind=CreditKind.FREE_QUESTION,
    )


def _get(client, url=URL):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return response.content.decode(), [query["sql"] for query in queries]


def test_one_page_without_credits_needs_neither_a_count_nor_the_credits(client, patient, other_patient, specialty):
    mine = [QuestionFactory(patient=patient, specialty=specialty, title=f"Mine {n}") for n in range(3)]
    theirs = QuestionFactory(patient=other_patient, specialty=specialty, title="Not mine")
    _credit(theirs)  # someone else's credit changes nothing on this page
    client.force_login(patient)
    _get(client)  # the session's idle end is written at most once a minute: the first request pays
    html, queries = _get(client)
    assert all(f">Mine {n}</a>" in html for n in range(3)) and "Not mine" not in html
    assert "When we missed our guarantee" not in html
    assert not [sql for sql in queries if "COUNT(" in sql]
    assert not [sql for sql in queries if sql.startswith('SELECT "consultations_breachcredit"')]
    assert len(mine) == 3


def test_a_patient_with_a_credit_still_sees_it(client, patient, other_patient, specialty):
    question = QuestionFactory(patient=patient, specialty=specialty, title="Late one")
    _credit(question)
    _credit(QuestionFactory(patient=other_patient, specialty=specialty, title="Not mine"))
    client.force_login(patient)
    html, _ = _get(client)
    assert "When we missed our guarantee" in html
    assert f"Question #{question.pk}<" in html
    assert html.count("Credit: a free question") == 1


def test_more_than_a_page_is_still_paged_with_its_count(client, patient, specialty):
    for n in range(MY_QUESTIONS_PER_PAGE + 3):
        QuestionFactory(patient=patient, specialty=specialty, title=f"Question {n:02d}")
    client.force_login(patient)
    first, queries = _get(client)
    assert "Page 1 of 2" in first and first.count('">Question ') == MY_QUESTIONS_PER_PAGE
    assert [sql for sql in queries if "COUNT(" in sql]
    second, _ = _get(client, URL + "?page=2")
    assert "Page 2 of 2" in second and second.count('">Question ') == 3
