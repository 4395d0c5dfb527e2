"""What one question sent costs the database (issue 17, asking under load).

Counts and kinds of statements, never times: each round trip the ask POST drops
is measured in bench/ask_profile.py, and these keep it dropped.
"""

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from consultations import cover_cache, services
from consultations.models import Notification, Question, QuestionDraft, Specialty
from tests.consultations.test_question_first import ASK_URL, DESCRIPTION, LOGIN_URL, TITLE
from tests.factories import PASSWORD, DoctorFactory, UserFactory

pytestmark = pytest.mark.django_db


def question_data(specialty, **extra) -> dict:
    return {
        "specialty": str(specialty.pk),
        "title": "Knee aches after running",
        "description": "The inside of my left knee aches for a day after a 5 km run.",
        "age": "40",
        "sex": "female",
        "consent": "on",
        "submission_token": str(uuid.uuid4()),
        **extra,
    }


def sent(client, data) -> list[str]:
    """The SQL of one ask POST (which must succeed)."""
    with CaptureQueriesContext(connection) as captured:
        response = client.post(ASK_URL, data)
    assert response.status_code == 302, response.content[:500]
    return [query["sql"] for query in captured.captured_queries]


@pytest.mark.django_db(transaction=True)  # no test transaction around it: its own BEGIN shows
def test_a_question_sent_is_one_transaction_without_savepoints_and_one_draft_delete(
    client, patient, specialty, settings
):
    settings.DB_PREPARED_STATEMENTS = True
    client.force_login(patient)
    statements = sent(client, question_data(specialty))

    question = Question.objects.get()
    assert Notification.objects.filter(kind="question_received", question=question).count() == 1
    assert not [sql for sql in statements if "SAVEPOINT" in sql.upper()]
    # The question and its confirmation e-mail: one BEGIN ... COMMIT, nothing nested.
    begin = statements.index("BEGIN")
    assert statements[begin + 1].startswith('INSERT INTO "consultations_question"')
    assert statements[begin + 2].startswith('INSERT INTO "consultations_notification"')
    drafts = [sql for sql in statements if "questiondraft" in sql]
    if connection.vendor == "postgresql":  # one prepared DELETE, outside Django's query log
        assert drafts == []
        assert [sql for sql in _prepared_statements() if sql.startswith("DELETE")] == [OWN_DRAFTS_DELETE]
    else:
        assert len(drafts) == 1 and drafts[0].startswith("DELETE"), drafts


OWN_DRAFTS_DELETE = 'DELETE FROM "consultations_questiondraft" WHERE "owner_id" = $1'
OWN_DRAFT_FOUND = 'SELECT 1 FROM "consultations_questiondraft" WHERE "owner_id" = $1 AND "saved_at" > $2 LIMIT 1'


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def _needs_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")


def test_the_form_of_a_patient_without_a_draft_asks_one_prepared_statement(client, patient, settings):
    """Issue 17: the ORM's draft lookup was an eighth of the form page's CPU under load."""
    _needs_postgresql()
    settings.DB_PREPARED_STATEMENTS = True
    client.force_login(patient)
    with CaptureQueriesContext(connection) as captured:
        assert client.get(ASK_URL).status_code == 200
    assert not [query["sql"] for query in captured.captured_queries if "questiondraft" in query["sql"]]
    assert OWN_DRAFT_FOUND in _prepared_statements()


def test_a_patients_own_draft_is_still_found_and_only_theirs(client, patient, other_patient, specialty, settings):
    settings.DB_PREPARED_STATEMENTS = True
    QuestionDraft.objects.create(token_hash="a" * 64, owner=other_patient, title="Theirs", description="Theirs")
    client.force_login(patient)
    assert "Mine, kept" not in client.get(ASK_URL).content.decode()
    assert "Theirs" not in client.get(ASK_URL).content.decode()
    QuestionDraft.objects.create(token_hash="b" * 64, owner=patient, title="Mine, kept", description="Mine")
    assert "Mine, kept" in client.get(ASK_URL).content.decode()
    # An expired one is not shown.
    QuestionDraft.objects.filter(owner=patient).update(saved_at=timezone.now() - timedelta(days=30))
    assert "Mine, kept" not in client.get(ASK_URL).content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_lost_prepared_statement_neither_hides_a_draft_nor_keeps_one(client, patient, specialty, settings, caplog):
    _needs_postgresql()
    settings.DB_PREPARED_STATEMENTS = True
    client.force_login(patient)
    client.get(ASK_URL)
    QuestionDraft.objects.create(token_hash="b" * 64, owner=patient, title="Mine, kept", description="Mine")
    connection.connection.pgconn.exec_(b"DEALLOCATE ALL")  # behind psycopg's back, as a pooler might
    assert "Mine, kept" in client.get(ASK_URL).content.decode()  # the ORM's lookup, on a new connection
    assert "prepared statement is gone" in caplog.text

    sent(client, question_data(specialty))
    connection.connection.pgconn.exec_(b"DEALLOCATE ALL")
    QuestionDraft.objects.create(token_hash="c" * 64, owner=patient, title="Another", description="Another")
    caplog.clear()
    sent(client, question_data(specialty))
    assert "prepared statement is gone" in caplog.text  # the DELETE's, which the ORM's then did
    assert QuestionDraft.objects.count() == 0


