"""portal/celery.py: a worker's task closes old database connections (Django's rule) at its
start and end; an eager task, run inside its caller's request or transaction, does not.
The real worker's side: tests/integration/test_worker_connections.py."""

from types import SimpleNamespace

from django.db import connection, transaction

from portal.celery import _close_old_database_connections


def task(is_eager: bool):
    return SimpleNamespace(request=SimpleNamespace(is_eager=is_eager))


def test_an_eager_task_leaves_its_callers_connection_alone(db):
    with transaction.atomic():
        connection.ensure_connection()
        _close_old_database_connections(task=task(is_eager=True))
        assert not connection.closed_in_transaction
        with connection.cursor() as cursor:  # the caller's transaction goes on
            cursor.execute("SELECT 1")


def test_a_workers_task_closes_a_connection_past_its_age(transactional_db, monkeypatch):
    connection.ensure_connection()
    monkeypatch.setattr(connection, "close_at", 0)  # CONN_MAX_AGE ran out
    _close_old_database_connections(task=task(is_eager=False))
    assert connection.connection is None
