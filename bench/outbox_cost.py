"""Issue 17: what one e-mail costs the outbox's drain, by claim batch size, in isolation.

Each round queues ROWS e-mails and drains them in this process through the catch-up's
mail backend (BENCH_CATCHUP_MAIL: by default "sink", the zero-cost in-process
bench.mail.SinkBackend; "smtp": Django's SMTP backend talking to the sink SMTP server,
bench/smtp_sink.py, started here as its own process), with CLAIM_BATCH set to each size in turn (1 stands for the old
one-claim-per-e-mail chain: each claim marked the e-mail before it). Per e-mail:
wall time, this process's CPU (`time.process_time`), the CPU of the PostgreSQL backend
serving this connection (read from /proc, so PostgreSQL must run on this machine), the
sink SMTP server's CPU, and SQL statements. "backend alone" sends the same rows straight through the backend.
Sizes alternate within each round, medians of ROUNDS, so machine load moves all alike.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_x BENCH_REDIS_URL=redis://127.0.0.1:6379/N \\
        .venv/bin/python -m bench.outbox_cost

Recreates the bench database.
"""

import os
import statistics
import time

from bench import environment

ROUNDS = int(os.environ.get("BENCH_OUTBOX_ROUNDS", 5))
ROWS = int(os.environ.get("BENCH_OUTBOX_ROWS", 2000))
SIZES = tuple(int(size) for size in os.environ.get("BENCH_OUTBOX_SIZES", "1,100,250,500").split(","))
MAIL = os.environ.get("BENCH_CATCHUP_MAIL", "sink")


def backend_cpu_seconds(pid: int) -> float:
    """utime + stime of a local process, in seconds."""
    from bench.mail import process_cpu_seconds

    return process_cpu_seconds(pid)


def _server_cpu(server) -> float:
    return server.cpu_seconds() or 0.0


def drain_once(size: int, server) -> dict:
    from django.db import connection
    from django.test.utils import override_settings

    from bench.outbox_internals import emails
    from consultations import notifications, outbox_send

    notifications._insert(emails(ROWS, f"cost-{size}-{time.monotonic_ns()}"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    statements = []

    def count(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    previous, outbox_send.CLAIM_BATCH = outbox_send.CLAIM_BATCH, size
    try:
        with override_settings(**_email_settings(server)), connection.execute_wrapper(count):
            server_before = _server_cpu(server)
            pg_before, cpu_before, started = backend_cpu_seconds(pid), time.process_time(), time.perf_counter()
            sent = notifications.drain_pending().sent
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu_before
            pg = backend_cpu_seconds(pid) - pg_before
            server_cpu = _server_cpu(server) - server_before
    finally:
        outbox_send.CLAIM_BATCH = previous
    assert sent == ROWS, sent
    return {
        "wall": wall / sent,
        "cpu": cpu / sent,
        "pg": pg / sent,
        "server": server_cpu / sent,
        "statements": len(statements) / sent,
    }


def _email_settings(server) -> dict:
    return {key: (int(value) if key == "EMAIL_PORT" else value) for key, value in server.env().items()} | {
        "EMAIL_USE_TLS": False
    }


def backend_alone(server) -> dict:
    from bench import mail
    from consultations.models import Notification

    rows = list(Notification.objects.order_by("pk")[:200])
    server_before = _server_cpu(server)
    cpu_before, started = time.process_time(), time.perf_counter()
    mail._send_alone(rows, ROWS, server.backend, server.options())
    return {
        "wall": (time.perf_counter() - started) / ROWS,
        "cpu": (time.process_time() - cpu_before) / ROWS,
        "server": (_server_cpu(server) - server_before) / ROWS,
    }


def main() -> None:
    environment.configure()
    from bench import database

    database.prepare()
    import django

    django.setup()
    from bench import mail

    runs = {size: [] for size in SIZES}
    alone = []
    load = [os.getloadavg()[0]]
    with mail.mail_server(MAIL) as server:
        for round_number in range(ROUNDS):
            order = SIZES if round_number % 2 == 0 else tuple(reversed(SIZES))
            for size in order:
                runs[size].append(drain_once(size, server))
            alone.append(backend_alone(server))
    load.append(os.getloadavg()[0])
    print(f"{ROWS} e-mails per drain, medians of {ROUNDS} rounds; mail: {server.label}")
    print(f"load average {load[0]:.2f} → {load[1]:.2f}")
    print(
        "| claim batch | wall per e-mail | sender CPU | PostgreSQL CPU | mail server CPU "
        "| statements per e-mail | e-mails/s |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for size, results in runs.items():
        median = {key: statistics.median(result[key] for result in results) for key in results[0]}
        print(
            f"| {size} | {median['wall'] * 1e6:.0f} us | {median['cpu'] * 1e6:.0f} us | {median['pg'] * 1e6:.0f} us "
            f"| {median['server'] * 1e6:.0f} us | {median['statements']:.3f} | {1 / median['wall']:,.0f} |"
        )
    median = {key: statistics.median(a[key] for a in alone) for key in alone[0]}
    print(
        f"| backend alone | {median['wall'] * 1e6:.0f} us | {median['cpu'] * 1e6:.0f} us | - "
        f"| {median['server'] * 1e6:.0f} us | 0 | {1 / median['wall']:,.0f} |"
    )


if __name__ == "__main__":
    main()