def test_without_prepared_statements_the_drafts_are_still_found_and_deleted(client, patient, specialty, settings):
    settings.DB_PREPARED_STATEMENTS = False
    client.force_login(patient)
    QuestionDraft.objects.create(token_hash="b" * 64, owner=patient, title="Mine, kept", description="Mine")
    assert "Mine, kept" in client.get(ASK_URL).content.decode()
    sent(client, question_data(specialty))
    assert QuestionDraft.objects.count() == 0
    if connection.vendor == "postgresql":
        assert _prepared_statements() == []


def test_a_draft_typed_before_login_is_gone_once_the_question_is_sent(client, patient, specialty):
    """Sent straight after login (no look at the form in between, as a replayed or
    scripted post would): the session's unclaimed draft goes as well."""
    client.post(ASK_URL, {"specialty": str(specialty.pk), "title": TITLE, "description": DESCRIPTION})
    client.post(LOGIN_URL, {"username": patient.email, "password": PASSWORD})
    assert QuestionDraft.objects.get().owner is None

    sent(client, question_data(specialty, title=TITLE, description=DESCRIPTION))

    assert QuestionDraft.objects.count() == 0
    assert Question.objects.get().title == TITLE


def test_another_patients_draft_survives_a_question_sent(client, patient, other_patient, specialty):
    QuestionDraft.objects.create(token_hash="a" * 64, owner=other_patient, title="Theirs", description="Theirs")
    QuestionDraft.objects.create(token_hash="b" * 64, owner=patient, title="Mine", description="Mine")
    QuestionDraft.objects.create(token_hash="c" * 64, title="Nobody's", description="Another session's")
    client.force_login(patient)

    sent(client, question_data(specialty))

    assert sorted(QuestionDraft.objects.values_list("title", flat=True)) == ["Nobody's", "Theirs"]


def test_a_form_error_still_claims_the_draft_typed_before_login(client, patient, specialty):
    client.post(ASK_URL, {"specialty": str(specialty.pk), "title": TITLE, "description": DESCRIPTION})
    client.post(LOGIN_URL, {"username": patient.email, "password": PASSWORD})

    response = client.post(ASK_URL, question_data(specialty, age=""))

    assert response.status_code == 200 and Question.objects.count() == 0
    assert QuestionDraft.objects.get().owner == patient


def test_showing_the_ask_form_reads_the_specialties_once_without_a_server_side_cursor(
    client, patient, specialty, other_specialty
):
    """Once for the duty notes and the choices together (the kept roster of
    consultations.cover_cache), as a plain SELECT: a server-side cursor is three round
    trips (DECLARE, FETCH, CLOSE). The next showing takes them from the cache."""
    client.force_login(patient)

    def specialty_reads():
        with CaptureQueriesContext(connection) as captured:
            page = client.get(ASK_URL)
        assert page.status_code == 200
        assert f'<option value="{other_specialty.pk}">{other_specialty.name}</option>' in page.content.decode()
        statements = [query["sql"] for query in captured.captured_queries]
        assert not [sql for sql in statements if sql.startswith("DECLARE")]
        return [sql for sql in statements if sql.startswith("SELECT") and 'FROM "consultations_specialty"' in sql]

    assert len(specialty_reads()) == 1
    assert specialty_reads() == []


