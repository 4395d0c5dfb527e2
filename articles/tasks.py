"""Articles' periodic tasks (issue 5 fills them in)."""

from celery import shared_task


@shared_task(ignore_result=True)
def flag_overdue_reviews() -> int:
    return 0


@shared_task(ignore_result=True)
def flush_view_counts() -> int:
    return 0
