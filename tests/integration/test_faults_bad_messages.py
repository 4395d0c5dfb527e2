"""Fault: malformed, wrong-shaped, unknown and oversized messages on the queue.

Each message is pushed straight into the Redis list a real worker consumes, as
anyone with access to the broker (or a bug, or an old release) could. The worker
must log it, reject it, keep a copy in the broker's `dead-letter` list, and run
the next valid sweep; nothing may be left to come back when a worker restarts.
"""

import base64
import json
import os
import random
import signal

import redis

from consultations.models import SweepRun
from portal.broker import DEAD_LETTER_QUEUE
from portal.celery import app
from tests.integration.conftest import WORKER_TEST_MARKS, wait_for

pytestmark = WORKER_TEST_MARKS

SWEEP = "consultations.tasks.run_sla_sweep"


def publish_sweep(broker_url: str) -> None:
    """A valid sweep message, published the way beat does."""
    with app.connection_for_write(broker_url) as connection:
        app.send_task(SWEEP, connection=connection)


def real_envelope(broker_url: str) -> dict:
    """The Kombu envelope of a real sweep message, taken back off the queue as a template."""
    publish_sweep(broker_url)
    with redis.Redis.from_url(broker_url) as client:
        return json.loads(client.rpop("celery"))


def with_body(envelope: dict, body: bytes) -> bytes:
    return json.dumps({**envelope, "body": base64.b64encode(body).decode()}).encode()


def bad_messages(envelope: dict) -> list[tuple[str, bytes]]:
    noise = random.Random(13).randbytes(512)
    return [
        # Unpacked as (args, kwargs, embed): it killed every worker, since it was restored at exit.
        ("a body of the wrong shape", with_body(envelope, b'{"a": 1}')),
        ("a body that is a JSON list", with_body(envelope, b"[1, 2]")),
        ("a body that is not JSON", with_body(envelope, b"not json {")),
        ("a body of random bytes", with_body(envelope, noise)),
        ("headers that are not a mapping", json.dumps({**envelope, "headers": ["task", SWEEP]}).encode()),
        ("a body that is not base64", json.dumps({**envelope, "body": "%%% not base64 %%%"}).encode()),
        (
            "an unknown task",
            json.dumps({**envelope, "headers": {**envelope["headers"], "task": "portal.gone"}}).encode(),
        ),
        ("an oversized body", with_body(envelope, json.dumps([["x" * 2_000_000], {}, {}]).encode())),
        ("an envelope that is not JSON", b"not json {"),
        ("an envelope of random bytes", noise),
        ("an envelope that is a JSON list", b"[1, 2, 3]"),
    ]


def test_a_worker_survives_every_bad_message_dead_letters_it_and_runs_the_next_sweep(cluster, redis_server):
    """Issue 13 item 1: workers survive any message; a bad one is logged, rejected,
    dead-lettered for inspection and never requeued, and the next valid task runs."""
    broker = redis_server()
    client = redis.Redis.from_url(broker.url)
    envelope = real_envelope(broker.url)
    messages = bad_messages(envelope)
    worker = cluster.worker("worker-1", broker.url)

    for number, (what, raw) in enumerate(messages, start=1):
        client.lpush("celery", raw)
        publish_sweep(broker.url)  # consumed after the bad message: the list is first in, first out
        wait_for(
            lambda n=number: SweepRun.objects.filter(finished_at__isnull=False).count() == n,
            f"the sweep after {what}",
            20,
            logs=cluster.logs,
        )
        assert worker.poll() is None, f"the worker died on {what}:\n{cluster.logs()}"
        assert client.llen(DEAD_LETTER_QUEUE) == number, f"{what} was not dead-lettered"
        assert cluster.log("worker-1").count("Refused a broker message") == number
        assert client.llen("celery") == 0
        assert client.hlen("unacked") == 0, f"{what} is still held, to be redelivered"

    copies = [json.loads(entry) for entry in reversed(client.lrange(DEAD_LETTER_QUEUE, 0, -1))]
    reasons = [copy["reason"] for copy in copies]
    assert "not enough values to unpack" in reasons[0]
    assert copies[0]["message"]["body"] == '{"a": 1}'
    assert copies[0]["message"]["headers"]["task"] == SWEEP
    assert "unknown task" in reasons[6] and copies[6]["message"]["headers"]["task"] == "portal.gone"
    assert "MessageTooLarge" in reasons[7] and len(copies[7]["message"]["body"]) < 100_000
    assert copies[4]["message"]["headers"] == ["task", SWEEP]
    assert copies[8]["message"] == "not json {"

    # Well-formed messages with arguments of the wrong type are ordinary task failures:
    # logged, acknowledged, not retried, nothing to dead-letter.
    send = {**envelope, "headers": {**envelope["headers"], "task": "consultations.tasks.send_notification"}}
    client.lpush("celery", with_body(envelope, json.dumps([[1, 2], {}, {}]).encode()))
    client.lpush("celery", with_body(send, json.dumps([["not an id"], {}, {}]).encode()))
    publish_sweep(broker.url)
    sweeps = len(messages) + 1
    wait_for(
        lambda: SweepRun.objects.filter(finished_at__isnull=False).count() == sweeps,
        "the sweep after two messages with wrong arguments",
        20,
        logs=cluster.logs,
    )
    assert worker.poll() is None
    assert cluster.log("worker-1").count("raised unexpected") == 2
    assert client.llen(DEAD_LETTER_QUEUE) == len(messages)
    assert client.llen("celery") == 0 and client.hlen("unacked") == 0

    # A warm shutdown restores whatever the worker still held: nothing. The next worker
    # gets no bad message back and runs the next sweep.
    cluster.by_name.pop("worker-1")
    os.killpg(worker.pid, signal.SIGTERM)
    assert worker.wait(timeout=15) == 0
    cluster.worker("worker-2", broker.url)
    publish_sweep(broker.url)
    wait_for(
        lambda: SweepRun.objects.filter(finished_at__isnull=False).count() == sweeps + 1,
        "the next worker's sweep",
        20,
        logs=cluster.logs,
    )
    assert "Refused" not in cluster.log("worker-2")
    assert client.llen(DEAD_LETTER_QUEUE) == len(messages)
