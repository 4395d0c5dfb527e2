"""Killing PostgreSQL connections on purpose, for the database-blip tests
(pg_terminate_backend from a connection of the test's own)."""

import random
import threading
import time

import psycopg
from django.db import connection


def admin_connection() -> psycopg.Connection:
    """A second connection to the test database, outside Django, in autocommit."""
    db = connection.settings_dict
    return psycopg.connect(
        dbname=db["NAME"],
        user=db["USER"] or None,
        password=db["PASSWORD"] or None,
        host=db["HOST"] or None,
        port=db["PORT"] or None,
        autocommit=True,
    )


def own_backend_pid() -> int:
    """The PostgreSQL backend of the test's own Django connection (spared by the killer)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


class ConnectionKiller(threading.Thread):
    """Terminates every other connection to the test database every 10-120 ms, as the
    fault-injection experiment of issue 13 did: often enough to hit most requests,
    rarely enough that trying again gets through."""

    def __init__(self, spare_pid: int, pause=(0.01, 0.12)):
        super().__init__(daemon=True)
        self.spare_pid = spare_pid
        self.pause = pause
        self.stopping = threading.Event()
        self.killed = 0

    def run(self):
        with admin_connection() as admin:
            while not self.stopping.is_set():
                rows = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() AND pid <> %s",
                    [self.spare_pid],
                ).fetchall()
                self.killed += sum(1 for (done,) in rows if done)
                time.sleep(random.uniform(*self.pause))

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.join(timeout=10)
