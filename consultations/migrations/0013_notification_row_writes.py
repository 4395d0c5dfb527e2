"""Fewer, smaller writes per e-mail sent (issue 17's outage catch-up).

Every e-mail costs its outbox row two updates: the claim (a lease and the attempt
count) and the mark (status "sent"). Both copied the whole row (about 700 bytes)
to a new page and added an entry to every index, so after an outage the writes,
not the mail server, set the pace.

1. The unique key on `dedupe_key` becomes a UniqueConstraint. As `unique=True` on
   the field, PostgreSQL also got a `varchar_pattern_ops` twin of the index for
   LIKE lookups, which no query makes and every insert and update paid for.
   On PostgreSQL the unique constraint is renamed and the twin dropped (no index
   is built: the outbox keeps every row, and a build would hold the table's lock
   for as long as it takes); elsewhere Django's own operations do it.
2. On PostgreSQL the table is filled to half of each page (fillfactor 50). The
   claim changes no indexed column, so it may be a HOT update (the new row
   version on the same page, no index entries) when the page has room for it:
   with half of each page free, a claim's rows all fit. The mark changes the
   status, which the pending index's condition reads, so it stays a full update.
   Measured on 50,000 rows claimed and marked 250 at a time (bench.outbox_writes;
   docs/benchmarks.md, "Outage catch-up, fifth round"): WAL per e-mail 2,879 ->
   1,364 bytes, the database's CPU for the two updates about halved. The price is
   disk: pages are filled to half, so the table settles near twice its rows' size.
   The setting applies to pages written from now on.
"""

from django.db import migrations, models

FILLFACTOR = 50
CONSTRAINT = "notification_dedupe_key_unique"
# The names migration 0001 gave them on PostgreSQL (unique=True on the field), for the way back.
FIELD_UNIQUE = "consultations_notification_dedupe_key_key"
FIELD_LIKE_INDEX = "consultations_notification_dedupe_key_1ff5daab_like"


class _ElsewhereThanPostgreSQL:
    """Django's operation on other databases; on PostgreSQL `_rename_in_place` does it."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class AlterFieldElsewhere(_ElsewhereThanPostgreSQL, migrations.AlterField):
    pass


class AddConstraintElsewhere(_ElsewhereThanPostgreSQL, migrations.AddConstraint):
    pass


def _table(apps, schema_editor) -> str:
    return apps.get_model("consultations", "Notification")._meta.db_table


def _rename_in_place(apps, schema_editor):
    """The field's unique constraint becomes CONSTRAINT by name, its LIKE twin goes."""
    if schema_editor.connection.vendor != "postgresql":
        return
    table = _table(apps, schema_editor)
    with schema_editor.connection.cursor() as cursor:
        found = schema_editor.connection.introspection.get_constraints(cursor, table)
    on_key = {name: info for name, info in found.items() if info["columns"] == ["dedupe_key"]}
    (unique,) = [name for name, info in on_key.items() if info["unique"] and not info["primary_key"]]
    quote = schema_editor.quote_name
    schema_editor.execute(f"ALTER TABLE {quote(table)} RENAME CONSTRAINT {quote(unique)} TO {quote(CONSTRAINT)}")
    for name in on_key:
        if name.endswith("_like"):
            schema_editor.execute(f"DROP INDEX {quote(name)}")


def _rename_back(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table, quote = _table(apps, schema_editor), schema_editor.quote_name
    schema_editor.execute(f"ALTER TABLE {quote(table)} RENAME CONSTRAINT {quote(CONSTRAINT)} TO {quote(FIELD_UNIQUE)}")
    schema_editor.execute(f"CREATE INDEX {quote(FIELD_LIKE_INDEX)} ON {quote(table)} (dedupe_key varchar_pattern_ops)")


def _set_fillfactor(fillfactor: int | None):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        table = schema_editor.quote_name(_table(apps, schema_editor))
        setting = f"SET (fillfactor = {int(fillfactor)})" if fillfactor else "RESET (fillfactor)"
        schema_editor.execute(f"ALTER TABLE {table} {setting}")

    return apply


class Migration(migrations.Migration):
    dependencies = [
        ("consultations", "0012_question_answered_idx"),
    ]

    operations = [
        AlterFieldElsewhere(
            model_name="notification",
            name="dedupe_key",
            field=models.CharField(max_length=200),
        ),
        AddConstraintElsewhere(
            model_name="notification",
            constraint=models.UniqueConstraint(fields=("dedupe_key",), name=CONSTRAINT),
        ),
        migrations.RunPython(_rename_in_place, _rename_back, elidable=False),
        migrations.RunPython(_set_fillfactor(FILLFACTOR), _set_fillfactor(None), elidable=False),
    ]
