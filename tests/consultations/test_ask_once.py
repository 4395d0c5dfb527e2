"""One submission, one question, with real concurrency: parallel posts of one ask form
on PostgreSQL, each on its own connection, make exactly one question."""

import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.db import IntegrityError, connection, connections, transaction
from django.test import Client
from django.urls import reverse

from consultations.models import Attachment, Notification, Question
from tests.consultations.test_ask_form import ASK_URL, form_token
from tests.factories import QuestionFactory
from tests.portal.sample_files import png_upload

pytestmark = pytest.mark.django_db(transaction=True)

PARALLEL_POSTS = 4


@pytest.fixture
def postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL): SQLite serialises all writers")


def stored_files() -> list[Path]:
    root = Path(settings.PRIVATE_MEDIA_ROOT)
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def test_four_parallel_posts_of_one_form_make_one_question(postgresql, patient, specialty):
    """Issue 11 item 10: 4 parallel posts (a double click, a flaky network) used to make
    4 questions, each with its own clock and e-mail. Now one is saved; the other three
    wait for it and are sent to its success page; nothing the patient sent is lost."""
    clients = []
    for _ in range(PARALLEL_POSTS):
        client = Client()
        client.force_login(patient)
        clients.append(client)
    token = form_token(clients[0].get(ASK_URL).content.decode())
    data = {
        "specialty": str(specialty.pk),
        "title": "Swollen ankle after a fall",
        "description": "I twisted my left ankle yesterday; it is swollen and blue.",
        "age": "34",
        "sex": "female",
        "consent": "on",
        "submission_token": token,
    }
    start = threading.Barrier(PARALLEL_POSTS)
    responses, errors = [None] * PARALLEL_POSTS, []

    def post(number):
        try:
            start.wait(timeout=10)
            responses[number] = clients[number].post(ASK_URL, {**data, "attachments": [png_upload("ankle.png")]})
        except Exception as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post, args=(number,)) for number in range(PARALLEL_POSTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors, errors
    question = Question.objects.get()
    success = reverse("consultations:question_submitted", args=[question.pk])
    assert [(r.status_code, r.url) for r in responses] == [(302, success)] * PARALLEL_POSTS
    assert (question.title, question.description, question.patient) == (data["title"], data["description"], patient)
    assert Attachment.objects.filter(question=question).count() == 1
    assert len(stored_files()) == 1, "a losing post left a patient's file on disk"
    assert Notification.objects.filter(kind="question_received").count() == 1
    assert len(mail.outbox) == 1


def test_the_database_refuses_a_second_question_with_the_same_token(postgresql, patient, specialty):
    """Issue 11 item 10: the rule holds below the application too (a unique constraint)."""
    first = QuestionFactory(patient=patient, specialty=specialty)
    Question.objects.filter(pk=first.pk).update(submission_token="6f1c1d1e-0000-4000-8000-000000000001")
    with pytest.raises(IntegrityError), transaction.atomic():
        QuestionFactory(patient=patient, specialty=specialty, submission_token="6f1c1d1e-0000-4000-8000-000000000001")
