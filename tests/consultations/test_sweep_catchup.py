"""Nothing missed: after an outage the next sweeps escalate everything that fell due, once, in bounded batches."""

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from consultations import sla, sweep
from consultations.models import Escalation, EscalationLevel, Question
from tests.consultations.sweep_support import sla_staff_member, unsaved_questions

pytestmark = pytest.mark.django_db

FELL_DUE = 1000
BATCH = 100
MAX_BATCHES = 3


def test_questions_that_fell_due_during_a_two_hour_outage_are_each_escalated_once(specialty, patient):
    sla_staff_member()
    outage_start = timezone.now() - timedelta(hours=2)
    outage_end = outage_start + timedelta(hours=2)
    window = sla.answer_window()
    # 1,000 due times spread evenly over the outage, and 50 more that only become at risk during it.
    step = timedelta(hours=2) / FELL_DUE
    rows = []
    for number in range(FELL_DUE):
        rows += unsaved_questions(
            1, specialty=specialty, patient=patient, started_at=outage_start - window + step * number
        )
    rows += unsaved_questions(
        50, specialty=specialty, patient=patient, started_at=outage_end - window + timedelta(minutes=30)
    )
    Question.objects.bulk_create(rows, batch_size=500)
    # The last sweep before the outage warned what was at risk then.
    warned_before = sweep.run_sweep(now=outage_start).warned
    assert 0 < warned_before < FELL_DUE

    # Sweeping resumes after the outage, every 30 seconds.
    results = []
    now = outage_end
    for _ in range(10):
        results.append(sweep.run_sweep(now=now, batch_size=BATCH, max_batches=MAX_BATCHES))
        now += timedelta(seconds=30)
        if not results[-1].capped:
            break

    bound = BATCH * MAX_BATCHES
    assert all(r.breached <= bound and r.warned <= bound for r in results)
    assert results[0].breached == bound and results[0].capped  # bounded: the backlog spans several sweeps
    assert sum(r.breached for r in results) == FELL_DUE
    assert sum(r.warned for r in results) == 50
    assert sum(r.errors for r in results) == 0
    # Most overdue first.
    first_batch = Escalation.objects.filter(sweep_id=results[0].run_id, level=EscalationLevel.BREACHED)
    last_batch = Escalation.objects.filter(sweep_id=results[-1].run_id, level=EscalationLevel.BREACHED)
    assert max(first_batch.values_list("clock_due_at", flat=True)) < min(
        last_batch.values_list("clock_due_at", flat=True)
    )
    # Each question once per level; late ones get the breach only, never a late "at risk".
    levels = Counter(Escalation.objects.values_list("question_id", "level"))
    assert max(levels.values()) == 1
    assert sum(1 for (_, level) in levels if level == EscalationLevel.BREACHED) == FELL_DUE
    assert sum(1 for (_, level) in levels if level == EscalationLevel.AT_RISK) == warned_before + 50

    # Later sweeps find nothing more to do.
    quiet = sweep.run_sweep(now=now + timedelta(seconds=30))
    assert (quiet.warned, quiet.breached) == (0, 0)
