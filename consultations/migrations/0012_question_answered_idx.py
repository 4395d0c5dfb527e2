"""The answers' index also carries due_at and claimed_at (issue 17's growth figures).

The SLA dashboard's 30-day trend counts each day's answers and those within the
guarantee (first_answered_at against due_at), and the breach forecast takes the
median time from claim to answer over a week. With first_answered_at alone in
the index, both fetched every answered row from the table: about 100,000
database pages per dashboard request at 10^5 stored questions. With the other
two columns in the index they are index-only scans (about 1,000 pages).

On PostgreSQL the new index is built CONCURRENTLY, beside the old one, and the
old one dropped the same way, so patients can ask and doctors answer while a
large table is indexed; hence a non-atomic migration.
"""

from django.db import migrations, models

OLD = models.Index(fields=["first_answered_at"], name="question_first_answered_idx")
NEW = models.Index(fields=["first_answered_at", "due_at", "claimed_at"], name="question_answered_idx")


def _swap(add, remove):
    def apply(apps, schema_editor):
        model = apps.get_model("consultations", "Question")
        without_blocking_writes = {"concurrently": True} if schema_editor.connection.vendor == "postgresql" else {}
        schema_editor.add_index(model, add, **without_blocking_writes)
        schema_editor.remove_index(model, remove, **without_blocking_writes)

    return apply


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("consultations", "0011_question_status_statistics"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(_swap(NEW, OLD), _swap(OLD, NEW), elidable=False)],
            state_operations=[
                migrations.RemoveIndex(model_name="question", name=OLD.name),
                migrations.AddIndex(model_name="question", index=NEW),
            ],
        ),
    ]
