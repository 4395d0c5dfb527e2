"""The Celery application, configured from Django settings (CELERY_* names).

The beat schedule lists every periodic task; the SLA sweep's interval comes
from SLA_SWEEP_SECONDS, the outbox re-send's from NOTIFICATION_RESEND_SECONDS.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _configure_beat(sender, **kwargs):
    from django.conf import settings

    # The outbox safety net: how soon an e-mail whose queue message was lost goes out anyway.
    resend_seconds = float(settings.NOTIFICATION_RESEND_SECONDS)
    sender.conf.beat_schedule = {
        "sla-sweep": {
            "task": "consultations.tasks.run_sla_sweep",
            "schedule": float(settings.SLA_SWEEP_SECONDS),
            # A sweep that waited longer than one interval is superseded by the next.
            "options": {"expires": float(settings.SLA_SWEEP_SECONDS)},
        },
        "resend-pending-notifications": {
            "task": "consultations.tasks.resend_pending_notifications",
            "schedule": resend_seconds,
            "options": {"expires": resend_seconds},
        },
        # Not in the sweep: a gap in duty cover is told to staff once, on its own clock.
        "duty-cover-check": {
            "task": "consultations.tasks.alert_uncovered_specialties",
            "schedule": float(settings.DUTY_COVER_CHECK_SECONDS),
            "options": {"expires": float(settings.DUTY_COVER_CHECK_SECONDS)},
        },
        # Question-first drafts (typed before signing up) are deleted once past their age.
        "purge-question-drafts": {
            "task": "consultations.tasks.purge_question_drafts",
            "schedule": 900.0,
            "options": {"expires": 900.0},
        },
        "articles-flag-overdue-reviews": {
            "task": "articles.tasks.flag_overdue_reviews",
            "schedule": 3600.0,
            "options": {"expires": 3600.0},
        },
        "articles-flush-view-counts": {
            "task": "articles.tasks.flush_view_counts",
            "schedule": 60.0,
            "options": {"expires": 60.0},
        },
    }
