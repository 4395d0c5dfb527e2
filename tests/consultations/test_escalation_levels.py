"""Issue 16: every escalation level in consultations.levels works end to end from its entry alone.

Parametrised over `levels.LEVELS`, so a new level is tested by adding it: it
escalates once when due (row, marker, counter, e-mails of its kind, the task's
result, the command's line, the heartbeat's counts) and a follow-up's fresh
clock owes it again.
"""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from consultations import levels, services, sla, sweep, tasks
from consultations.heartbeat import sweep_status
from consultations.models import Escalation, Notification, Question, SweepRun
from tests.consultations.sweep_support import question_started, sla_staff_member

pytestmark = pytest.mark.django_db
LEVEL_IDS = [level.key for level in levels.LEVELS]


def owing_only(level: levels.Level, now, specialty, **fields) -> Question:
    """A question whose `level` fell due a minute before `now`, every other level already sent."""
    # How long after its start a clock reaches the level's instant.
    reference = sla.new_clock(now)
    at = {"clock_warn_at": reference.warn_at, "clock_due_at": reference.due_at}[level.boundary.column]
    reached_after = level.boundary.instant(at) - now
    started_at = now - reached_after - timedelta(minutes=1)
    others = {other.marker: started_at for other in levels.LEVELS if other is not level}
    question = question_started(started_at, specialty, **others, **fields)
    assert level.is_due(question, now)
    return question


@pytest.mark.parametrize("level", levels.LEVELS, ids=LEVEL_IDS)
def test_each_level_escalates_once_when_due(level, specialty, doctor, senior_doctor, now_utc):
    sla_staff_member()
    question = owing_only(level, now_utc, specialty, claimed_by=doctor)

    first = sweep.run_sweep(now=now_utc)
    again = sweep.run_sweep(now=now_utc + timedelta(seconds=30))

    assert first.counts == {other.counter: int(other is level) for other in levels.LEVELS}
    assert again.escalated == 0
    escalation = Escalation.objects.get(question=question)
    assert escalation.level == level.key
    sent = Notification.objects.filter(question=question, kind=level.kind)
    assert sorted(sent.values_list("to_email", flat=True)) == sorted(escalation.recipients)
    assert escalation.recipients
    question.refresh_from_db()
    assert getattr(question, level.marker) == now_utc
    run = SweepRun.objects.get(pk=first.run_id)
    assert getattr(run, level.counter) == 1
    assert first.summary().startswith(", ".join(f"{int(other is level)} {other.summary}" for other in levels.LEVELS))


@pytest.mark.parametrize("level", levels.LEVELS, ids=LEVEL_IDS)
def test_the_task_command_and_heartbeat_report_each_level(level, specialty, senior_doctor, now_utc):
    sla_staff_member()
    owing_only(level, timezone.now(), specialty)

    result = tasks.run_sla_sweep()
    out = StringIO()
    call_command("sla_sweep", stdout=out)

    assert result[level.counter] == 1
    assert set(result) == {"run", *levels.counters(), "errors"}
    assert f"{level.summary}:" in out.getvalue()
    assert set(sweep_status()["last_run"]) == {*levels.counters(), "errors"}


@pytest.mark.parametrize("level", levels.LEVELS, ids=LEVEL_IDS)
def test_a_follow_up_owes_every_level_again(level, specialty, doctor, patient, now_utc):
    question = owing_only(level, now_utc, specialty, patient=patient, claimed_by=doctor)
    services.post_answer(question, doctor, "Use the cream twice a day.", now=now_utc)

    services.post_follow_up(question, patient, "It is still itchy.", now=now_utc + timedelta(minutes=1))

    question.refresh_from_db()
    assert question.is_follow_up
    assert all(getattr(question, each.marker) is None for each in levels.LEVELS)


@pytest.fixture
def now_utc():
    return timezone.now()
