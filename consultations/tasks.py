"""Celery tasks: thin wrappers that take ids and call plain functions.

Task names are part of the beat schedule and of messages already queued: keep
them and their arguments stable.

This module is the top layer (the worker's and beat's entry point): it imports the
sweep, duty, drafts and the outbox, and nothing they import comes back here. The
outbox's own tasks are defined in consultations.notifications, beside the functions
that queue them, under their `consultations.tasks.*` names; they are imported here
so that the worker's autodiscovery registers them and `tasks.send_notification` works.
"""

from celery import shared_task
from celery.signals import worker_ready

from consultations import drafts, duty, notifications, sweep
from consultations.notifications import (  # noqa: F401 - the outbox's tasks, registered with the others
    resend_pending_notifications,
    send_listed_notifications,
    send_notification,
    send_notifications,
)


@worker_ready.connect
def _drain_the_outbox_at_start(**kwargs) -> None:
    """A worker that starts (after a deploy, a crash, a reboot that also emptied the
    broker) drains the outbox at once instead of waiting a re-send interval."""
    notifications.enqueue_resend()


@shared_task(ignore_result=True)
def run_sla_sweep(fan_out: bool = True) -> dict:
    """Run by beat every SLA_SWEEP_SECONDS: escalate whatever fell due since the last sweep.

    A sweep that finds a backlog (a full batch, after an outage) queues helper sweeps
    (`fan_out=False`: they queue no helpers of their own) so that idle workers claim their
    own batches of it alongside; a sweep whose time budget ran out queues one successor.
    See `sweep.queue_helpers`."""
    result = sweep.run_sweep(on_backlog=_queue_sweep_helpers if fan_out else None)
    if result.capped:
        # Its time budget ran out with questions still due: carry on now, not at the next tick.
        _queue_sweep_helpers(count=1)
    return {"run": result.run_id, **result.as_dict()}


def _queue_sweep_helpers(count: int | None = None) -> None:
    sweep.queue_helpers(lambda **options: run_sla_sweep.apply_async(kwargs={"fan_out": False}, **options), count)


@shared_task(ignore_result=True)
def alert_uncovered_specialties() -> list[int]:
    """Run by beat every DUTY_COVER_CHECK_SECONDS: tell staff once per gap when a specialty
    has open questions and no doctor on duty."""
    return duty.alert_uncovered_specialties()


@shared_task(ignore_result=True)
def purge_question_drafts() -> int:
    """Run by beat every 15 minutes: delete question-first drafts past QUESTION_DRAFT_HOURS."""
    return drafts.purge_expired()
