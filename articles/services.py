"""The editorial workflow and the re-review deadline, as plain functions.

draft -> in review (the author submits) -> published (another doctor reviews
and publishes). A published article's review expires after
ARTICLE_REVIEW_MONTHS; `flag_overdue_reviews` marks each expired article once
and notifies its reviewer through the outbox, like the answer guarantee.
The admin sites and the Celery task only call these functions.
"""

import calendar
import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from articles.cache import bump_version
from articles.models import Article, ArticleStatus
from consultations.models import DoctorProfile
from consultations.notifications import queue_notification

logger = logging.getLogger(__name__)

OVERDUE_BATCH_SIZE = 200


class WorkflowError(Exception):
    """A workflow step that is not allowed; the message is shown to the user."""


def add_months(moment: datetime, months: int) -> datetime:
    """Same day and time `months` later, clamped to the month's last day (31 Jan + 1 = 28/29 Feb)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def next_review_due(reviewed_at: datetime) -> datetime:
    return add_months(reviewed_at, settings.ARTICLE_REVIEW_MONTHS)


def submit_for_review(article: Article, by: DoctorProfile | None, now=None) -> Article:
    """The author (or staff, by=None) sends a draft to medical review."""
    now = now or timezone.now()
    if article.status != ArticleStatus.DRAFT:
        raise WorkflowError(f"“{article.title}” is not a draft, so it cannot be submitted for review.")
    if by is not None and by.pk != article.author_id:
        raise WorkflowError(f"Only the author can submit “{article.title}” for review.")
    article.status = ArticleStatus.IN_REVIEW
    article.submitted_at = now
    article.save(update_fields=["status", "submitted_at", "updated_at"])
    return article


def check_may_review(article: Article, reviewer: DoctorProfile) -> None:
    """WorkflowError unless `reviewer` may review `article` at all."""
    if reviewer.pk == article.author_id:
        raise WorkflowError("A doctor cannot review their own article; ask a colleague to review it.")
    if not reviewer.is_verified:
        raise WorkflowError("Only a verified doctor can medically review an article.")
    if article.status == ArticleStatus.DRAFT:
        raise WorkflowError(f"“{article.title}” is still a draft; its author must submit it for review first.")


def article_version(article: Article) -> str:
    """Which saved version of the article this is: every save of its content (sources
    included, see articles.models.withdraw_review_of) gives it a new one."""
    return article.updated_at.isoformat()


def review_and_publish(
    article: Article, reviewer: DoctorProfile, now=None, *, seen_version: str | None = None
) -> Article:
    """A doctor other than the author approves the article: it is published (or,
    if already published, its review is renewed) and the review clock restarts.

    `seen_version`: the version (`article_version`) the reviewer was shown; the admin
    remembers it when it shows an article to someone who may approve it, and approves
    nothing else. A version saved since (the author changed the text, the picture or a
    source while the reviewer read the old ones) is not approved: the reviewer opens
    the article again. Checked and approved under the article's row lock (PostgreSQL),
    so no save lands between them. None: the caller vouches for the article as it is
    now (the demo data, scripts)."""
    now = now or timezone.now()
    with transaction.atomic():
        stored = (
            Article._base_manager.select_for_update().only("title", "status", "updated_at", "author").get(pk=article.pk)
        )
        check_may_review(stored, reviewer)
        if seen_version is not None and article_version(stored) != seen_version:
            raise WorkflowError(
                f"“{article.title}” was saved again after you opened it (edited, or reviewed by someone else), "
                "so it was not published: open it, read this version, then approve it."
            )
        article.reviewer = reviewer
        article.reviewed_at = now
        article.next_review_due_at = next_review_due(now)
        article.review_overdue_at = None
        if article.published_at is None:
            article.published_at = now
        article.status = ArticleStatus.PUBLISHED
        article.clean()
        article.save(
            update_fields=[
                "reviewer",
                "reviewed_at",
                "next_review_due_at",
                "review_overdue_at",
                "published_at",
                "status",
                "updated_at",
            ]
        )
    return article


def return_to_draft(article: Article, by: DoctorProfile | None) -> Article:
    """Take an article back for changes (the reviewer sends it back, or the
    author withdraws it). It leaves the public site until reviewed again."""
    if article.status == ArticleStatus.DRAFT:
        raise WorkflowError(f"“{article.title}” is already a draft.")
    if by is not None and article.status == ArticleStatus.PUBLISHED and by.pk != article.author_id:
        raise WorkflowError("Only the author or staff can withdraw a published article.")
    article.status = ArticleStatus.DRAFT
    article.save(update_fields=["status", "updated_at"])
    return article


@dataclass(frozen=True)
class OverdueResult:
    flagged: int
    notified: int


def overdue_candidates(now):
    return Article.objects.published().filter(next_review_due_at__lte=now, review_overdue_at__isnull=True)


def flag_overdue_reviews(now=None, batch_size: int = OVERDUE_BATCH_SIZE) -> OverdueResult:
    """Flag every published article whose review has expired and notify its
    reviewer. Each article is flagged (and its reviewer told) exactly once,
    even when several sweeps run at the same time."""
    now = now or timezone.now()
    flagged = notified = 0
    failed: set[int] = set()
    while True:
        batch = list(
            overdue_candidates(now)
            .exclude(pk__in=failed)
            .order_by("next_review_due_at", "pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        for article_id in batch:
            try:
                with transaction.atomic():
                    # Only the sweep whose update changes the row notifies.
                    changed = Article.objects.filter(
                        pk=article_id, review_overdue_at__isnull=True, next_review_due_at__lte=now
                    ).update(review_overdue_at=now)
                    if changed != 1:
                        continue
                    notified += _notify_reviewer_overdue(article_id)
                    flagged += 1
            except Exception:  # noqa: BLE001 - one bad article must not stop the others; retried next run
                logger.exception("Flagging article %s as overdue failed", article_id)
                failed.add(article_id)
        if len(batch) < batch_size:
            break
    if flagged:
        bump_version()
        transaction.on_commit(bump_version)
        logger.info("Flagged %s article(s) whose medical review is overdue", flagged)
    return OverdueResult(flagged=flagged, notified=notified)


def _notify_reviewer_overdue(article_id: int) -> int:
    article = Article.objects.select_related("reviewer__user", "author").get(pk=article_id)
    reviewer = article.reviewer
    if reviewer is None or not reviewer.user.email:
        return 0
    notification = queue_notification(
        recipient=reviewer.user,
        to_email=reviewer.user.email,
        kind="article_review_overdue",
        context={
            "article": article,
            "reviewer": reviewer,
            "admin_path": reverse("doctor_admin:articles_article_change", args=[article.pk]),
            "public_path": article.get_absolute_url(),
        },
        dedupe_key=f"article-review-overdue:{article.pk}:{article.next_review_due_at.isoformat()}",
    )
    return 1 if notification is not None else 0
