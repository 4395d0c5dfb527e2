"""A read that stands in for Django's connection health check (portal.database.
read_as_health_check, the early "my questions" page): no SELECT 1 before it, and a
connection found dead is closed, so the request's next query opens a new one."""

import pytest
from django.db import connection

from portal.database import read_as_health_check
from portal.models import User
from tests.db_faults import admin_connection, own_backend_pid

pytestmark = pytest.mark.django_db(transaction=True)


def _new_request_cycle():
    connection.close_if_unusable_or_obsolete()  # what request_started does: the check is due again


def test_the_read_replaces_the_health_check(patient, monkeypatch):
    checks = []
    monkeypatch.setattr(connection, "is_usable", lambda: checks.append(1) or True)
    _new_request_cycle()
    assert read_as_health_check(lambda: User.objects.filter(pk=patient.pk).count()) == 1
    assert checks == []
    _new_request_cycle()
    User.objects.filter(pk=patient.pk).count()  # any other first query of a request is checked first
    assert checks == [1]


def test_a_dead_connection_is_closed_and_the_next_query_reconnects(patient):
    pid = own_backend_pid()
    _new_request_cycle()
    with admin_connection() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    assert read_as_health_check(lambda: User.objects.filter(pk=patient.pk).count()) is None
    assert connection.connection is None
    assert User.objects.filter(pk=patient.pk).count() == 1
    assert own_backend_pid() != pid
