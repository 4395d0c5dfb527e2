"""`manage.py sla_sweep`: runs the sweep and says what it did."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from consultations.models import Escalation, SweepRun
from tests.consultations.sweep_support import breached_by, question_started, sla_staff_member

pytestmark = pytest.mark.django_db


def test_command_prints_counts_per_transition(specialty, doctor):
    sla_staff_member()
    now = timezone.now()
    question_started(now - timedelta(hours=3, minutes=30), specialty)
    breached_by(now, specialty, warned_at=now - timedelta(hours=1))
    breached_by(now, specialty, warned_at=now - timedelta(hours=1))
    out = StringIO()

    call_command("sla_sweep", stdout=out)  # returns normally: exit status 0

    text = out.getvalue()
    run = SweepRun.objects.get()
    assert f"SLA sweep #{run.pk}" in text
    assert "at risk (warned):   1" in text
    assert "breached:           2" in text
    assert "lead escalations:   0" in text
    assert "errors:             0" in text
    assert Escalation.objects.count() == 3


def test_command_with_nothing_due_prints_zeros_and_records_the_heartbeat(db):
    out = StringIO()

    call_command("sla_sweep", stdout=out)

    assert "breached:           0" in out.getvalue()
    assert SweepRun.objects.filter(finished_at__isnull=False).count() == 1


def test_command_rejects_a_batch_size_below_one(db):
    with pytest.raises(CommandError, match="at least 1"):
        call_command("sla_sweep", "--batch-size", "0")
