"""A database blip is not a bad row: the sweep leaves the batch to the next sweep and
quarantines nothing; and an error is never written over a question that another
sweep escalated (or a doctor answered) in the meantime."""

from datetime import timedelta

import psycopg.errors
import pytest
from django.db import DataError, IntegrityError, InterfaceError, OperationalError
from django.utils import timezone

from consultations import services, sweep
from consultations.models import Escalation, Question
from portal import database
from tests.consultations.sweep_support import breached_by, question_started, sla_staff_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def sla_staff(db):
    return sla_staff_member()


def database_error(error_class, message, cause=None):
    """The error as Django raises it: its own class, with psycopg's error as the cause."""
    error = error_class(message)
    error.__cause__ = cause
    return error


CONNECTION_LOST = database_error(OperationalError, "server closed the connection unexpectedly")
CONNECTION_CLOSED = database_error(InterfaceError, "connection already closed")
SERIALIZATION_FAILURE = database_error(
    OperationalError,
    "could not serialize access due to concurrent update",
    psycopg.errors.SerializationFailure("could not serialize access due to concurrent update"),
)
DEADLOCK = database_error(OperationalError, "deadlock detected", psycopg.errors.DeadlockDetected("deadlock detected"))
ADMIN_SHUTDOWN = database_error(
    OperationalError,
    "terminating connection due to administrator command",
    psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
)
TRANSIENT_ERRORS = [
    pytest.param(CONNECTION_LOST, id="connection-lost"),
    pytest.param(CONNECTION_CLOSED, id="connection-closed"),
    pytest.param(SERIALIZATION_FAILURE, id="serialization-failure"),
    pytest.param(DEADLOCK, id="deadlock"),
    pytest.param(ADMIN_SHUTDOWN, id="connection-killed"),
]


@pytest.mark.parametrize("error", TRANSIENT_ERRORS)
def test_a_transient_database_error_quarantines_nothing_and_the_next_sweep_escalates(
    specialty, sla_staff, now, monkeypatch, error
):
    """Issue 13 item 7: while the database fails for reasons that have nothing to do
    with the rows, no healthy question is marked with an error and held back for ten
    sweep intervals: the next sweep escalates every one of them."""
    questions = [breached_by(now, specialty, warned_at=now) for _ in range(3)]
    real_mark = sweep._mark_escalated

    def failing_database(*args, **kwargs):
        raise error

    monkeypatch.setattr(sweep, "_mark_escalated", failing_database)
    result = sweep.run_sweep(now=now)

    assert (result.breached, result.errors) == (0, 0)
    assert result.transient_errors == 1  # the batch, not each row: it was not retried row by row
    assert set(Question.objects.values_list("breached_at", "sweep_error", "sweep_retry_at")) == {(None, "", None)}
    assert not Escalation.objects.exists()

    monkeypatch.setattr(sweep, "_mark_escalated", real_mark)
    later = now + timedelta(seconds=30)  # the next sweep, well before any retry time
    assert sweep.run_sweep(now=later).breached == 3
    assert set(Escalation.objects.values_list("question_id", flat=True)) == {q.pk for q in questions}


def test_a_transient_error_in_the_row_by_row_retry_quarantines_nothing(specialty, sla_staff, now, monkeypatch):
    """Issue 13 item 7: a bad row makes the batch fall back to one row at a time; the
    database then drops out. The rows not reached are not marked as bad."""
    good = [breached_by(now, specialty, warned_at=now) for _ in range(3)]
    bad = breached_by(now, specialty, late=timedelta(minutes=5), warned_at=now)  # most overdue: first
    real_escalate = sweep.escalate_batch
    calls = []

    def bad_row_then_database_down(transition, ids, *args):
        calls.append(list(ids))
        if bad.pk in ids:
            raise IntegrityError("duplicate key value violates unique constraint")
        if len(calls) > 3:  # the batch, the bad row, the first good row; then the database drops out
            raise CONNECTION_LOST
        return real_escalate(transition, ids, *args)

    monkeypatch.setattr(sweep, "escalate_batch", bad_row_then_database_down)
    result = sweep.run_sweep(now=now)

    assert calls[:4] == [[bad.pk] + [q.pk for q in good], [bad.pk], [good[0].pk], [good[1].pk]]
    assert (result.breached, result.errors, result.transient_errors) == (1, 1, 1)
    bad.refresh_from_db()
    assert "IntegrityError" in bad.sweep_error  # the bad row is held back, as before
    for question in good[1:]:
        question.refresh_from_db()
        assert (question.breached_at, question.sweep_error, question.sweep_retry_at) == (None, "", None)


def test_an_error_is_never_written_over_a_question_another_sweep_just_escalated(specialty, sla_staff, now, monkeypatch):
    """Issue 13 item 7: this question fails in this sweep; before the error is written,
    another sweep escalates it. The error write is conditional, so the escalated
    question carries no stale `sweep_error` and no retry time."""
    question = breached_by(now, specialty, warned_at=now)

    def failing(*args, **kwargs):
        raise RuntimeError("template exploded")

    monkeypatch.setattr(sweep, "messages", failing)
    real_logger_exception = sweep.logger.exception

    def meanwhile_another_sweep_escalates(*args, **kwargs):
        # Runs after this sweep's row transaction rolled back, before it writes the error.
        real_logger_exception(*args, **kwargs)
        Question.objects.filter(pk=question.pk).update(breached_at=now, sweep_error="", sweep_retry_at=None)

    monkeypatch.setattr(sweep.logger, "exception", meanwhile_another_sweep_escalates)
    result = sweep.run_sweep(now=now)

    assert result.breached == 0
    question.refresh_from_db()
    assert (question.breached_at, question.sweep_error, question.sweep_retry_at) == (now, "", None)


def test_an_error_is_not_written_over_a_question_answered_meanwhile(specialty, doctor, sla_staff, now, monkeypatch):
    """Issue 13 item 7: the same for a question a doctor answered while the sweep failed on it."""
    question = question_started(now - timedelta(hours=5), specialty, claimed_by=doctor, warned_at=now)

    def failing(*args, **kwargs):
        raise RuntimeError("template exploded")

    monkeypatch.setattr(sweep, "messages", failing)
    real_logger_exception = sweep.logger.exception

    def meanwhile_the_doctor_answers(*args, **kwargs):
        real_logger_exception(*args, **kwargs)
        services.post_answer(Question.objects.get(pk=question.pk), doctor, "Use an emollient twice a day.")

    monkeypatch.setattr(sweep.logger, "exception", meanwhile_the_doctor_answers)
    sweep.run_sweep(now=now)

    question.refresh_from_db()
    assert question.clock_due_at is None
    assert (question.sweep_error, question.sweep_retry_at) == ("", None)


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        *[pytest.param(param.values[0], True, id=param.id) for param in TRANSIENT_ERRORS],
        pytest.param(
            database_error(OperationalError, "database is locked"), True, id="sqlite-locked"
        ),  # SQLite: no SQLSTATE
        pytest.param(
            database_error(
                OperationalError, "index row size exceeds maximum", psycopg.errors.ProgramLimitExceeded("too big")
            ),
            False,
            id="row-too-big",
        ),
        pytest.param(database_error(IntegrityError, "duplicate key"), False, id="integrity"),
        pytest.param(database_error(DataError, "value too long"), False, id="data"),
        pytest.param(RuntimeError("template exploded"), False, id="our-bug"),
    ],
)
def test_transient_database_errors_are_told_from_bad_rows(error, transient):
    """Issue 13 item 7: which errors say nothing about the row."""
    assert database.is_transient(error) is transient
