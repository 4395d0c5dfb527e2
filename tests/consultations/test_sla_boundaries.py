"""Issue 16: the clock rules' Python and SQL spellings agree at every boundary instant.

Each rule lives once in consultations/sla.py (and each escalation level once in
consultations/levels.py) as a predicate and a database condition. For every
boundary (the warning time, the due time, the lead's time) of a normal and an
urgent clock, one microsecond before, at and one microsecond after it, the
database must select exactly the rows the predicates pick, on PostgreSQL (the
suite's database in CI) and on SQLite (tests/conftest.py's second database),
and both must say what the guarantee promises.
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.db import connections
from django.db.models import BooleanField, ExpressionWrapper
from django.db.models.expressions import RawSQL

from consultations import levels, sla
from consultations.models import Question, Specialty
from portal.models import User
from tests.conftest import SQLITE

US = timedelta(microseconds=1)
STARTED = datetime(2030, 3, 4, 9, 0, tzinfo=UTC)
DATABASES = ["default", SQLITE]
VENDORS = {"default": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1], SQLITE: "sqlite3"}

# (boundary, urgent, offset from the instant) -> what the guarantee promises there.
BOUNDARIES = {"warn": sla.WARN, "due": sla.DUE, "lead": sla.LEAD}
EXPECTED_STATE = {  # the running clock's state around each of its own instants
    ("warn", -US): sla.ON_TRACK,
    ("warn", timedelta(0)): sla.AT_RISK,
    ("warn", US): sla.AT_RISK,
    ("due", -US): sla.AT_RISK,
    ("due", timedelta(0)): sla.AT_RISK,
    ("due", US): sla.BREACHED,
    ("lead", -US): sla.BREACHED,
    ("lead", timedelta(0)): sla.BREACHED,
    ("lead", US): sla.BREACHED,
}


def make_questions(alias: str) -> list[Question]:
    """A normal and an urgent clock, each fresh, warned, and breached (and warned),
    all answered (for the on-time rule) at their due time plus -1, 0 or +1 µs."""
    patient = User(email="patient@example.com", full_name="Paula Patient")
    patient.save(using=alias)
    specialty = Specialty(name="Dermatology", slug="dermatology")
    specialty.save(using=alias)
    rows = []
    for is_urgent in (False, True):
        clock = sla.new_clock(STARTED, is_urgent)
        for markers in ({}, {"warned_at": clock.warn_at}, {"warned_at": clock.warn_at, "breached_at": clock.due_at}):
            for answered in (-US, timedelta(0), US):
                rows.append(
                    Question(
                        patient=patient,
                        specialty=specialty,
                        title="A rash",
                        description="Itchy.",
                        age=34,
                        sex="female",
                        is_urgent=is_urgent,
                        submitted_at=clock.started_at,
                        due_at=clock.due_at,
                        first_answered_at=clock.due_at + answered,
                        clock_started_at=clock.started_at,
                        clock_warn_at=clock.warn_at,
                        clock_due_at=clock.due_at,
                        **markers,
                    )
                )
    for row in rows:
        row.save(using=alias)
    return rows


def selected(alias: str, condition) -> set[int]:
    return set(Question.objects.using(alias).filter(condition).values_list("pk", flat=True))


def hand_written(alias: str, sql: str) -> set[int]:
    """Rows for which a hand-written SQL condition (sla.*_sql) holds."""
    # The terms are quoted column names from the model: nothing typed by a user.
    flag = ExpressionWrapper(RawSQL(sql, ()), output_field=BooleanField())  # noqa: S611
    return set(Question.objects.using(alias).annotate(flag=flag).filter(flag=True).values_list("pk", flat=True))


def column(alias: str, name: str) -> str:
    return connections[alias].ops.quote_name(Question._meta.get_field(name).column)


@pytest.mark.parametrize("offset", [-US, timedelta(0), US], ids=["before", "at", "after"])
@pytest.mark.parametrize("boundary", list(BOUNDARIES))
@pytest.mark.parametrize("is_urgent", [False, True], ids=["normal", "urgent"])
@pytest.mark.parametrize("alias", DATABASES, ids=[VENDORS[alias] for alias in DATABASES])
@pytest.mark.django_db(databases=DATABASES)
def test_sql_and_python_agree_at_every_boundary(alias, is_urgent, boundary, offset):
    questions = make_questions(alias)
    clock = sla.new_clock(STARTED, is_urgent)
    at = {"clock_warn_at": clock.warn_at, "clock_due_at": clock.due_at}[BOUNDARIES[boundary].column]
    now = BOUNDARIES[boundary].instant(at, is_urgent) + offset

    # The clock's state: the one rule, and what it promises.
    for state in (sla.ON_TRACK, sla.AT_RISK, sla.BREACHED):
        python = {q.pk for q in questions if sla.clock_state(q.clock_warn_at, q.clock_due_at, now) == state}
        assert selected(alias, sla.state_q(state, now)) == python, state
    mine = [q for q in questions if q.is_urgent == is_urgent]
    assert {sla.clock_state(q.clock_warn_at, q.clock_due_at, now) for q in mine} == {EXPECTED_STATE[(boundary, offset)]}

    # Each escalation level: owed in SQL exactly where its predicate says.
    for level in levels.LEVELS:
        python = {q.pk for q in questions if level.is_due(q, now)}
        assert selected(alias, level.due_q(now)) == python, level.key
    lead_owed = {q.pk for q in mine if levels.by_key("lead").is_due(q, now)}
    assert bool(lead_owed) == (boundary == "lead" and offset > timedelta(0))

    # Answered on time (met) or late (missed): the ORM, the hand-written SQL and Python.
    met = {q.pk for q in questions if sla.answered_state(q.first_answered_at, q.due_at) == sla.MET}
    assert met == {q.pk for q in questions if q.first_answered_at <= q.due_at}
    assert selected(alias, sla.answered_on_time_q()) == met
    assert selected(alias, sla.answered_late_q()) == {q.pk for q in questions} - met
    answered, due = column(alias, "first_answered_at"), column(alias, "due_at")
    assert hand_written(alias, sla.answered_on_time_sql(answered, due)) == met
    assert hand_written(alias, sla.past_due_sql(due, answered)) == {q.pk for q in questions} - met
