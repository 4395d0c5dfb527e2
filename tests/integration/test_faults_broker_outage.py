"""Fault: the broker dies while patients ask and doctors answer, through a real web server.

gunicorn serves the portal with a private redis-server as its broker. Patients ask
on the ask page and a doctor answers on the workbench, over HTTP with CSRF tokens,
before, during and after the broker is down. Every question and answer is saved,
every request succeeds quickly, and once the broker is back and a worker and beat
run, every e-mail goes out exactly once, including those whose queue messages died
with the broker.
"""

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from django.urls import reverse

from consultations.models import Notification, NotificationStatus, Question, QuestionStatus, ReplyKind
from tests.factories import QuestionFactory, UserFactory
from tests.integration.conftest import Browser, requires_postgres_and_redis_server, wait_for, wait_for_more_runs

pytestmark = [pytest.mark.integration, requires_postgres_and_redis_server, pytest.mark.django_db(transaction=True)]

# "A few seconds": a dead broker must cost a request its publish attempt, nothing more.
MAX_REQUEST_SECONDS = 5


def queued_messages(broker_url: str) -> int:
    """Messages waiting in the broker's default queue."""
    with redis.Redis.from_url(broker_url, socket_timeout=2) as client:
        return client.llen("celery")


def ask(browser: Browser, specialty, title: str):
    return browser.submit(
        reverse("consultations:ask"),
        {
            "specialty": specialty.pk,
            "title": title,
            "description": "Red, itchy patches on both forearms for ten days; worse after showering.",
            "age": "37",
            "sex": "female",
            "consent": "on",
        },
    )


def answer(browser: Browser, question: Question):
    path = reverse("doctor_admin:consultations_question_change", args=[question.pk])
    return browser.submit(
        path,
        {"body": f"About '{question.title}': a mild steroid cream for a week should settle it.", "intent": "answer"},
    )


def run_together(actions):
    """Run the requests concurrently, as several people would; results in order."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda action: action(), actions))


@pytest.mark.parametrize(
    "cache",
    [
        pytest.param("own redis", id="cache-on-its-own-redis"),
        pytest.param("broker redis", id="cache-on-the-broker-redis"),
    ],
)
def test_asks_and_answers_survive_a_broker_outage_and_every_email_goes_out_exactly_once(
    cluster, redis_server, specialty, doctor, cache
):
    patients = [UserFactory(email=f"patient{n}@example.com") for n in range(7)]
    waiting = [QuestionFactory(specialty=specialty, title=f"Waiting question {n}") for n in range(4)]
    broker = redis_server()
    # As deployed, one REDIS_URL is broker and cache, so the outage takes the cache down too.
    cache_url = redis_server().url if cache == "own redis" else broker.url
    web = cluster.web("web", broker.url, {"FAULT_CACHE_URL": cache_url})
    patient_browsers = [Browser(web, patient) for patient in patients]
    doctor_browser = Browser(web, doctor.user)

    def phase(patient_numbers, waiting_numbers):
        asks = [
            lambda n=n: ("ask", n, ask(patient_browsers[n], specialty, f"Question of patient {n}"))
            for n in patient_numbers
        ]
        answers = [lambda n=n: ("answer", n, answer(doctor_browser, waiting[n])) for n in waiting_numbers]
        return run_together(asks + answers)

    # 1. The broker is up: the e-mails are listed for the workers, the first one's message
    # takes them all (consultations.notifications.enqueue_delivery); both die with the broker.
    results = phase([0, 1], [0, 1])
    assert queued_messages(broker.url) == 1

    # 2. The broker is killed: patients ask and the doctor answers all the same.
    broker.stop()
    results += phase([2, 3, 4], [2, 3])
    assert "Broker unavailable" in cluster.log("web")

    # 3. The broker is back (empty, on the same port): the web server publishes again.
    broker.start()
    results += phase([5, 6], [])
    assert queued_messages(broker.url) == 1

    slowest = max(seconds for _, _, (_, _, seconds) in results)
    assert slowest < MAX_REQUEST_SECONDS, f"a request took {slowest:.1f}s"
    for kind, number, (status, location, _) in results:
        assert status == 302, f"{kind} {number} answered {status}"
        if kind == "ask":
            question = Question.objects.get(patient=patients[number])
            assert question.title == f"Question of patient {number}"
            assert location == reverse("consultations:question_submitted", args=[question.pk])
            page_status, page, _ = patient_browsers[number].get(location)
            assert page_status == 200
            assert "Your question was sent" in page
        else:
            assert location == reverse("doctor_admin:consultations_question_changelist")
            question = Question.objects.get(pk=waiting[number].pk)
            assert question.status == QuestionStatus.ANSWERED
            assert list(question.replies.values_list("kind", flat=True)) == [ReplyKind.ANSWER]

    # A worker and beat start: the queued send races the outbox re-send for the same rows.
    cluster.worker("worker", broker.url)
    cluster.beat("beat", broker.url)
    notifications = Notification.objects.all()
    assert notifications.count() == 7 + 4
    wait_for(
        lambda: not notifications.exclude(status=NotificationStatus.SENT).exists(),
        "every notification to be sent",
        25,
        logs=cluster.logs,
    )
    # Two more re-send rounds, run by the worker: nothing is sent again.
    wait_for_more_runs(lambda: cluster.log("worker"), 2, timeout=15, logs=cluster.logs)

    expected = Counter(notifications.values_list("to_email", "subject"))
    sent = cluster.sent_emails()
    assert sent == expected
    assert max(sent.values()) == 1
    assert set(notifications.values_list("status", "attempts", "last_error")) == {(NotificationStatus.SENT, 1, "")}
    assert Counter(notifications.values_list("kind", flat=True)) == {"question_received": 7, "answer_posted": 4}
