"""The catch-up phase's mail backend: a mail server that costs the sender what a real one
does on its side of the wire, and nothing more.

Each message is serialized to bytes, as Django's SMTP backend does before transmitting
it, and dropped; BENCH_MAIL_DELAY_MS (default 0) adds a pause per message standing in
for a mail server's reply. `backend_rate` measures this backend alone, with the same
messages and connection pattern as the outbox, so the bench can tell whether the
outbox or the backend limits the send rate.
"""

import multiprocessing
import os
import time

from django.core.mail import get_connection
from django.core.mail.backends.base import BaseEmailBackend

BACKEND = "bench.mail.SinkBackend"


def delay_seconds() -> float:
    return float(os.environ.get("BENCH_MAIL_DELAY_MS", "0")) / 1000


class SinkBackend(BaseEmailBackend):
    def send_messages(self, email_messages) -> int:
        delay = delay_seconds()
        sent = 0
        for message in email_messages:
            if not message.recipients():
                continue
            message.message().as_bytes(linesep="\r\n")
            if delay:
                time.sleep(delay)
            sent += 1
        return sent


def _send_alone(notifications: list, count: int) -> float:
    """Send `count` of these rows' e-mails straight through the backend, a connection per
    MESSAGES_PER_CONNECTION as the outbox does; the seconds it took."""
    from consultations.outbox_send import MESSAGES_PER_CONNECTION, compose

    started = time.perf_counter()
    sent = 0
    while sent < count:
        backend = get_connection(BACKEND)
        backend.open()
        for notification in notifications[: min(MESSAGES_PER_CONNECTION, count - sent)]:
            compose(notification, connection=backend).send()
            sent += 1
        backend.close()
    return time.perf_counter() - started


def backend_rate(notifications: list, processes: int, per_process: int = 5000) -> dict:
    """E-mails per second the backend alone takes from `processes` senders at once (forked
    from this process, like the workers are separate processes)."""
    context = multiprocessing.get_context("fork")
    with context.Pool(processes) as pool:
        seconds = pool.starmap(_send_alone, [(notifications, per_process)] * processes)
    return {
        "processes": processes,
        "messages": processes * per_process,
        "seconds": round(max(seconds), 3),
        "per_second": round(processes * per_process / max(seconds), 1),
        "delay_ms": delay_seconds() * 1000,
    }
