"""`manage.py sla_sweep`: run one SLA sweep now (the same one Celery beat runs) and say what it did."""

from django.core.management.base import BaseCommand, CommandError

from consultations.levels import LEVELS
from consultations.sweep import run_sweep


class Command(BaseCommand):
    help = "Run the SLA sweep once: warn at-risk questions, escalate breached ones, print counts per transition."

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size", type=int, default=None, help="Questions per batch (default: SLA_SWEEP_BATCH_SIZE)."
        )

    def handle(self, *args, batch_size=None, **options):
        if batch_size is not None and batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        result = run_sweep(batch_size=batch_size)
        self.stdout.write(f"SLA sweep #{result.run_id}")
        for level in LEVELS:
            self.stdout.write(f"  {level.summary + ':':<20}{result.counts[level.counter]}")
        self.stdout.write(f"  {'errors:':<20}{result.errors}")
        for question_id, error in sorted(result.question_errors.items()):
            self.stdout.write(f"    question #{question_id}: {error}")
        if result.capped:
            self.stdout.write("  More questions are due than one sweep handles; the next sweep continues.")
