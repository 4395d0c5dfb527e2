"""portal.database.insert_new: a new row saved with the INSERT Django's compiler wrote for
the model's first one, kept for the next (the ask form's question and its confirmation
e-mail); what is stored is what Model.save() stores."""

import uuid
from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import Model
from django.db.models.signals import post_save, pre_save
from django.db.models.sql.compiler import SQLInsertCompiler
from django.forms.models import model_to_dict

from consultations.models import Notification, Question, Specialty
from portal import database
from portal.database import insert_new
from tests.conftest import SQLITE

pytestmark = pytest.mark.django_db

on_postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="the kept statement is PostgreSQL's")

SUBMITTED = datetime(2026, 12, 7, 9, 30, 1, 234567, tzinfo=UTC)


def new_question(patient, specialty, **extra) -> Question:
    fields = {
        "patient": patient,
        "specialty": specialty,
        "title": "Knee aches “after” running",
        "description": "It aches for a day.\nThen it stops.",
        "age": 40,
        "sex": "female",
        "medical_history": "",
        "current_medication": "Ibuprofen 200 mg",
        "is_urgent": True,
        "red_flags": ["chest pain", 'quote " and \\ backslash'],
        "submitted_at": SUBMITTED,
        "due_at": SUBMITTED,
        "clock_started_at": SUBMITTED,
        "clock_due_at": SUBMITTED,
        "submission_token": uuid.uuid4(),
    }
    return Question(**{**fields, **extra})


def stored(question: Question) -> dict:
    return model_to_dict(Question.objects.get(pk=question.pk), exclude=["id", "submission_token"])


@pytest.fixture
def inserts_compiled(monkeypatch):
    """How many INSERT statements Django's compiler builds."""
    built = []
    real = SQLInsertCompiler.as_sql

    def counted(self, *args, **kwargs):
        built.append(self.query.model)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(SQLInsertCompiler, "as_sql", counted)
    monkeypatch.setattr(database, "_insert_statements", {})
    return built


@on_postgresql
def test_a_row_is_stored_as_save_stores_it_and_the_statement_is_built_once(patient, specialty, inserts_compiled):
    by_save = new_question(patient, specialty)
    by_save.save(force_insert=True)
    assert inserts_compiled == [Question]

    kept = [new_question(patient, specialty), new_question(patient, specialty)]
    for question in kept:
        insert_new(question)

    assert inserts_compiled == [Question, Question], "the second new row was compiled again"
    for question in kept:
        assert question.pk is not None and question.pk != by_save.pk
        assert not question._state.adding and question._state.db == "default"
        assert stored(question) == stored(by_save)
        assert Question.objects.get(pk=question.pk).submission_token == question.submission_token


# Different in any two rows.
UNEQUAL = ["id", "dedupe_key", "created_at", "next_attempt_at"]


@on_postgresql
def test_defaults_and_auto_now_are_filled_in_as_by_save(patient, specialty, inserts_compiled):
    question = new_question(patient, specialty)
    insert_new(question)
    assert Question.objects.get(pk=question.pk).updated_at == question.updated_at is not None
    notification = Notification(to_email="p@example.com", kind="k", subject="s", body="b", dedupe_key="insert-new:1")
    insert_new(notification)

    row = Notification.objects.get(pk=notification.pk)
    assert row.status == notification.status and row.created_at == notification.created_at
    assert row.question_id is None and row.attempts == 0
    by_save = Notification(to_email="p@example.com", kind="k", subject="s", body="b", dedupe_key="insert-new:2")
    by_save.save()
    assert model_to_dict(row, exclude=UNEQUAL) == model_to_dict(
        Notification.objects.get(pk=by_save.pk), exclude=UNEQUAL
    )


@on_postgresql
def test_the_statement_goes_through_djangos_cursor_and_its_errors(patient, specialty, django_assert_num_queries):
    seen = []

    def wrapper(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    first = new_question(patient, specialty)
    insert_new(first)
    with connection.execute_wrapper(wrapper), django_assert_num_queries(1):
        insert_new(new_question(patient, specialty))
    assert seen[0].startswith('INSERT INTO "consultations_question"')

    # The same submission token twice: Django's IntegrityError, and the atomic block
    # around it is marked for rollback, as save() marks it.
    with transaction.atomic():
        with pytest.raises(IntegrityError):
            insert_new(new_question(patient, specialty, submission_token=first.submission_token))
        assert transaction.get_rollback()
    assert Question.objects.count() == 2


def test_elsewhere_and_with_receivers_save_itself_is_used(patient, specialty, inserts_compiled):
    """A receiver of pre_save or post_save must hear of the row: only save() sends them."""
    heard = []

    def receiver(sender, instance, **kwargs):
        heard.append(kwargs.get("created", "pre"))

    pre_save.connect(receiver, sender=Question, dispatch_uid="test-insert-new-pre")
    post_save.connect(receiver, sender=Question, dispatch_uid="test-insert-new-post")
    try:
        for _ in range(2):
            insert_new(new_question(patient, specialty))
    finally:
        pre_save.disconnect(dispatch_uid="test-insert-new-pre", sender=Question)
        post_save.disconnect(dispatch_uid="test-insert-new-post", sender=Question)
    assert heard == ["pre", True, "pre", True]
    assert inserts_compiled == [Question, Question]
    assert database._insert_statements == {}


@pytest.mark.django_db(databases=["default", SQLITE])
def test_on_sqlite_save_is_used(inserts_compiled):
    specialty = Specialty(name="Dermatology", slug="dermatology")
    insert_new(specialty, using=SQLITE)
    assert Specialty.objects.using(SQLITE).get().pk == specialty.pk
    assert inserts_compiled == [Specialty]
    assert database._insert_statements == {}


@on_postgresql
def test_a_primary_key_already_set_is_saved_by_save(patient, specialty, inserts_compiled):
    question = new_question(patient, specialty, id=987654)
    insert_new(question)
    assert Question.objects.filter(pk=987654).exists()
    assert database._insert_statements == {}


@on_postgresql
def test_a_model_with_its_own_save_is_saved_by_it(patient, specialty, inserts_compiled, monkeypatch):
    saved = []

    def own_save(self, *args, **kwargs):
        saved.append(self)
        return Model.save(self, *args, **kwargs)

    monkeypatch.setattr(Question, "save", own_save)
    question = new_question(patient, specialty)
    insert_new(question)
    assert saved == [question] and Question.objects.filter(pk=question.pk).exists()
    assert database._insert_statements == {}
