"""Shared fixtures: the named people of every test, and test-wide settings."""

import os
import time
import uuid
import warnings

import pytest

from tests import pinned
from tests.factories import DoctorFactory, SpecialtyFactory, UserFactory

# A second, test-only database: an in-memory SQLite beside the suite's own
# database (PostgreSQL in CI), so a test that must hold on both runs on both in
# the same run (tests/consultations/test_sla_boundaries.py). pytest-django sets it
# up only when a collected test names it in `databases`.
SQLITE = "sqlite"


def _add_the_sqlite_database() -> None:
    from django.conf import settings
    from django.db import connections

    settings.DATABASES.setdefault(SQLITE, {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"})
    connections.configure_settings(None)  # the defaults Django fills in for every alias


_add_the_sqlite_database()

# Playwright's sync API runs an event loop in the test thread; Django's ORM
# refuses to run there unless told it is safe (the live server is a thread).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
# Its database sessions say they are the test run's own (see _no_connection_outlives_the_suite).
os.environ.setdefault("PGAPPNAME", "pytest")


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path, monkeypatch):
    # The SLA, time and notification settings the tests assume, whatever the shell exports.
    # Only those that differ: each change fires setting_changed, which resets caches.
    for name, value in pinned.SETTINGS.items():
        if getattr(settings, name) != value:
            setattr(settings, name, value)
    # A user's time zone defaults to TIME_ZONE as it was when portal.models was imported.
    from portal.models import User

    time_zone = User._meta.get_field("time_zone")
    monkeypatch.setattr(time_zone, "default", pinned.SETTINGS["TIME_ZONE"])
    time_zone.__dict__.pop("_get_default", None)  # Field caches what get_default() returns
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    settings.CELERY_TASK_ALWAYS_EAGER = True
    # Login lockouts and rate limits keep counts across requests: off by
    # default; tests/security turns them on where it checks them.
    settings.AXES_ENABLED = False
    settings.RATELIMIT_ENABLED = False
    # A fresh cache namespace per test: pages cached by one test never leak into
    # another. (Not cache.clear(): on Redis that would flush the broker's db.)
    settings.CACHES = {
        name: {**config, "KEY_PREFIX": f"test-{uuid.uuid4().hex[:12]}"} for name, config in settings.CACHES.items()
    }
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "portal.static_storage.StaticFilesStorage"},
    }
    from portal.cache_outage import outage
    from portal.celery import app

    app.conf.task_always_eager = True
    outage.reset()  # a cache failure simulated by one test does not make the next skip Redis
    yield
    app.conf.task_always_eager = False
    outage.reset()
    # A request through the test client leaves its user's time zone active in this thread
    # (UserTimezoneMiddleware sets it on every request, so pages never inherit it): a
    # later test that formats times in "the active zone" must find the default.
    from django.utils import timezone

    timezone.deactivate()
    # Likewise the roster version a request read (consultations.cover_cache): a streamed
    # file's request_finished comes only once a test reads its body to the end.
    from consultations import cover_cache

    cover_cache._request_finished()


@pytest.fixture
def specialty(db):
    return SpecialtyFactory(name="Dermatology", slug="dermatology")


@pytest.fixture
def other_specialty(db):
    return SpecialtyFactory(name="Cardiology", slug="cardiology")


@pytest.fixture
def patient(db):
    return UserFactory(email="patient@example.com", full_name="Paula Patient", age=34, sex="female")


@pytest.fixture
def other_patient(db):
    return UserFactory(email="other.patient@example.com", full_name="Otto Otherpatient")


@pytest.fixture
def doctor(specialty):
    return DoctorFactory(
        user=UserFactory(email="doctor@example.com"), display_name="Dr. Dana Derm", specialties=[specialty]
    )


@pytest.fixture
def other_doctor(other_specialty):
    """A verified doctor of another specialty."""
    return DoctorFactory(
        user=UserFactory(email="cardio@example.com"), display_name="Dr. Carl Cardio", specialties=[other_specialty]
    )


@pytest.fixture
def senior_doctor(specialty):
    return DoctorFactory(
        user=UserFactory(email="senior@example.com"),
        display_name="Dr. Sena Senior",
        specialties=[specialty],
        is_senior=True,
    )


@pytest.fixture
def unverified_doctor(specialty):
    return DoctorFactory(
        user=UserFactory(email="unverified@example.com"),
        display_name="Dr. Uma Unverified",
        specialties=[specialty],
        is_verified=False,
    )


@pytest.fixture
def staff(db):
    """A staff member with every permission (the clinic's operations team)."""
    return UserFactory(email="staff@example.com", is_staff=True, is_superuser=True)


@pytest.fixture(scope="session", autouse=True)
def _no_connection_outlives_the_suite(django_db_setup, django_db_blocker):
    """As the suite ends, nothing but pytest may hold a session on the test database, or
    PostgreSQL refuses to drop it ("being accessed by other users"). A process a test started
    names itself (PGAPPNAME, tests/integration/conftest.py): wait a little for such sessions
    to end, then name the ones left in a warning and end them, so the database is dropped."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    connection.close()  # ours may be broken (a fault test kills connections)
    with django_db_blocker.unblock():
        deadline = time.monotonic() + 10
        while (others := _other_sessions(connection)) and time.monotonic() < deadline:
            time.sleep(0.2)
        if others:
            warnings.warn(f"Sessions left on the test database at the end (now ended): {others}", stacklevel=1)
            _other_sessions(connection, terminate=True)
        connection.close()


def _other_sessions(connection, terminate=False) -> list[str]:
    action = "pg_terminate_backend(pid), " if terminate else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {action}application_name, state, backend_start, left(query, 80) FROM pg_stat_activity "  # noqa: S608
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [" ".join(map(str, row)) for row in cursor.fetchall()]
