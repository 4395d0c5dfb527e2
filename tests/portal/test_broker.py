"""portal/broker.py on its own: the Kombu race behind a worker's death in a broker outage,
played deterministically, and the dead-letter copy that must never cost the worker."""

import contextlib
import json
import uuid

import pytest
import redis
from django.conf import settings
from kombu import Queue
from kombu.common import ignore_errors

from portal import broker
from portal.celery import app

requires_redis = pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL (its own Redis database)")


@contextlib.contextmanager
def one_unacknowledged_message(transport: str):
    """A channel of `transport` holding one delivered, unacknowledged message; cleaned up after."""
    connection = app.connection_for_write(transport=transport)
    channel = connection.default_channel
    queue = Queue(f"broker-test-{uuid.uuid4().hex}", channel=channel, auto_delete=True)
    queue.declare()
    connection.Producer(channel).publish({"task": "none"}, routing_key=queue.name)
    message = queue.get(no_ack=False)
    try:
        yield connection, channel
    finally:
        with redis.Redis.from_url(settings.REDIS_URL) as client:
            client.hdel("unacked", message.delivery_tag)
            client.zrem("unacked_index", message.delivery_tag)
            client.delete(queue.name, f"_kombu.binding.{queue.name}")


def released(channel) -> None:
    """The state Celery's consumer leaves a channel in after a broker outage, when Kombu's
    first close stopped at the failed BRPOP read: pools dropped, transport released."""
    channel._disconnect_pools()
    channel.connection.client = None


@requires_redis
def test_closing_a_released_channel_with_unacknowledged_messages_is_a_connection_error():
    """Issue 13 item 2: the restore on close used to raise AttributeError("'NoneType' object
    has no attribute 'hostname'"), which Celery treats as unrecoverable; it is now a
    connection error, which Kombu's close paths and Celery's consumer handle."""
    with one_unacknowledged_message("portal.broker:Transport") as (connection, channel):
        released(channel)
        with pytest.raises(connection.connection_errors, match="broker connection is closed"):
            channel.close()
        ignore_errors(connection, channel.close)  # how Celery closes it: quietly


@requires_redis
def test_plain_kombu_still_has_the_race():
    """Issue 13 item 2: kombu 5.7.0 (the newest release) still raises AttributeError here.
    When this test fails, an upgrade fixed the race and Channel._connparams can go."""
    with one_unacknowledged_message("redis") as (_, channel):
        released(channel)
        with pytest.raises(AttributeError, match="hostname"):
            channel.close()


class BrokenChannel:
    @contextlib.contextmanager
    def conn_or_acquire(self):
        raise redis.ConnectionError("the broker is down")
        yield


def test_a_dead_letter_copy_that_cannot_be_written_is_logged_and_the_worker_goes_on(caplog):
    """Issue 13 item 1: keeping a copy of a refused message must not cost the worker."""
    broker.dead_letter(BrokenChannel(), "a body of the wrong shape", {"body": b'{"a": 1}'}, "celery")
    assert "Refused a broker message from queue 'celery': a body of the wrong shape" in caplog.text
    assert "Could not copy the refused message" in caplog.text


@requires_redis
def test_the_dead_letter_list_keeps_the_newest_entries_only(monkeypatch):
    """Issue 13 item 1: a flood of bad messages cannot fill the broker's memory."""
    key = f"dead-letter-test-{uuid.uuid4().hex}"
    monkeypatch.setattr(broker, "DEAD_LETTER_QUEUE", key)
    monkeypatch.setattr(broker, "DEAD_LETTER_KEEP", 3)
    connection = app.connection_for_write()
    try:
        for number in range(5):
            broker.dead_letter(connection.default_channel, f"bad message {number}", "x" * 100_000)
        with redis.Redis.from_url(settings.REDIS_URL) as client:
            entries = [json.loads(entry) for entry in client.lrange(key, 0, -1)]
            client.delete(key)
    finally:
        connection.release()
    assert [entry["reason"] for entry in entries] == ["bad message 4", "bad message 3", "bad message 2"]
    assert entries[0]["message"].endswith("[100000 characters in all]")
    assert len(entries[0]["message"]) < broker.DEAD_LETTER_EXCERPT + 100
