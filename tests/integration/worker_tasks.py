"""Tasks only the integration tests' workers know (tests.integration.worker_settings imports
them): what no product task does on purpose."""

from celery import shared_task
from django.db import connection


@shared_task(name="tests.integration.hold_a_query")
def hold_a_query(seconds: float) -> None:
    """Keep a query running on the worker's connection for `seconds`: a task whose time
    limit interrupts it in the middle of a query."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(%s)", [seconds])
