"""Fault: the same message kills the pool process that runs it, every time.

In the production pool (prefork) a task runs in a child process. A message
whose task kills it (out of memory, a crash) used to be requeued every time
(task_reject_on_worker_lost) and killed a child on each pass, forever. Here a
send hangs at the mail server and the test SIGKILLs the child running it, each
time it comes back: the main process survives, the task is sent again three
times at most, then dropped; the outbox re-send still owns the e-mail.
"""

import re
import subprocess

import pytest
import redis

from consultations.models import Notification, NotificationStatus
from portal.celery import app
from tests.factories import QuestionFactory
from tests.integration.conftest import WORKER_TEST_MARKS, wait_for, worker_command

pytestmark = WORKER_TEST_MARKS

# The first run and Celery's default max_retries (3) retries.
RUNS = 4


def pool_children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(child) for child in found.stdout.split()]


def test_a_message_that_kills_its_pool_process_each_time_is_retried_three_times_then_dropped(
    cluster, redis_server, specialty
):
    """Issue 13 item 1: a message is never requeued forever, not even one that kills
    the process running it (task_retry_on_worker_lost, max_retries 3)."""
    broker = redis_server()
    env = {
        "FAULT_MAIL_PAUSE_SECONDS": "60",  # a send that hangs until its process is killed
        "NOTIFICATION_SEND_LOCK_SECONDS": "1",  # so each retry can claim the row again
        "WORKER_LOST_RETRY_SECONDS": "1",
    }
    args = [arg for arg in worker_command(purge=False) if arg != "--pool=solo"] + ["--concurrency=1"]
    worker = cluster._start("prefork", args, cluster.env(broker.url, env))
    wait_for(lambda: " ready." in cluster.log("prefork"), "the worker to be ready", 30, logs=cluster.logs)
    # A starting worker drains the outbox at once: let that run finish on an empty
    # outbox, so that only the message under test ever sends this e-mail.
    wait_for(
        lambda: re.search(r"resend_pending_notifications\[[^\]]+\] succeeded", cluster.log("prefork")),
        "the start-up drain to finish",
        30,
        logs=cluster.logs,
    )
    question = QuestionFactory(specialty=specialty)
    notification = Notification.objects.create(
        question=question,
        kind="question_received",
        to_email="patient@example.com",
        subject="Your question",
        body="We received your question.",
        dedupe_key=f"pool-process-lost-{question.pk}",
    )
    with app.connection_for_write(broker.url) as connection:
        app.send_task("consultations.tasks.send_notification", (notification.pk,), connection=connection)

    for run in range(1, RUNS + 1):
        wait_for(lambda run=run: len(cluster.mail_markers()) == run, f"run {run} of the send", 20, logs=cluster.logs)
        [child] = pool_children(worker.pid)
        subprocess.run(["kill", "-KILL", str(child)], check=True)
        wait_for(lambda child=child: child not in pool_children(worker.pid), "the child to be gone", 10)

    wait_for(lambda: "WorkerLostError" in cluster.log("prefork").split("retry:")[-1], "the task to fail", 20)
    log = cluster.log("prefork")
    assert log.count("] retry: Retry in 1s") == RUNS - 1
    # Long enough for another round if there were one: none comes.
    with pytest.raises(pytest.fail.Exception):
        wait_for(lambda: len(cluster.mail_markers()) > RUNS, "a fifth run", 5)
    assert worker.poll() is None
    with redis.Redis.from_url(broker.url) as client:
        assert client.llen("celery") == 0 and client.hlen("unacked") == 0  # nothing left to come back
    notification.refresh_from_db()
    assert notification.status == NotificationStatus.PENDING  # left to the outbox re-send
