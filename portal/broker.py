"""What keeps a Celery worker alive whatever arrives on the queue, and whatever the broker does.

Celery already rejects some bad messages (an unknown task name, a body it cannot
decode) but lets others kill the worker for good: a well-formed envelope whose
body is `{"a": 1}` raises in the worker's main loop, the message is restored to
the queue when the worker exits, and every worker started afterwards dies on it.
Kombu's Redis transport dies earlier still on an envelope that is not JSON, has
headers that are not a mapping, or a body that is not base64.

Two hooks, both the libraries' own extension points, selected in settings:

- `Consumer` (Celery's `worker_consumer` setting): every message a worker receives
  goes through a guard. A message larger than WORKER_MAX_MESSAGE_BYTES, or one
  whose handling raises anything but a broker connection error, is logged,
  rejected without requeue and copied to the dead-letter list. The messages
  Celery already refuses (unknown task, undecodable body, unknown format) are
  copied there too.
- `Transport` (Celery's `broker_transport` setting, Redis only): an envelope Kombu
  cannot even turn into a message is logged and dead-lettered instead of raising
  out of the event loop. Its channels also turn the "transport already closed"
  state of a connection lost mid-restore into the connection error it is (see
  `Channel._connparams`), so the worker reconnects instead of dying.

The dead-letter list is the Redis list `dead-letter` on the broker, newest first,
at most DEAD_LETTER_KEEP entries of JSON: why, when, from which queue, and the
message as far as it could be read (cut to DEAD_LETTER_EXCERPT characters).
Nothing reads it automatically: it is there for a person to inspect.
"""

import json
import logging
from datetime import UTC, datetime

from celery.worker.consumer import Consumer as CeleryConsumer
from django.conf import settings
from kombu.transport import redis as kombu_redis
from kombu.transport.virtual import Message as VirtualMessage

logger = logging.getLogger(__name__)

DEAD_LETTER_QUEUE = "dead-letter"
DEAD_LETTER_KEEP = 1000
DEAD_LETTER_EXCERPT = 64 * 1024


class UndeliverableMessage(Exception):
    """An envelope Kombu could not turn into a message; `raw` is what was read."""

    def __init__(self, raw, reason: Exception):
        super().__init__(f"malformed message envelope: {reason!r}")
        self.raw = raw


class MessageTooLarge(Exception):
    pass


def _text(value) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="backslashreplace")
    elif not isinstance(value, str):
        value = json.dumps(value, default=repr)
    if len(value) > DEAD_LETTER_EXCERPT:
        return value[:DEAD_LETTER_EXCERPT] + f"... [{len(value)} characters in all]"
    return value


def _readable(raw):
    """The message for the dead-letter entry: an envelope stays an object, with its body cut short."""
    if isinstance(raw, dict):
        return {key: _text(value) if key == "body" else value for key, value in raw.items()}
    return _text(raw)


def dead_letter(channel, reason: str, raw, queue: str = "") -> None:
    """Log a refused message and keep a copy for inspection; never raises.

    Without a Redis broker (the embedded broker of local development) the log is all there is.
    """
    logger.error("Refused a broker message from queue %r: %s", queue, reason)
    entry = json.dumps(
        {
            "reason": reason,
            "queue": queue,
            "refused_at": datetime.now(UTC).isoformat(),
            "message": _readable(raw),
        },
        default=repr,
    )
    acquire = getattr(channel, "conn_or_acquire", None)
    if acquire is None:
        return
    try:
        with acquire() as client:
            client.pipeline().lpush(DEAD_LETTER_QUEUE, entry).ltrim(
                DEAD_LETTER_QUEUE, 0, DEAD_LETTER_KEEP - 1
            ).execute()
    except Exception:  # a copy for inspection must not cost the worker
        logger.exception("Could not copy the refused message to the %r list", DEAD_LETTER_QUEUE)


def _message_copy(message) -> dict:
    return {
        "headers": message.headers,
        "properties": message.properties,
        "content_type": message.content_type,
        "body": message.body or b"",
    }


def _queue_of(message) -> str:
    info = message.delivery_info if isinstance(message.delivery_info, dict) else {}
    return str(info.get("routing_key") or "")


class Consumer(CeleryConsumer):
    """The Celery worker's consumer, with a guard around every message it receives."""

    def create_task_handler(self, *args, **kwargs):
        handle = super().create_task_handler(*args, **kwargs)
        limit = settings.WORKER_MAX_MESSAGE_BYTES

        def on_task_received(message):
            try:
                size = len(message.body or b"")
                if size > limit:
                    return self.on_invalid_task(None, message, MessageTooLarge(f"{size} bytes, the limit is {limit}"))
                return handle(message)
            except self.connection_errors:
                raise  # the consumer reconnects; an unacknowledged message is redelivered
            except Exception as exc:  # noqa: BLE001 - whatever a message does, it must not stop the worker
                return self.on_invalid_task(None, message, exc)

        return on_task_received

    def on_invalid_task(self, body, message, exc):
        if message.acknowledged:  # failed after it was settled: nothing to reject
            logger.exception("Error after a message was settled", exc_info=exc)
        else:
            super().on_invalid_task(body, message, exc)
        dead_letter(message.channel, f"invalid task message: {exc!r}", _message_copy(message), _queue_of(message))

    def on_unknown_task(self, body, message, exc):
        super().on_unknown_task(body, message, exc)
        dead_letter(message.channel, f"unknown task: {exc!r}", _message_copy(message), _queue_of(message))

    def on_unknown_message(self, body, message):
        super().on_unknown_message(body, message)
        dead_letter(message.channel, "not a task message", _message_copy(message), _queue_of(message))

    def on_decode_error(self, message, exc):
        super().on_decode_error(message, exc)
        dead_letter(message.channel, f"cannot decode the body: {exc!r}", _message_copy(message), _queue_of(message))


class Message(VirtualMessage):
    def __init__(self, payload, channel=None, **kwargs):
        try:
            super().__init__(payload, channel=channel, **kwargs)
        except Exception as exc:
            raise UndeliverableMessage(payload, exc) from exc


class Channel(kombu_redis.Channel):
    Message = Message

    def _brpop_read(self, **options):
        try:
            return super()._brpop_read(**options)
        except (*self.connection_errors, kombu_redis.Empty):
            raise
        except Exception as exc:  # noqa: BLE001 - an envelope Kombu cannot read must not stop the worker
            # The item is already off the list and no consumer got it: keep it aside, go on.
            raw = getattr(exc, "raw", None) or getattr(exc, "doc", None) or getattr(exc, "object", None)
            dead_letter(self, f"malformed message envelope: {exc!r}", raw)
            return True

    def _connparams(self, asynchronous=False):
        # Kombu 5.7's race (it killed the prefork worker in each of three runs of ten broker
        # restarts of tests/integration/test_faults_broker_restarts.py): when the broker
        # dies while a channel waits on BRPOP, Channel.close() stops at the failed read
        # before restoring its unacknowledged messages. Celery's consumer has meanwhile
        # released the transport (its client is None) and closes the connection once
        # more; that second close restores through a new pool, and reading the broker's
        # address raised AttributeError("'NoneType' object has no attribute 'hostname'"),
        # which killed the worker. A closed channel has no address: say so with the
        # connection error every caller, Kombu's and Celery's, already handles. The
        # messages stay in the broker's unacked set until the visibility timeout.
        transport = self.connection
        if transport is None or transport.client is None:
            raise kombu_redis.get_redis_ConnectionError()("this channel's broker connection is closed")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel
