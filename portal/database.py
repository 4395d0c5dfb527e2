"""Telling a database blip from a bug or a bad row.

A lost connection (a restarted or failed-over server, a killed backend, a
network drop), a serialization failure, a deadlock, a lock or statement
timeout: none of these says anything about the data, and the same work
succeeds when it is simply tried again. Django raises them as
`OperationalError` (PostgreSQL error classes 08, 40, 53, 55P03, 57 and 58) or
`InterfaceError` (the connection was already closed). A bad row raises
something else: an `IntegrityError` or `DataError`, or an error of our own code.

`TRANSIENT_DATABASE_ERRORS` is the pair of classes to catch; `is_transient`
looks at the SQLSTATE inside them where the difference matters (the sweep,
the outbox).

Also here: `update_returning`, an UPDATE that returns its rows in one round trip
(the outbox's single claim, the sweep's batch marks), and `claim_returning`, its
batch form that skips rows other transactions hold (the outbox's batch claim): the
one place that builds SQL from the ORM's private query classes. And `run_prepared`:
a hot path's one statement, prepared once per connection on PostgreSQL; and
`insert_rows`, many rows at once, on PostgreSQL streamed with COPY
(the sweep's escalations, credits and e-mails); and `insert_new`, a new row's
INSERT as the ORM writes it, written once per process (the ask form's question and
its confirmation e-mail).
"""

import copy
import json
import logging
import sqlite3
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from django.conf import settings
from django.db import (
    DEFAULT_DB_ALIAS,
    InterfaceError,
    OperationalError,
    ProgrammingError,
    connection,
    connections,
    router,
    transaction,
)
from django.db.models import JSONField, Model, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.fields import AutoFieldMixin
from django.db.models.signals import post_save, pre_save
from django.db.models.sql import InsertQuery, UpdateQuery

logger = logging.getLogger(__name__)
T = TypeVar("T")

# The classes a passing blip is raised as (some of their instances are not blips:
# see is_transient).
TRANSIENT_DATABASE_ERRORS = (OperationalError, InterfaceError)

# SQLSTATE classes (and codes) of PostgreSQL errors that go away on their own.
TRANSIENT_SQLSTATES = ("08", "40", "53", "55P03", "57", "58")


def is_transient(error: BaseException) -> bool:
    """True for a database error that retrying the same work can cure."""
    if isinstance(error, InterfaceError):
        return True
    if not isinstance(error, OperationalError):
        return False
    # psycopg's own error, kept by Django as the cause, names the SQLSTATE. A
    # connection that died on the client side has none; neither has SQLite
    # ("database is locked").
    sqlstate = getattr(error.__cause__, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith(TRANSIENT_SQLSTATES)


def drop_broken_connection(using: str = DEFAULT_DB_ALIAS) -> None:
    """After a transient error outside a transaction: close the connection if the server
    dropped it, so the next query opens a fresh one (Django would otherwise reuse the
    dead one). Inside `atomic()` nothing is done: the outermost block rolls back first."""
    connection = connections[using]
    if not connection.in_atomic_block:
        connection.close_if_unusable_or_obsolete()


def read_as_health_check(read: Callable[[], T], using: str = DEFAULT_DB_ALIAS) -> T | None:
    """Run `read` (read-only) as a request's first use of its connection, without the
    separate health check Django runs first (`SELECT 1`, CONN_HEALTH_CHECKS): the read is
    the check. If the connection turns out dead (a transient error), it is closed, so the
    request's next query opens a new one, and None is returned: the caller then goes its
    normal way. Inside a transaction the usual check stands."""
    connection = connections[using]
    if connection.in_atomic_block:
        return read()
    connection.health_check_done = True
    try:
        return read()
    except TRANSIENT_DATABASE_ERRORS as error:
        logger.warning("Database connection dropped (%s: %s); opening a new one", type(error).__name__, error)
        connection.close()
        return None


def retry_transient(operation: Callable[[], T], *, within: float, what: str, using: str = DEFAULT_DB_ALIAS) -> T:
    """Run `operation`; after a transient database error, reconnect and run it again,
    with growing pauses, for up to `within` seconds; then the last error is raised.
    The operation must be safe to repeat. Inside a transaction nothing is retried:
    the transaction is lost anyway."""
    deadline = time.monotonic() + within
    pause = 0.05
    while True:
        try:
            return operation()
        except (OperationalError, InterfaceError) as error:
            if not is_transient(error) or connections[using].in_atomic_block or time.monotonic() + pause > deadline:
                raise
            logger.warning("Database error while %s, retrying: %s: %s", what, type(error).__name__, error)
            time.sleep(pause)
            drop_broken_connection(using)
            pause = min(pause * 2, 1.0)


def update_returning(
    rows: QuerySet, values: dict, returning: tuple[str, ...], first: tuple[QuerySet, dict] | None = None
) -> list[tuple] | None:
    """`rows.update(**values)` in one statement that also returns the `returning`
    columns of each row it changed (UPDATE ... RETURNING); None where the database
    cannot (SQLite before 3.35), so the caller takes a portable path. `first`, an
    (other rows, their values) update, runs in the same statement on PostgreSQL (a
    data-modifying WITH; the two must touch different rows); elsewhere None is
    returned and nothing is written.

    The ORM's private UpdateQuery and compiler, kept for what users feel after an
    outage: a claim in one round trip instead of two (issue 17; BENCH_ONLY=catchup
    measures the send rate). The outbox claims single e-mails with it, the sweep marks
    its batches with it, and `claim_returning` builds on it."""
    connection = connections[rows.db]
    if first is not None and connection.vendor != "postgresql":
        return None
    if not (
        connection.vendor == "postgresql" or (connection.vendor == "sqlite" and sqlite3.sqlite_version_info >= (3, 35))
    ):
        return None
    sql, params = _update_sql(rows, values)
    if first is not None:
        before_sql, before_params = _update_sql(*first)
        sql, params = f"WITH marked_first AS ({before_sql}) {sql}", (*before_params, *params)
    model = rows.model
    columns = ", ".join(connection.ops.quote_name(model._meta.get_field(name).column) for name in returning)
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} RETURNING {columns}", params)
        return cursor.fetchall()


