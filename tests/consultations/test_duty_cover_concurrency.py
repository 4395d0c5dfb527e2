"""The no-one-on-duty alert is sent once even when four checks run at the same instant
(issue 14, "Honest before submission"): the gap opens with one conditional UPDATE."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.db import connections

from consultations import duty
from consultations.models import Notification
from tests.consultations.sweep_support import sla_staff_member
from tests.factories import QuestionFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="concurrent transactions need PostgreSQL",
    ),
]

NOW = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)
CHECKS = 4


def test_four_simultaneous_checks_alert_once(other_specialty):
    sla_staff_member("sla.one@example.com")
    QuestionFactory(specialty=other_specialty, submitted_at=NOW - timedelta(hours=1))
    barrier = threading.Barrier(CHECKS)
    results, errors = [], []

    def check():
        try:
            barrier.wait(timeout=10)
            results.append(duty.alert_uncovered_specialties(NOW))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=check) for _ in range(CHECKS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(results, key=len) == [[], [], [], [other_specialty.pk]]
    assert list(Notification.objects.filter(kind="no_one_on_duty").values_list("to_email", flat=True)) == [
        "sla.one@example.com"
    ]
