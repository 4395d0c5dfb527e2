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
    name = database_name()
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"Refusing to recreate a database named {name!r}")
    with psycopg.connect(maintenance_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


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


def flush_redis() -> None:
    """Empty the bench's own Redis db (broker queue and cache); other dbs are untouched."""
    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()


def prepare() -> None:
    recreate_database()
    flush_redis()
    migrate()
    collect_static()
