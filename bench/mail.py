"""The catch-up phase's mail backends, and the rate each takes e-mails at on its own.

By default (BENCH_CATCHUP_MAIL=smtp) the e-mails take the portal's production path:
Django's SMTP EmailBackend, talking SMTP over TCP to a sink mail server
(bench/smtp_sink.py, one process, a thread per connection, started by the bench) that
accepts every message at once and keeps none: the fastest mail server the portal could
hand mail to. An e-mail costs about 0.5 ms of CPU in Django's backend and 0.1 ms in the
server (docs/benchmarks.md, "Outage catch-up").

BENCH_CATCHUP_MAIL=sink (the default until session 7) sends them to `SinkBackend`, a
zero-cost in-process sink that only serializes each message to bytes (as the SMTP
backend does before it transmits one) and drops it; BENCH_MAIL_DELAY_MS (default 0)
adds a pause per message. Against it the outbox's rate is our own ceiling, not a mail
server's pace.

`backend_rate` measures a backend alone, with the same messages and connection pattern
as the outbox (a connection per MESSAGES_PER_CONNECTION e-mails), from as many
processes as the workers, so the bench can tell whether the outbox or the backend
limits the send rate.
"""

import multiprocessing
import os
import socket
import sys
import time

from django.core.mail import get_connection
from django.core.mail.backends.base import BaseEmailBackend

from bench import machine_split, processes, smtp_sink

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
ZERO_COST_BACKEND = "bench.mail.SinkBackend"
# Kept for bench.outbox_cost, which measures the outbox's own cost per e-mail.
BACKEND = ZERO_COST_BACKEND


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


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a local process, in seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class SmtpSinkServer:
    """The sink mail server as its own process; what the workers' environment and
    `get_connection` need to reach it; what it has received (asked over SMTP)."""

    backend = SMTP_BACKEND
    label = "Django's SMTP backend → a sink SMTP server (one process, a thread per connection, loopback TCP)"

    def __init__(self, name: str = "catchup-smtp-sink"):
        self.host, self.port = "127.0.0.1", processes.free_port()
        self.service = processes.Service(
            name, [sys.executable, "-m", "bench.smtp_sink", "--host", self.host, "--port", str(self.port)]
        )

    def __enter__(self) -> "SmtpSinkServer":
        self.service.start()
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=2) as sock:
                    if sock.recv(64).startswith(b"220"):
                        return self
            except OSError:
                if time.monotonic() > deadline or not self.service.running():
                    self.service.stop()
                    raise RuntimeError(f"the sink SMTP server did not start:\n{self.service.log_tail()}") from None
                time.sleep(0.1)

    def __exit__(self, *exc) -> None:
        self.service.stop()

    def env(self) -> dict[str, str]:
        return {
            "EMAIL_BACKEND": SMTP_BACKEND,
            "EMAIL_HOST": self.host,
            "EMAIL_PORT": str(self.port),
            "EMAIL_USE_TLS": "false",
            "EMAIL_HOST_USER": "",
            "EMAIL_HOST_PASSWORD": "",
        }

    def options(self) -> dict:
        return {"host": self.host, "port": self.port, "use_tls": False, "username": "", "password": ""}

    def stats(self) -> dict[str, int]:
        return smtp_sink.read_stats(self.host, self.port)

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.service.process.pid)


class ZeroCostSink:
    """The in-process sink: nothing to start, nothing counted outside the database."""

    backend = ZERO_COST_BACKEND
    label = "a zero-cost in-process sink (serializes each message, drops it)"

    def __enter__(self) -> "ZeroCostSink":
        return self

    def __exit__(self, *exc) -> None:
        pass

    def env(self) -> dict[str, str]:
        return {"EMAIL_BACKEND": ZERO_COST_BACKEND}

    def options(self) -> dict:
        return {}

    def stats(self) -> None:
        return None

    def cpu_seconds(self) -> None:
        return None


def mail_server(kind: str):
    if kind == "smtp":
        return SmtpSinkServer()
    if kind == "sink":
        return ZeroCostSink()
    raise ValueError(f"BENCH_CATCHUP_MAIL must be smtp or sink, not {kind!r}")


def _send_alone(notifications: list, count: int, backend: str = BACKEND, options: dict | None = None) -> dict:
    """Send `count` of these rows' e-mails straight through the backend, a connection per
    MESSAGES_PER_CONNECTION as the outbox does; the seconds it took, and this process's CPU.
    The collector is tuned as in the portal's workers (portal.garbage_collection), so the
    comparison is the outbox against the backend, not one process setting against another."""
    from consultations.outbox_send import MESSAGES_PER_CONNECTION, compose
    from portal import garbage_collection

    garbage_collection.tune()
    cpu, started = time.process_time(), time.perf_counter()
    sent = 0
    while sent < count:
        connection = get_connection(backend, **(options or {}))
        connection.open()
        for notification in notifications[: min(MESSAGES_PER_CONNECTION, count - sent)]:
            compose(notification, connection=connection).send()
            sent += 1
        connection.close()
    return {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu}


def backend_rate(notifications: list, processes: int, server=None, per_process: int = 5000) -> dict:
    """E-mails per second the backend alone takes from `processes` senders at once (forked
    from this process, like the workers are separate processes)."""
    server = server or ZeroCostSink()
    before = server.stats()
    server_cpu = server.cpu_seconds()
    context = multiprocessing.get_context("fork")
    with context.Pool(processes) as pool:
        busy_before, began = machine_split.machine_busy(), time.monotonic()
        runs = pool.starmap(_send_alone, [(notifications, per_process, server.backend, server.options())] * processes)
        busy, wall = machine_split.machine_busy() - busy_before, time.monotonic() - began
    seconds = max(run["seconds"] for run in runs)
    messages = processes * per_process
    figures = {
        "backend": server.backend,
        "processes": processes,
        "messages": processes * per_process,
        "seconds": round(seconds, 3),
        "per_second": round(processes * per_process / seconds, 1),
        "sender_cpu_us_per_message": round(sum(run["cpu"] for run in runs) / messages * 1e6),
        # The whole machine, as the catch-up's split reports it: busy, and the cores left idle.
        "machine_busy_us_per_message": round(busy / messages * 1e6),
        "idle_us_per_message": round(max(0.0, wall * os.cpu_count() - busy) / messages * 1e6),
        "delay_ms": delay_seconds() * 1000 if server.backend == ZERO_COST_BACKEND else 0.0,
    }
    if before is not None:
        after = server.stats()
        figures["server_received"] = after["messages"] - before["messages"]
        figures["server_cpu_us_per_message"] = round(
            (server.cpu_seconds() - server_cpu) / (processes * per_process) * 1e6
        )
    return figures
