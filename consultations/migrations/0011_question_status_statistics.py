"""A finer statistics sample for Question.status (PostgreSQL only).

ANALYZE samples 300 x the statistics target rows: 30,000 by default. With
10^7 stored questions and about a thousand open ones, that sample rarely holds
an open question, so PostgreSQL estimates "one row" for every open-queue filter
and picks plans that visit a buffer per open row and join per row (the doctor
queue read ten times the database pages at 10^7 as at 10^5, issue 17). A
target of 1,000 samples 300,000 rows: the open statuses show up in the
most-common values and the estimates follow the open questions again.
"""

from django.db import migrations

TARGET = 1000


def _set_target(target):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        table = schema_editor.quote_name(apps.get_model("consultations", "Question")._meta.db_table)
        schema_editor.execute(f"ALTER TABLE {table} ALTER COLUMN status SET STATISTICS {int(target)}")

    return apply


class Migration(migrations.Migration):
    dependencies = [
        ("consultations", "0010_question_draft"),
    ]

    operations = [
        migrations.RunPython(_set_target(TARGET), _set_target(-1), elidable=False),
    ]
