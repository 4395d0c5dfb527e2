"""`manage.py seed_demo`: load the demo data (idempotent); see portal/demo.py, which seeds
consultations/demo_content/ (consultations/demo.py) and articles/demo_content/ (articles/demo.py)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from consultations import demo, sla
from portal.demo import seed_demo

NOUNS = {
    "specialties": ("specialty", "specialties"),
    "users": ("login", "logins"),
    "doctors": ("doctor profile", "doctor profiles"),
    "groups": ("staff group", "staff groups"),
}


def _noun(what: str, n: int) -> str:
    one, many = NOUNS.get(what, (what, what))
    return one if n == 1 else many


class Command(BaseCommand):
    help = (
        "Load the demo: 8 specialties, doctors, 3 patients, a staff login and questions in every state of the "
        "answer guarantee. Safe to run again: nothing is duplicated, and questions someone has worked on are left "
        "alone; untouched demo questions whose SLA state has drifted (an 'on track' example from yesterday) are "
        "moved back to the state they demonstrate. One unclaimed question uses a demo-only short clock: it turns "
        "at risk about a minute after seeding and is breached about three minutes after, so the SLA sweep can be "
        "watched escalating it. Each run after it reached its warning point restarts it (or adds a fresh one if a "
        "doctor has taken it). Every demo login uses the password 'portal-demo'."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--allow-production",
            action="store_true",
            help="Load the demo even with PRODUCTION=true (it creates a superuser with a published password).",
        )

    def handle(self, *args, **options):
        if settings.PRODUCTION and not options["allow_production"]:
            raise CommandError(
                "Refusing to load the demo with PRODUCTION=true: it creates staff@example.com, a superuser whose "
                "password is published. Use --allow-production only on a throwaway demo server."
            )
        result = seed_demo()
        now = timezone.now()
        created = ", ".join(f"{n} {_noun(what, n)}" for what, n in result.created.items()) or "nothing new"
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        self.stdout.write(
            f"  This run: {created}; questions {result.questions_created} created, "
            f"{result.questions_refreshed} refreshed, {result.questions_kept} left as someone left them."
        )
        states = demo.state_counts(now)
        self.stdout.write(
            "  Demo questions now: "
            + ", ".join(f"{states.get(state, 0)} {label.lower()}" for state, label in sla.STATE_LABELS.items())
            + "."
        )
        self.stdout.write(f"  Articles: {result.articles} demo articles in place.")
        soon = result.breaching_soon
        if soon is not None and soon.clock_warn_at and soon.clock_due_at:
            self.stdout.write(
                f'  Watch the guarantee engine: question #{soon.pk} "{soon.title}" turns at risk at '
                f"{soon.clock_warn_at:%H:%M:%S} UTC and is breached at {soon.clock_due_at:%H:%M:%S} UTC."
            )
        self.stdout.write(f"Demo logins (password {demo.DEMO_PASSWORD}):")
        self.stdout.write(f"  patient  {demo.PATIENT_EMAIL}")
        self.stdout.write(f"  doctor   {demo.DOCTOR_EMAIL}   (doctors' workbench: /doctor/)")
        self.stdout.write(f"  staff    {demo.STAFF_EMAIL}    (staff admin: /admin/, SLA dashboard: /staff/sla/)")
