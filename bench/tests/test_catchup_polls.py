"""The catch-up harness's polls (bench/catchup.py) read counters, not the rows they wait
for: on two cores, what a poll costs PostgreSQL is taken from the workers it measures."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bench import catchup, database
from consultations.models import Escalation, Notification, SweepRun
from tests.factories import QuestionFactory


class _Sink:
    def __init__(self, messages: int):
        self.messages = messages

    def stats(self) -> dict[str, int]:
        return {"messages": self.messages, "recipients": self.messages}


def _escalate(question):
    Escalation.objects.create(question=question, level="breached", clock_due_at=question.clock_due_at)


def _tables(queries) -> list[str]:
    return [query["sql"].split(" FROM ")[1].split()[0].strip('"') for query in queries.captured_queries]


def test_escalations_are_counted_only_once_the_sweeps_say_they_are_written(db):
    started = timezone.now()
    questions = QuestionFactory.create_batch(2)
    done = catchup._all_escalated(started, 2, Escalation.objects.filter(level="breached"))
    run = SweepRun.objects.create(started_at=started, breached=1)
    SweepRun.objects.create(started_at=started - timedelta(hours=1), breached=5)  # before the catch-up
    _escalate(questions[0])

    with CaptureQueriesContext(connection) as queries:
        assert not done()
    assert _tables(queries) == ["consultations_sweeprun"]

    SweepRun.objects.filter(pk=run.pk).update(breached=2)
    assert not done()  # the counters are not trusted alone: one escalation row is missing
    _escalate(questions[1])
    assert done()


def test_e_mail_rows_are_read_only_once_the_smtp_sink_received_as_many(db):
    question = QuestionFactory()
    Notification.objects.create(question=question, to_email="a@example.com", kind="k", subject="s", body="b")
    pending = Notification.objects.filter(status="pending")
    sink = _Sink(messages=10)
    done = catchup._all_sent(sink, {"messages": 10}, 1, pending, clock=lambda: 0.0)

    with CaptureQueriesContext(connection) as queries:
        assert not done()
    assert not queries.captured_queries

    sink.messages = 11
    assert not done()  # received, not yet marked sent
    pending.update(status="sent")
    assert done()


def test_a_failed_row_the_sink_never_receives_ends_the_wait_at_the_next_read_of_the_rows(db):
    question = QuestionFactory()
    Notification.objects.create(
        question=question, to_email="a@example.com", kind="k", subject="s", body="b", status="failed"
    )
    now = [0.0]
    done = catchup._all_sent(
        _Sink(messages=0), {"messages": 0}, 1, Notification.objects.filter(status="pending"), clock=lambda: now[0]
    )

    assert not done()  # the sink is short of one message, and the rows were read just now
    now[0] = catchup.ROWS_POLL_SECONDS
    assert done()


def test_without_a_counting_sink_the_rows_are_polled(db):
    pending = Notification.objects.filter(status="pending")
    with CaptureQueriesContext(connection) as queries:
        assert catchup._all_sent(None, None, 1, pending)()
    assert _tables(queries) == ["consultations_notification"]


def test_the_servers_writes_are_given_per_unit_of_work(monkeypatch):
    before = {
        "wal_bytes": 1_000,
        "checkpoints_timed": 1,
        "checkpoints_req": 2,
        "buffers_checkpoint": 10,
        "buffers_clean": 5,
        "buffers_backend": 20,
    }
    after = {**before, "wal_bytes": 301_000, "checkpoints_req": 4, "buffers_checkpoint": 40, "buffers_backend": 80}
    monkeypatch.setattr(database, "write_activity", lambda: after)

    assert database.write_activity_since(before, per=100) == {
        "wal_bytes_per_unit": 3_000,
        "checkpoints": 2,
        "checkpoints_requested": 2,
        "buffers_written_per_unit": 0.9,
        "buffers_written_by_backends_per_unit": 0.6,
    }
    assert database.write_activity_since({}, per=100) == {}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's counters")
def test_the_servers_write_counters_are_read(db):
    if connection.pg_version >= 170000:
        pytest.skip("PostgreSQL 17 moved the checkpoint and backend counters out of pg_stat_bgwriter")
    counters = database.write_activity()
    assert set(counters) == {"wal_bytes", *database.WRITE_COUNTERS} and counters["wal_bytes"] > 0
