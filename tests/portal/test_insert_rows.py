"""portal.database.insert_rows: many rows at once, on PostgreSQL streamed with COPY (the
sweep's escalations, breach credits and e-mails), elsewhere bulk_create."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from consultations.models import Escalation, Notification, NotificationStatus
from portal import database
from portal.database import insert_rows
from tests.factories import QuestionFactory

on_postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY is PostgreSQL's")


@pytest.fixture(params=["copy", "bulk_create"])
def way(request, monkeypatch):
    """Both ways of writing: COPY, and bulk_create as on another database."""
    if request.param == "copy":
        if connection.vendor != "postgresql":
            pytest.skip("COPY is PostgreSQL's")
    else:
        monkeypatch.setattr(database, "_copies_rows", lambda connection: False)
    return request.param


def test_rows_are_stored_as_given_and_their_ids_come_back_in_order(way, specialty, patient):
    question = QuestionFactory(specialty=specialty, patient=patient)
    due = datetime(2026, 12, 7, 10, 3, 7, 123456, tzinfo=UTC)
    rows = [
        {
            "question_id": question.pk,
            "level": level,
            "is_follow_up": n == 1,
            "clock_due_at": due + timedelta(microseconds=n),
            "created_at": due + timedelta(hours=1),
            "recipients": recipients,
            "sweep_id": None,
        }
        for n, (level, recipients) in enumerate(
            [("at_risk", ["a@example.com"]), ("breached", []), ("breached", ['o"dd\\@example.com', "ü@example.com"])]
        )
    ]
    with CaptureQueriesContext(connection) as queries:
        ids = insert_rows(Escalation, rows)
    # COPY: the ids drawn in one statement, the rows in another; bulk_create: one INSERT.
    assert len(queries) == (2 if way == "copy" else 1)
    assert ids == sorted(ids) and len(set(ids)) == 3
    stored = {row["id"]: row for row in Escalation.objects.filter(pk__in=ids).values()}
    for pk, row in zip(ids, rows, strict=True):
        assert {name: stored[pk][name] for name in row} == row


def test_fields_left_out_get_their_defaults(way, patient):
    before = timezone.now()
    [pk] = insert_rows(
        Notification,
        [{"to_email": "p@example.com", "kind": "k", "subject": "s", "body": "b", "dedupe_key": "insert-rows:1"}],
    )
    stored = Notification.objects.get(pk=pk)
    assert (stored.status, stored.attempts, stored.last_error, stored.recipient_id) == (
        NotificationStatus.PENDING,
        0,
        "",
        None,
    )
    assert before <= stored.created_at <= timezone.now() and before <= stored.next_attempt_at <= timezone.now()


@on_postgresql
def test_a_naive_datetime_or_an_unknown_value_is_refused_and_nothing_written(specialty, patient):
    question = QuestionFactory(specialty=specialty, patient=patient)
    row = {
        "question_id": question.pk,
        "level": "breached",
        "clock_due_at": datetime(2026, 12, 7, 10, 0),
        "recipients": [],
    }
    with pytest.raises(TypeError):
        insert_rows(Escalation, [row])
    with pytest.raises(TypeError):
        insert_rows(Escalation, [{**row, "clock_due_at": timezone.now(), "recipients": {1, 2}}])
    # COPY would write a list as the text "{a,b}": refused, as the JSON document refused it.
    with pytest.raises(TypeError):
        insert_rows(Escalation, [{**row, "clock_due_at": timezone.now(), "level": ["a", "b"]}])
    assert not Escalation.objects.exists()
    assert insert_rows(Escalation, []) == []


@on_postgresql
def test_a_row_the_database_refuses_raises_djangos_error_and_writes_none_of_them(db):
    row = {"to_email": "p@example.com", "kind": "k", "subject": "s", "body": "b"}
    rows = [{**row, "dedupe_key": key} for key in ("insert-rows:a", "insert-rows:b", "insert-rows:a")]

    with pytest.raises(IntegrityError), transaction.atomic():
        insert_rows(Notification, rows)
    assert not Notification.objects.exists()
    # The transaction goes on: the next rows are written.
    assert len(insert_rows(Notification, rows[:2])) == 2


@on_postgresql
def test_text_that_copy_must_escape_is_stored_as_given(db):
    body = "tab\there, back\\slash \\N, new\nline, \\., carriage\r return, ü, 🩺"
    [pk] = insert_rows(
        Notification,
        [{"to_email": "p@example.com", "kind": "k", "subject": "\\N", "body": body, "dedupe_key": "insert-rows:e"}],
    )
    stored = Notification.objects.get(pk=pk)
    assert (stored.subject, stored.body) == ("\\N", body)


def test_a_database_that_returns_no_ids_writes_the_rows_and_says_so(db, monkeypatch):
    monkeypatch.setattr(database, "_copies_rows", lambda connection: False)
    monkeypatch.setattr(type(connection.features), "can_return_rows_from_bulk_insert", False)
    row = {"to_email": "p@example.com", "kind": "k", "subject": "s", "body": "b"}

    assert insert_rows(Notification, [{**row, "dedupe_key": f"insert-rows:{n}"} for n in range(2)]) is None
    assert Notification.objects.count() == 2
