"""A fresh bench database and Redis db for every run, so runs are comparable."""

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import redis

from bench.environment import database_name, maintenance_url

ROOT = Path(__file__).resolve().parent.parent


def recreate_database() -> None:
    """Drop and create the bench database (never any other)."""
    name = drop_database()
    with psycopg.connect(maintenance_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(database_url: str | None = None) -> str:
    """Drop the bench database, or the one of `database_url` (bench.ask_profile's baseline);
    returns its name. A name with more than letters, digits and underscores is refused."""
    name = database_name(database_url)
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"Refusing to drop a database named {name!r}")
    with psycopg.connect(maintenance_url(database_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return name


def migrate() -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=os.environ,
        check=True,
    )


def collect_static() -> None:
    """As a deployment would: WhiteNoise then finds its folder (pages link to these files)."""
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=os.environ, check=True
    )


def flush_redis(redis_url: str | None = None) -> None:
    """Empty the bench's own Redis db (broker queue and cache), or the one of `redis_url`;
    other dbs are untouched."""
    redis.Redis.from_url(redis_url or os.environ["REDIS_URL"]).flushdb()


def prepare() -> None:
    recreate_database()
    flush_redis()
    migrate()
    collect_static()


# The server's write-side counters (PostgreSQL 15's pg_stat_bgwriter): how much WAL a
# measured window wrote, how many checkpoints it caused, and who wrote dirty buffers out.
WRITE_COUNTERS = ("checkpoints_timed", "checkpoints_req", "buffers_checkpoint", "buffers_clean", "buffers_backend")


def write_activity() -> dict[str, int]:
    """The WAL position (bytes) and the server's write counters, now; {} where the
    server does not have them (another database, or a newer PostgreSQL that moved them)."""
    from django.db import DatabaseError, connection

    if connection.vendor != "postgresql":
        return {}
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn, checkpoints_timed, checkpoints_req, "
                "buffers_checkpoint, buffers_clean, buffers_backend FROM pg_stat_bgwriter"
            )
            row = cursor.fetchone()
    except DatabaseError:
        return {}
    return {"wal_bytes": int(row[0]), **dict(zip(WRITE_COUNTERS, row[1:], strict=True))}


def write_activity_since(before: dict[str, int], per: int) -> dict[str, float]:
    """What the server wrote since `before`: WAL bytes and buffers per unit of work
    (`per`, such as e-mails sent), and the checkpoints in all."""
    after = write_activity()
    if not before or not after or not per:
        return {}
    spent = {name: after[name] - before[name] for name in after}
    return {
        "wal_bytes_per_unit": round(spent["wal_bytes"] / per),
        "checkpoints": spent["checkpoints_timed"] + spent["checkpoints_req"],
        "checkpoints_requested": spent["checkpoints_req"],
        "buffers_written_per_unit": round(
            (spent["buffers_checkpoint"] + spent["buffers_clean"] + spent["buffers_backend"]) / per, 2
        ),
        "buffers_written_by_backends_per_unit": round(spent["buffers_backend"] / per, 2),
    }
