"""Fault: the broker goes away and comes back, ten times, while two workers are busy.

A private redis-server is killed and started again (empty, on the same port) ten
times while questions fall due, sweeps are published ten times a second and the
escalation e-mails go out slowly. One worker runs the production pool (prefork),
the other the solo pool. Each must notice every outage, reconnect by itself and
carry on; at the end both are alive and every due question was escalated once
and e-mailed once.
"""

import threading
import time
from collections import Counter
from datetime import timedelta

from django.utils import timezone

from consultations import sla
from consultations.models import Escalation, EscalationLevel, Notification, NotificationStatus, Question
from portal.celery import app
from tests.consultations.sweep_support import sla_staff_member, unsaved_questions
from tests.integration.conftest import WORKER_TEST_MARKS, wait_for, worker_command

pytestmark = WORKER_TEST_MARKS

OUTAGES = 10
UP_SECONDS = 3.0
DOWN_SECONDS = 1.0
# Questions falling due one after the other over the outages, so breaches happen throughout.
QUESTIONS = 40
# Each e-mail takes this long to hand over: sends are in flight when the broker dies.
MAIL_PACE = {"FAULT_MAIL_PAUSE_SECONDS": "0.05"}


def falling_due(specialty, patient) -> list[int]:
    """Questions due from now to the end of the outages, already warned: each owes one breach."""
    now = timezone.now()
    spread = OUTAGES * (UP_SECONDS + DOWN_SECONDS)
    rows = []
    for number in range(QUESTIONS):
        started = now - sla.answer_window() + timedelta(seconds=spread * number / QUESTIONS)
        rows += unsaved_questions(1, specialty=specialty, patient=patient, started_at=started, warned_at=started)
    return [question.pk for question in Question.objects.bulk_create(rows)]


def start_worker(cluster, name: str, broker_url: str, pool: list[str]) -> None:
    args = [arg for arg in worker_command(purge=False) if arg != "--pool=solo"] + pool
    cluster._start(name, args, cluster.env(broker_url, MAIL_PACE))
    wait_for(lambda: " ready." in cluster.log(name), f"the Celery worker {name} to be ready", 30, logs=cluster.logs)


class SweepPublisher(threading.Thread):
    """Load: a sweep message ten times a second, whether the broker is there or not."""

    def __init__(self, broker_url: str):
        super().__init__(daemon=True)
        self.broker_url = broker_url
        self.stopped = threading.Event()
        self.published = 0
        self.refused = 0

    def run(self):
        while not self.stopped.wait(0.1):
            try:
                with app.connection_for_write(self.broker_url) as connection:
                    app.send_task("consultations.tasks.run_sla_sweep", connection=connection)
                self.published += 1
            except Exception:  # noqa: BLE001 - the broker is down: publish the next one
                self.refused += 1


def test_two_busy_workers_outlive_ten_broker_restarts_and_escalate_every_question_once(
    cluster, redis_server, specialty, patient, senior_doctor
):
    """Issue 13 item 2: a worker that loses the broker reconnects by itself. Ten broker
    restarts under load with two workers: both alive at the end, each reconnected after
    the last restart and ran tasks, every due escalation happened once."""
    sla_staff_member()
    question_ids = falling_due(specialty, patient)
    broker = redis_server()
    start_worker(cluster, "prefork", broker.url, ["--concurrency=2"])
    start_worker(cluster, "solo", broker.url, ["--pool=solo"])
    cluster.beat("beat", broker.url)
    workers = {name: cluster.by_name[name] for name in ("prefork", "solo")}
    publisher = SweepPublisher(broker.url)
    publisher.start()

    started = time.monotonic()
    for _ in range(OUTAGES):
        time.sleep(UP_SECONDS)
        broker.stop()  # SIGKILL: connections reset, queued and unacknowledged messages gone
        time.sleep(DOWN_SECONDS)
        broker.start()
    outages_took = time.monotonic() - started
    log_sizes = {name: len(cluster.log(name)) for name in workers}
    for name, process in workers.items():
        assert process.poll() is None, f"{name} died during the outages:\n{cluster.logs()}"

    breaches = Escalation.objects.filter(question_id__in=question_ids, level=EscalationLevel.BREACHED)
    notifications = Notification.objects.filter(question_id__in=question_ids)
    try:
        for name in workers:
            wait_for(
                lambda name=name: "succeeded" in cluster.log(name)[log_sizes[name] :],
                f"{name} to run a task after the last restart",
                40,
                logs=cluster.logs,
            )
        wait_for(lambda: breaches.count() == QUESTIONS, "every question to be breached", 30, logs=cluster.logs)
        wait_for(
            lambda: (
                notifications.count() == 3 * QUESTIONS  # staff, senior and the patient's apology
                and not notifications.exclude(status=NotificationStatus.SENT).exists()
            ),
            "every escalation e-mail to be sent",
            30,
            logs=cluster.logs,
        )
    finally:
        publisher.stopped.set()
        publisher.join(5)

    for name, process in workers.items():
        assert process.poll() is None, f"{name} died:\n{cluster.logs()}"
        log = cluster.log(name)
        assert "Unrecoverable error" not in log
        assert log.count("Connected to ") >= OUTAGES + 1, f"{name} did not reconnect after every outage"
    assert Counter(breaches.values_list("question_id", flat=True)) == dict.fromkeys(question_ids, 1)
    assert Escalation.objects.filter(question_id__in=question_ids).count() == QUESTIONS
    assert cluster.sent_emails() == Counter(notifications.values_list("to_email", "subject"))
    assert outages_took < 60
    assert publisher.published > 100 and publisher.refused > 0  # the load ran, through the outages
