"""Where the bench runs: its own PostgreSQL database and Redis db, set before Django starts.

Every process the bench starts (gunicorn, Celery worker and beat) inherits
the same variables, so they all talk to the bench's database and broker and
never to a developer's or another test run's.
"""

import os
from urllib.parse import urlsplit, urlunsplit

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"


def configure() -> dict[str, str]:
    """Set the bench's environment in this process; returns it for child processes."""
    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    redis_url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)
    values = {
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CACHE_KEY_PREFIX": "bench",
        "DEBUG": "false",
        "PRODUCTION": "false",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "LOG_LEVEL": "WARNING",
        # Persistent connections, as in production behind gunicorn.
        "DB_CONN_MAX_AGE": "60",
        "SITE_URL": "http://127.0.0.1:8000",
    }
    os.environ.update(values)
    return dict(os.environ)


def database_name(database_url: str | None = None) -> str:
    return urlsplit(database_url or os.environ["DATABASE_URL"]).path.lstrip("/")


def maintenance_url(database_url: str | None = None) -> str:
    """The same server's `postgres` database, used to drop and create the bench database."""
    parts = urlsplit(database_url or os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/postgres"))