def claim_returning(
    candidates: QuerySet, values: dict, returning: tuple[str, ...], first: tuple[QuerySet, dict] | None = None
) -> list[tuple] | None:
    """PostgreSQL: take the rows of `candidates` (filtered, ordered and sliced to a
    batch) that no other transaction holds right now, `update(**values)` them and
    return their `returning` columns, in one statement: a `SELECT ... FOR UPDATE SKIP
    LOCKED` feeds the UPDATE, so concurrent claimers get disjoint rows without waiting
    for each other (a row another claimer has just changed is re-checked against
    `candidates`' conditions before it is taken). `first`, as in `update_returning`,
    runs in the same statement (it must not touch the candidates). None elsewhere:
    the caller takes a portable path.

    Kept for issue 17: claiming the outbox's e-mails a batch per statement instead of
    one per statement is what lets a backlog drain at the mail server's pace."""
    connection = connections[candidates.db]
    if connection.vendor != "postgresql":
        return None
    model = candidates.model
    picked_sql, picked_params = candidates.values_list("pk").query.get_compiler(candidates.db).as_sql()
    rows = model._default_manager.using(candidates.db).filter(pk__in=RawSQL("SELECT * FROM claim_picked", ()))
    sql, params = _update_sql(rows, values)
    with_sql = f"claim_picked AS ({picked_sql} FOR UPDATE SKIP LOCKED)"
    with_params = tuple(picked_params)
    if first is not None:
        before_sql, before_params = _update_sql(*first)
        with_sql, with_params = f"marked_first AS ({before_sql}), {with_sql}", (*before_params, *with_params)
    columns = ", ".join(connection.ops.quote_name(model._meta.get_field(name).column) for name in returning)
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {with_sql} {sql} RETURNING {columns}", (*with_params, *params))
        return cursor.fetchall()


def insert_rows(model, rows: list[dict], using: str = DEFAULT_DB_ALIAS) -> list[int] | None:
    """INSERT `rows` (dicts with the same keys, the model's field attnames) and return
    their primary keys in the order given; None where the database cannot return them
    (SQLite before 3.35), the rows written all the same. A field left out gets its
    default, as in bulk_create.

    On PostgreSQL the rows are streamed with COPY, PostgreSQL's own way of taking many
    rows: no statement to plan per row and no document to unpack (the sweep writes
    10^5 escalations, credits and e-mails after an outage; until session 15 they went
    as one JSON document through `jsonb_to_recordset`, and a sweep of 1,000 breaches
    spent a tenth of its time longer on it: docs/benchmarks.md, "Tenth pass"). The ids
    are drawn from the table's sequence first, in one statement (a model whose key is
    not an auto id takes bulk_create). Values are what the columns take (strings,
    numbers, booleans, None, aware datetimes; a JSONField's value as the field encodes
    it), checked before anything is sent: any other value (a naive datetime, a list for
    a text column) or one the JSON encoder refuses raises TypeError and writes nothing.
    Other databases take bulk_create."""
    connection = connections[using]
    if _copies_rows(connection) and isinstance(model._meta.pk, AutoFieldMixin):
        return _insert_by_copy(model, rows, connection)
    created = model._default_manager.using(using).bulk_create([model(**row) for row in rows])
    ids = [instance.pk for instance in created]
    return None if None in ids else ids


