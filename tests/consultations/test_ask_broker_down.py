"""A patient's question must not depend on the broker: with Redis unreachable the
question is saved, the success page shows, and the e-mail waits in the outbox."""

import time

import pytest
from django.urls import reverse

from consultations.models import Notification, NotificationStatus, Question
from portal.celery import app

CLOSED_PORT_BROKER = "redis://127.0.0.1:1/0"


@pytest.fixture
def unreachable_broker(monkeypatch):
    """Point Celery at a port nothing listens on, and really publish (no eager mode)."""
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    monkeypatch.setitem(app.conf, "broker_url", CLOSED_PORT_BROKER)
    monkeypatch.setitem(app.conf, "broker_transport_options", {"max_retries": 1, "socket_connect_timeout": 1})
    # Drop pooled connections to the real broker so the next publish dials the closed port.
    monkeypatch.setattr(app, "_pool", None)
    monkeypatch.setattr(app.amqp, "_producer_pool", None)
    yield
    if app._pool is not None:
        app._pool.force_close_all()


@pytest.mark.django_db
def test_question_is_saved_and_confirmed_while_the_broker_is_unreachable(
    client, patient, specialty, unreachable_broker, django_capture_on_commit_callbacks, caplog
):
    client.force_login(patient)
    data = {
        "specialty": specialty.pk,
        "title": "Headache every morning",
        "description": "A dull headache every morning for two weeks, gone by noon.",
        "age": 41,
        "sex": "male",
        "consent": "on",
    }
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(reverse("consultations:ask"), data)
    elapsed = time.monotonic() - started

    question = Question.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("consultations:question_submitted", args=[question.pk])
    # The publish was really attempted (and failed) after the commit.
    assert len(callbacks) == 1
    assert any("Broker unavailable" in record.getMessage() for record in caplog.records)
    assert elapsed < 15, "a dead broker must not hang the patient's request"

    notification = Notification.objects.get(question=question, kind="question_received")
    assert notification.status == NotificationStatus.PENDING
    assert notification.attempts == 0
    assert notification.sent_at is None

    page = client.get(response.url)
    assert page.status_code == 200
    assert "Your question was sent" in page.content.decode()
    assert "patient@example.com" in page.content.decode()
