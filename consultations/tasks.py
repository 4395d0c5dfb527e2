"""Celery tasks: thin wrappers that take ids and call plain functions.

Task names are part of the beat schedule and of messages already queued: keep
them and their arguments stable.
"""

from celery import shared_task
from celery.signals import worker_ready

from consultations import drafts, duty, notifications, sweep


@shared_task(ignore_result=True)
def send_notification(notification_id: int) -> None:
    """Queued after commit for one outbox row; failures are recorded on the row and retried by the re-send."""
    notifications.deliver(notification_id)


@shared_task(ignore_result=True)
def send_notifications(notification_ids: list[int]) -> int:
    """Queued after commit for a chunk of outbox rows (the SLA sweep's): sent over one
    mail connection, each row claimed and marked on its own."""
    return notifications.deliver_many(notification_ids)


@shared_task(ignore_result=True)
def resend_pending_notifications() -> int:
    """Periodic safety net: send whatever a lost message, a broker outage or a crash left
    unsent. A backlog is drained in bounded runs, each queueing the next while rows remain."""
    outcome = notifications.drain_pending()
    if outcome.more:
        notifications.enqueue_resend()
    return outcome.sent


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
    return {
        "run": result.run_id,
        "warned": result.warned,
        "breached": result.breached,
        "lead_escalated": result.lead_escalated,
        "errors": result.errors,
    }


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
