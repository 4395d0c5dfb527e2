"""Articles' tasks, periodic (names are in the beat schedule) or sent by a view: thin wrappers."""

from datetime import datetime

from celery import shared_task

from articles import newsletter, popularity, services


@shared_task(ignore_result=True)
def flag_overdue_reviews() -> int:
    """Hourly: flag articles whose medical review expired and notify their reviewers."""
    return services.flag_overdue_reviews().flagged


@shared_task(ignore_result=True)
def flush_view_counts() -> int:
    """Every minute: move buffered view counts into the per-day table."""
    return popularity.flush_view_counts()


@shared_task(ignore_result=True)
def newsletter_sign_up(subscriber: int | str, consented_at: str) -> None:
    """One newsletter sign-up, off the request (see newsletter.sign_up): the subscriber's
    id, so no message holds an address. A message queued before that change holds the
    address itself, and is still done."""
    now = datetime.fromisoformat(consented_at)
    if isinstance(subscriber, str):
        newsletter.subscribe(subscriber, now=now)
    else:
        newsletter.subscribe_stored(subscriber, now=now)
