"""Celery tasks: thin wrappers that take ids and call plain functions."""

from celery import shared_task

from consultations import notifications


@shared_task(ignore_result=True)
def send_notification(notification_id: int) -> None:
    notifications.deliver(notification_id)


@shared_task(ignore_result=True)
def resend_pending_notifications() -> int:
    """Periodic safety net: send whatever a lost message or a crash left unsent."""
    sent = 0
    for notification_id in notifications.pending_ids():
        sent += notifications.deliver(notification_id)
    return sent


@shared_task(ignore_result=True)
def run_sla_sweep() -> None:
    """Run by beat every SLA_SWEEP_SECONDS (issue 4 implements the sweep)."""
