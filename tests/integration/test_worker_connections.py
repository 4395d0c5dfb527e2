"""A worker keeps its database connection from task to task, as a web process keeps one
from request to request (CONN_MAX_AGE), and never carries a broken one into the next task.

Celery's Django fix-up closes the connection before and after every task unless
CELERY_DB_REUSE_MAX is set: after an outage, each of the catch-up's ~1,000 delivery
tasks paid for a new PostgreSQL backend. portal/celery.py applies Django's own rule
instead (close_old_connections at each task's start and end, CONN_HEALTH_CHECKS)."""

import re

import pytest
from django.db import connection

from portal.celery import app
from tests.integration.conftest import (
    WORKER_TEST_MARKS,
    Processes,
    finished_runs,
    process_env,
    wait_for,
    worker_command,
)

pytestmark = WORKER_TEST_MARKS

RESEND = "consultations.tasks.resend_pending_notifications"


def backends(application_name: str) -> list[int]:
    """The PostgreSQL backends a process (named by its PGAPPNAME) has open now."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", [application_name])
        return [row[0] for row in cursor.fetchall()]


def send(broker_url: str, name: str, **options) -> None:
    with app.connection_for_write(broker_url) as broker:
        app.send_task(name, connection=broker, **options)


def resend(processes: Processes, broker_url: str, times: int = 1) -> None:
    """Run the outbox re-send `times` in the worker and wait until it has."""
    before = finished_runs(processes.log("worker"), RESEND)
    for _ in range(times):
        send(broker_url, RESEND, kwargs={"join_in": False})
    wait_for(
        lambda: finished_runs(processes.log("worker"), RESEND) >= before + times,
        f"{times} re-send runs",
        20,
        logs=processes.logs,
    )


def start_worker(tmp_path, redis_server, pool: str) -> tuple[Processes, str, str]:
    """A worker with kept connections: its processes, its broker's URL, its PGAPPNAME."""
    broker = redis_server()
    processes = Processes(tmp_path)
    command = worker_command()
    if pool != "solo":  # as test_faults_pool_process_lost does
        command = [arg for arg in command if arg != "--pool=solo"] + ["--concurrency=1"]
    processes.start("worker", command, process_env(tmp_path, broker.url, {"DB_CONN_MAX_AGE": "60"}))
    wait_for(lambda: " ready." in processes.log("worker"), "the Celery worker to be ready", 30, logs=processes.logs)
    return processes, broker.url, f"{tmp_path.name}:worker"[-63:]


@pytest.fixture
def worker(tmp_path, redis_server):
    started = []

    def start(pool: str = "solo"):
        started.append(start_worker(tmp_path, redis_server, pool))
        return started[-1]

    yield start
    for processes, *_ in started:
        processes.stop_all()


def test_a_worker_runs_task_after_task_on_one_database_connection(worker):
    processes, broker_url, name = worker()
    resend(processes, broker_url)
    [first] = wait_for(lambda: backends(name), "the worker's database connection", 5, logs=processes.logs)

    resend(processes, broker_url, times=5)

    assert backends(name) == [first]


HOLD = "tests.integration.hold_a_query"


def hold_a_query(processes: Processes, broker_url: str, seconds: float = 0, **options) -> str:
    """Run a query in the worker (no retry of its own, unlike the product's tasks); how
    the run ended, from the worker's log."""
    done = re.compile(rf"{re.escape(HOLD)}\[[^\]]+\] (succeeded|raised[^\n]*)")
    before = len(done.findall(processes.log("worker")))
    send(broker_url, HOLD, args=[seconds], **options)
    wait_for(lambda: len(done.findall(processes.log("worker"))) > before, "the query task", 20, logs=processes.logs)
    return done.findall(processes.log("worker"))[before]


def test_a_connection_killed_between_tasks_is_replaced_before_the_next_task_uses_it(worker):
    processes, broker_url, name = worker()
    assert hold_a_query(processes, broker_url) == "succeeded"
    [killed] = backends(name)
    with connection.cursor() as cursor:  # as a failover or an administrator would
        cursor.execute("SELECT pg_terminate_backend(%s)", [killed])

    assert hold_a_query(processes, broker_url) == "succeeded"
    assert killed not in backends(name)
    assert len(backends(name)) == 1


def test_a_task_stopped_by_its_time_limit_in_mid_query_leaves_no_broken_connection(worker):
    """The case that made Celery close the connection after every task: a soft time limit
    interrupts a running query, and Django alone would take the connection for usable."""
    processes, broker_url, name = worker(pool="prefork")
    assert hold_a_query(processes, broker_url) == "succeeded"

    ended = hold_a_query(processes, broker_url, seconds=5, soft_time_limit=0.5, time_limit=30)
    assert "SoftTimeLimitExceeded" in ended

    assert hold_a_query(processes, broker_url) == "succeeded"
