"""Articles' periodic tasks (names are in the beat schedule): thin wrappers."""

from celery import shared_task

from articles import popularity, services


@shared_task(ignore_result=True)
def flag_overdue_reviews() -> int:
    """Hourly: flag articles whose medical review expired and notify their reviewers."""
    return services.flag_overdue_reviews().flagged


@shared_task(ignore_result=True)
def flush_view_counts() -> int:
    """Every minute: move buffered view counts into the per-day table."""
    return popularity.flush_view_counts()