def _copies_rows(connection) -> bool:
    return connection.vendor == "postgresql"


def _insert_by_copy(model, rows: list[dict], connection) -> list[int]:
    """insert_rows on PostgreSQL. The statement is built from the model through the
    documented _meta API (get_fields, db_table). The COPY goes through the psycopg cursor
    itself, so Django's execute wrappers see the ids' SELECT but not the COPY; and drawing
    ids with nextval() needs USAGE on the table's sequence, which a role granted only
    INSERT on the table lacks."""
    if not rows:
        return []
    given, defaults = [], []
    for field in model._meta.get_fields():
        if field.concrete and not field.primary_key:
            (given if field.attname in rows[0] else defaults).append(field)
    default_values = tuple(field.get_db_prep_save(field.get_default(), connection) for field in defaults)
    values = list(map(_CopyValues(given), rows))  # a refused value raises here, before the COPY
    quote = connection.ops.quote_name
    table, pk = quote(model._meta.db_table), model._meta.pk
    columns = ", ".join(quote(field.column) for field in (pk, *given, *defaults))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [table, pk.column, len(rows)],
        )
        ids = sorted(row[0] for row in cursor.fetchall())
        # Django's own error classes (IntegrityError, OperationalError...), as execute() raises them.
        with connection.wrap_database_errors, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for pk_value, row in zip(ids, values, strict=True):
                copy.write_row((pk_value, *row, *default_values))
    return ids


class _CopyValues:
    """Turns a row (a dict) into its values for COPY, in the order of `fields`: a JSONField's
    value encoded as the field does; any other value must be a string, a number, a boolean,
    None or an aware datetime (what the JSON document took), or TypeError is raised before
    anything is sent: COPY would write other values as text of its own making."""

    def __init__(self, fields: list):
        self.names = [field.attname for field in fields]
        self.json = [(n, field.encoder) for n, field in enumerate(fields) if isinstance(field, JSONField)]
        self.plain = [n for n, field in enumerate(fields) if not isinstance(field, JSONField)]

    def __call__(self, row: dict) -> list:
        values = [row[name] for name in self.names]
        for n, encoder in self.json:
            if values[n] is not None:
                values[n] = json.dumps(values[n], cls=encoder)
        for n in self.plain:
            value = values[n]
            if value is None or isinstance(value, _PLAIN_VALUES):
                continue
            if not isinstance(value, datetime) or value.tzinfo is None:
                raise TypeError(
                    f"insert_rows cannot send {value!r} to {self.names[n]}: "
                    "not a string, number, boolean or aware datetime"
                )
        return values


# bool is an int; a TextChoices value is a str.
_PLAIN_VALUES = (str, int, float)


def _update_sql(rows: QuerySet, values: dict) -> tuple[str, tuple]:
    query = rows.query.chain(UpdateQuery)
    query.add_update_values(values)
    sql, params = query.get_compiler(rows.db).as_sql()
    return sql, tuple(params)


# A psycopg prepare_threshold no query reaches by repetition: only `prepare=True` prepares.
ONLY_WHEN_ASKED = sys.maxsize


def run_prepared(sql: str, values: tuple) -> list[tuple] | None:
    """Run one hot statement on the default connection and return its rows ([] for a
    statement that returns none); None on a database other than PostgreSQL, so the
    caller takes its normal way. With settings.DB_PREPARED_STATEMENTS it is prepared
    once per connection (server-side binding): PostgreSQL then skips parsing and planning it
    on each request, and the ORM's query building is skipped too. Django prepares nothing by
    default, for poolers that cannot follow prepared statements (PgBouncer before 1.22, or
    without max_prepared_statements): such a deployment turns the setting off.

    Django opens psycopg connections with prepare_threshold None, under which psycopg
    ignores `prepare=True` too; the threshold is lifted for this statement alone, so no
    other query on the connection is ever prepared. Should the server lose the statement
    behind psycopg's back (a pooler that does not follow prepared statements, a DISCARD
    ALL), psycopg would ask for it on every later request: the connection is closed
    instead and None returned, so the caller takes its normal way (which reconnects). The
    same for a name another client of the same server connection prepared first. A pooler
    in transaction mode that does not follow prepared statements can still hand one
    client's statement to another under the same name: behind one, DB_PREPARED_STATEMENTS
    must be off (docs/deploy.md)."""
    if connection.vendor != "postgresql":
        return None
    import psycopg

    if not settings.DB_PREPARED_STATEMENTS:
        with connection.cursor() as cursor:
            cursor.execute(sql, values)
            return cursor.fetchall() if cursor.description else []
    connection.ensure_connection()
    raw = connection.connection
    threshold = raw.prepare_threshold
    if threshold is None:
        raw.prepare_threshold = ONLY_WHEN_ASKED
    try:
        with connection.wrap_database_errors, psycopg.Cursor(raw) as cursor:
            cursor.execute(sql, values, prepare=True)
            return cursor.fetchall() if cursor.description else []
    except ProgrammingError as error:
        lost = (psycopg.errors.InvalidSqlStatementName, psycopg.errors.DuplicatePreparedStatement)
        if not isinstance(error.__cause__, lost) or connection.in_atomic_block:
            raise
        logger.warning("A prepared statement is gone from the server or not ours (%s); reconnecting", error)
        connection.close()
        return None
    finally:
        raw.prepare_threshold = threshold