def test_doctors_on_duty_are_read_once_for_a_new_question(patient, specialty):
    """The candidates' query already loads each doctor and their account: the doctors on
    duty are not read again by id before their e-mails are queued. (The duty rule's kept
    answer, consultations.cover_cache, is already there, as after any showing of the form.)"""
    now = timezone.now()
    until = now + timedelta(days=1)
    for name in ("dana", "eryk"):
        DoctorFactory(user=UserFactory(email=f"{name}@example.com"), specialties=[specialty], on_duty_until=until)
    assert cover_cache.anyone_on_duty_now(specialty.pk, now)
    with CaptureQueriesContext(connection) as captured:
        services.submit_question(
            patient=patient, specialty=specialty, title="Lump", description="Tender.", age=40, sex="female", now=now
        )

    reads = [q["sql"] for q in captured.captured_queries if q["sql"].startswith('SELECT "consultations_doctorprofile"')]
    assert len(reads) == 1, reads
    told = Notification.objects.filter(kind="new_question").values_list("to_email", flat=True)
    assert sorted(told) == ["dana@example.com", "eryk@example.com"]


def test_the_ask_forms_duty_notes_cost_the_same_queries_for_any_number_of_doctors(client, patient, specialty):
    """The notes read only the rule's fields of every candidate (consultations.duty
    RULE_FIELDS): a field left out would cost a query per doctor. (Counted when the
    notes are worked out, not when they come from consultations.cover_cache.)"""
    client.force_login(patient)

    def statements() -> int:
        cover_cache.forget()
        with CaptureQueriesContext(connection) as captured:
            assert client.get(ASK_URL).status_code == 200
        return len(captured)

    DoctorFactory(user=UserFactory(email="one@example.com"), specialties=[specialty])
    statements()  # the first page after login also writes the session
    with_one = statements()
    until = timezone.now() + timedelta(days=1)
    for n in range(4):
        DoctorFactory(user=UserFactory(email=f"more{n}@example.com"), specialties=[specialty], on_duty_until=until)
    assert statements() == with_one


def test_a_question_sent_finds_its_specialty_in_the_kept_roster(client, patient, specialty):
    client.force_login(patient)
    client.get(ASK_URL)  # the roster is kept (consultations.cover_cache)

    statements = sent(client, question_data(specialty))

    assert not [sql for sql in statements if 'FROM "consultations_specialty"' in sql]
    assert Question.objects.get().specialty == specialty


def test_a_specialty_the_kept_roster_does_not_list_is_looked_up(client, patient, specialty):
    client.force_login(patient)
    client.get(ASK_URL)
    [added] = Specialty.objects.bulk_create([Specialty(name="Neurology", slug="neurology")])  # no signal

    sent(client, question_data(added))

    assert Question.objects.get().specialty == added


def test_an_unknown_specialty_is_still_refused(client, patient, specialty):
    client.force_login(patient)
    client.get(ASK_URL)
    response = client.post(ASK_URL, {**question_data(specialty), "specialty": "999999"})
    assert response.status_code == 200 and "specialty" in response.context["form"].errors
    assert not Question.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_connection_dropped_before_the_draft_check_makes_it_look_the_normal_way(patient, settings, caplog):
    """The form page's first query is the prepared draft check: it doubles as the
    connection's health check (portal.database.read_as_health_check, no `SELECT 1`
    first). A connection the server dropped is reopened, and the page looks for the
    draft the normal way instead of taking "no answer" for "no draft"."""
    from consultations import drafts
    from tests.db_faults import admin_connection, own_backend_pid

    _needs_postgresql()
    settings.DB_PREPARED_STATEMENTS = True
    with admin_connection() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [own_backend_pid()])
    assert drafts._may_have_own(patient, timezone.now()) is True
    assert "Database connection dropped" in caplog.text
    assert drafts._may_have_own(patient, timezone.now()) is False  # a new connection: surely no draft


@pytest.mark.django_db(transaction=True)
def test_a_statement_name_another_client_took_makes_the_draft_check_look_the_normal_way(patient, settings, caplog):
    """Behind a pooler that does not follow prepared statements, psycopg's name for this
    statement may already be taken on the server connection: no answer, not an error."""
    from consultations import drafts

    _needs_postgresql()
    settings.DB_PREPARED_STATEMENTS = True
    connection.close()
    connection.ensure_connection()
    connection.connection.pgconn.exec_(b"PREPARE _pg3_0 AS SELECT 1")  # as another client would have
    assert drafts._may_have_own(patient, timezone.now()) is True
    assert "not ours" in caplog.text
    assert drafts._may_have_own(patient, timezone.now()) is False  # a new connection
