"""Fault: the broker is unreachable when a doctor answers. The answer is saved, and the
patient's e-mail goes out once the broker is back (the outbox re-send), exactly once."""

import subprocess
import sys
import time

import pytest

from consultations.models import Notification, NotificationStatus, QuestionStatus
from tests.factories import QuestionFactory
from tests.integration.conftest import (
    BASE_DIR,
    free_port,
    process_env,
    requires_postgres_and_redis_server,
    wait_for,
    wait_for_more_runs,
)

pytestmark = [pytest.mark.integration, requires_postgres_and_redis_server, pytest.mark.django_db(transaction=True)]

# A stand-in for the web process: answers the question through the service, as the admin view does.
ANSWER_SCRIPT = """
import sys, django
django.setup()
from consultations import services
from consultations.models import DoctorProfile, Question
question = Question.objects.get(pk=int(sys.argv[1]))
services.post_answer(question, DoctorProfile.objects.get(pk=int(sys.argv[2])), "Keep it moisturised; it will settle.")
print("answered")
"""


def test_answer_email_is_sent_exactly_once_after_a_broker_outage(
    celery_stack, redis_server, tmp_path, specialty, doctor, patient
):
    question = QuestionFactory(specialty=specialty, patient=patient, is_urgent=False, claimed_by=doctor)
    port = free_port()  # nothing listens here: the broker is down
    broker_url = f"redis://127.0.0.1:{port}/0"

    started = time.monotonic()
    web = subprocess.run(
        [sys.executable, "-c", ANSWER_SCRIPT, str(question.pk), str(doctor.pk)],
        cwd=BASE_DIR,
        env=process_env(tmp_path / "web", broker_url),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert web.returncode == 0, web.stderr
    assert "answered" in web.stdout
    assert "Broker unavailable" in web.stderr
    assert time.monotonic() - started < 30  # the doctor's request did not hang on the dead broker
    question.refresh_from_db()
    assert question.status == QuestionStatus.ANSWERED
    notification = Notification.objects.get(question=question, kind="answer_posted")
    assert (notification.status, notification.attempts) == (NotificationStatus.PENDING, 0)

    # The broker comes back; a worker and beat start consuming from it.
    redis_server(port)
    # (The worker drains the outbox as it starts, so the e-mail may already be on its way.)
    stack = celery_stack(broker_url=broker_url)

    wait_for(
        lambda: Notification.objects.filter(pk=notification.pk, status=NotificationStatus.SENT).exists(),
        "the outbox re-send to deliver the patient's e-mail",
        25,
        logs=stack.logs,
    )
    # Let the re-send run twice more: nothing is sent again.
    wait_for_more_runs(lambda: stack.log("worker"), 2, timeout=15, logs=stack.logs)
    emails = stack.emails()
    assert [m["To"] for m in emails] == ["patient@example.com"]
    assert emails[0]["Subject"].startswith("A doctor answered")
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == (NotificationStatus.SENT, 1)