# The INSERT statement of each model's new rows (see insert_new), per database alias.
_insert_statements: dict[tuple, tuple[str, list, list]] = {}


def _saves_its_own_way(model) -> bool:
    """A model whose saving code differs from Django's own (an override of save() or of
    the methods it calls): only save() runs that code."""
    return any(getattr(model, name) is not getattr(Model, name) for name in ("save", "save_base", "_save_table"))


def insert_new(instance, using: str | None = None) -> None:
    """Save a new model instance, as `instance.save(force_insert=True)` would, with the
    INSERT statement Django's compiler wrote for the model's first new row kept for the
    next ones: building it (the InsertQuery and its compiler) for the ask form's
    question and its confirmation e-mail was 3 % of the CPU of showing the form and
    sending it (issue 17; instructions counted, docs/benchmarks.md).

    Each value still goes through its field's pre_save and get_db_prep_save, the
    statement through Django's cursor (its execute wrappers, the query log, errors
    as Django's), and the returned id is set on the instance as save() sets it; the
    database is the router's for writing, as for save(). Model.save() itself is used
    whenever the kept statement could differ from what it would send, or would skip
    something it does: a database other than PostgreSQL, a primary key already set, a
    parent model, an order_with_respect_to, a column the database fills in other than
    the id (returned values would need their converters), a value that is an
    expression (a database default included), a field with its own placeholder, a
    save() of the model's own, or any pre_save or post_save receiver for the model
    (the signals are sent only by save())."""
    model = type(instance)
    using = using or router.db_for_write(model, instance=instance)
    connection = connections[using]
    meta = model._meta
    if (
        connection.vendor != "postgresql"
        or meta.parents
        or meta.order_with_respect_to
        or meta.db_returning_fields != [meta.auto_field]
        or instance._is_pk_set(meta)
        or _saves_its_own_way(model)
        or pre_save.has_listeners(model)
        or post_save.has_listeners(model)
    ):
        instance.save(force_insert=True, using=using)
        return
    instance._prepare_related_fields_for_save(operation_name="save")
    kept = _insert_statements.get((model, using))
    if kept is None:
        fields = [field for field in meta.local_concrete_fields if not field.generated and field is not meta.auto_field]
        if any(hasattr(field, "get_placeholder") for field in fields):
            instance.save(force_insert=True, using=using)
            return
        kept = (None, fields, meta.db_returning_fields)
    sql, fields, returning = kept
    given = [field.pre_save(instance, add=True) for field in fields]
    if any(hasattr(value, "resolve_expression") for value in given):
        instance.save(force_insert=True, using=using)
        return
    values = [field.get_db_prep_save(value, connection=connection) for field, value in zip(fields, given, strict=True)]
    if sql is None:
        query = InsertQuery(model)
        # A copy: the compiler's own pre_save (a new auto_now time) must not reach the instance.
        query.insert_values(fields, [copy.copy(instance)])
        compiler = query.get_compiler(using=using)
        compiler.returning_fields = returning
        [(sql, params)] = compiler.as_sql()
        if len(params) != len(values):  # a statement that is not one placeholder per field
            instance.save(force_insert=True, using=using)
            return
        _insert_statements[(model, using)] = (sql, fields, returning)
    with transaction.mark_for_rollback_on_error(using), connection.cursor() as cursor:
        cursor.execute(sql, values)
        row = cursor.fetchone()
    for value, field in zip(row, returning, strict=True):
        setattr(instance, field.attname, value)
    instance._state.adding = False
    instance._state.db = using
