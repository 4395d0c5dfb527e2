"""The Celery application, configured from Django settings (CELERY_* names).

The beat schedule lists every periodic task; the SLA sweep's interval comes
from SLA_SWEEP_SECONDS, the outbox re-send's from NOTIFICATION_RESEND_SECONDS.
"""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_process_init
from django.db import close_old_connections

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


@task_prerun.connect
@task_postrun.connect
def _close_old_database_connections(task=None, **kwargs):
    """A worker keeps its database connection from task to task as a web process keeps one
    from request to request, under Django's own rule, applied at each task's start and end:
    a connection older than CONN_MAX_AGE, or one that failed and no longer answers, is
    closed, and CONN_HEALTH_CHECKS tries a kept one before a task's first query (a
    connection a failover or a time limit broke between two queries). Celery's Django
    fix-up alone would close it before and after every task (settings.CELERY_DB_REUSE_MAX
    holds that off): after an outage, each of the ~1,000 delivery tasks paid for a new
    PostgreSQL backend. An eager task runs inside its caller's request or transaction,
    which owns the connection."""
    if task is not None and not getattr(task.request, "is_eager", False):
        close_old_connections()


@worker_process_init.connect
def _tune_garbage_collection(**kwargs):
    """A pool process has everything it keeps loaded when it starts: the collector stops
    walking it (portal.garbage_collection)."""
    from portal import garbage_collection

    garbage_collection.tune()
