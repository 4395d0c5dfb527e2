"""Fault: the broker hangs (SIGSTOP: no reset, just silence) while a patient asks.

As deployed, one Redis is both the broker and the cache, so the hang takes both
away. Every Redis client has socket and connect timeouts (REDIS_TIMEOUT_SECONDS)
and a failed publish is retried once, not three times: the patient's request
waits about a second on Redis, not the ~21 s it used to, the question is saved,
and the e-mail waits in the outbox until the broker answers again.
"""

import os
import signal

import pytest
from django.urls import reverse

from consultations.models import Notification, NotificationStatus, Question
from tests.integration.conftest import Browser, requires_postgres_and_redis_server, wait_for, wait_for_more_runs

pytestmark = [pytest.mark.integration, requires_postgres_and_redis_server, pytest.mark.django_db(transaction=True)]

MAX_ASK_SECONDS = 3


@pytest.fixture
def hang(request):
    """hang(server): SIGSTOP the redis-server; SIGCONT at teardown whatever happens."""
    stopped = []

    def stop(server):
        os.kill(server.proc.pid, signal.SIGSTOP)
        stopped.append(server)

    yield stop
    for server in stopped:
        if server.proc is not None and server.proc.poll() is None:
            os.kill(server.proc.pid, signal.SIGCONT)


def test_an_ask_post_answers_within_three_seconds_while_the_broker_hangs(
    cluster, redis_server, hang, specialty, patient
):
    """Issue 13 item 6: with the broker (and the cache on it) hung, an ask POST still
    answers within 3 s, the question is stored, and its e-mail goes out once after
    the broker resumes (the outbox re-send covers the failed publish)."""
    broker = redis_server()
    web = cluster.web("web", broker.url, {"RATELIMIT_ENABLED": "true"})
    browser = Browser(web, patient)
    ask = reverse("consultations:ask")
    status, page, _ = browser.get(ask)
    assert status == 200
    token = Browser.CSRF_FIELD.search(page).group(1)
    # Both web workers have talked to Redis (cache and broker pools are warm): the hang
    # must be survived by a connection that suddenly stops answering, not just a new one.
    for _ in range(4):
        assert browser.get(ask)[0] == 200

    hang(broker)
    timings = []
    for number in range(3):
        status, location, seconds = browser.request(
            "POST",
            ask,
            {
                "specialty": specialty.pk,
                "title": f"Rash on both arms, take {number}",
                "description": "Red, itchy patches on both forearms for ten days; worse after showering.",
                "age": "37",
                "sex": "female",
                "consent": "on",
                "csrfmiddlewaretoken": token,
            },
            timeout=30,
        )
        timings.append(seconds)
        question = Question.objects.get(title=f"Rash on both arms, take {number}")
        assert (status, location) == (302, reverse("consultations:question_submitted", args=[question.pk]))
    print(f"ask POST with a hung broker: {', '.join(f'{t:.2f}' for t in timings)} s")
    assert max(timings) < MAX_ASK_SECONDS, f"ask POSTs took {timings}"
    assert "Broker unavailable" in cluster.log("web")
    rows = Notification.objects.filter(kind="question_received")
    assert set(rows.values_list("status", "attempts")) == {(NotificationStatus.PENDING, 0)}

    # The broker resumes; a worker and beat start: each e-mail goes out once.
    os.kill(broker.proc.pid, signal.SIGCONT)
    cluster.worker("worker", broker.url)
    cluster.beat("beat", broker.url)
    wait_for(
        lambda: not rows.exclude(status=NotificationStatus.SENT).exists(),
        "the re-send to send the e-mails",
        30,
        logs=cluster.logs,
    )
    # Two more re-send runs: a second copy would have gone out by then.
    wait_for_more_runs(lambda: cluster.log("worker"), 2, timeout=15, logs=cluster.logs)
    assert sorted(cluster.sent_emails().values()) == [1, 1, 1]
