"""The editorial workflow and the re-review deadline (articles.services)."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.test import override_settings
from django.utils import timezone

from articles import services, tasks
from articles.models import Article, ArticleStatus
from consultations.models import Notification
from tests.articles.factories import ArticleFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def draft(doctor, specialty):
    return ArticleFactory(draft=True, author=doctor, specialty=specialty, slug="a-draft", title="A draft")


def test_author_submits_draft_for_review(draft, doctor):
    services.submit_for_review(draft, by=doctor)
    draft.refresh_from_db()
    assert draft.status == ArticleStatus.IN_REVIEW
    assert draft.submitted_at is not None


def test_only_the_author_submits(draft, reviewer):
    with pytest.raises(services.WorkflowError, match="Only the author"):
        services.submit_for_review(draft, by=reviewer)


def test_self_review_is_refused(draft, doctor):
    services.submit_for_review(draft, by=doctor)
    with pytest.raises(services.WorkflowError, match="cannot review their own"):
        services.review_and_publish(draft, reviewer=doctor)
    draft.refresh_from_db()
    assert draft.status == ArticleStatus.IN_REVIEW
    assert draft.reviewer is None


def test_self_review_is_refused_by_model_validation(draft, doctor):
    draft.reviewer = doctor
    with pytest.raises(ValidationError, match="cannot review their own"):
        draft.full_clean()


def test_self_review_is_refused_by_the_database(draft, doctor):
    with pytest.raises(IntegrityError), transaction.atomic():
        Article.objects.filter(pk=draft.pk).update(reviewer=doctor)


def test_a_draft_cannot_be_published_without_submission(draft, reviewer):
    with pytest.raises(services.WorkflowError, match="still a draft"):
        services.review_and_publish(draft, reviewer=reviewer)


def test_publishing_sets_the_dates(draft, doctor, reviewer):
    services.submit_for_review(draft, by=doctor)
    now = datetime(2026, 1, 31, 9, 30, tzinfo=UTC)
    services.review_and_publish(draft, reviewer=reviewer, now=now)
    draft.refresh_from_db()
    assert draft.status == ArticleStatus.PUBLISHED
    assert draft.reviewer == reviewer
    assert draft.published_at == now
    assert draft.reviewed_at == now
    # 12 months by default; the 31st clamps to the end of a shorter month.
    assert draft.next_review_due_at == datetime(2027, 1, 31, 9, 30, tzinfo=UTC)
    assert draft.review_is_current(now)


def test_re_review_keeps_the_publication_date(article, other_doctor):
    first_published = article.published_at
    later = timezone.now() + timedelta(days=400)
    services.review_and_publish(article, reviewer=other_doctor, now=later)
    article.refresh_from_db()
    assert article.published_at == first_published
    assert article.reviewed_at == later
    assert article.reviewer == other_doctor


@override_settings(ARTICLE_REVIEW_MONTHS=6)
def test_review_period_follows_the_setting(draft, doctor, reviewer):
    services.submit_for_review(draft, by=doctor)
    now = datetime(2026, 8, 31, tzinfo=UTC)
    services.review_and_publish(draft, reviewer=reviewer, now=now)
    assert draft.next_review_due_at == datetime(2027, 2, 28, tzinfo=UTC)


def test_unverified_doctor_cannot_review(draft, doctor, unverified_doctor):
    services.submit_for_review(draft, by=doctor)
    with pytest.raises(services.WorkflowError, match="verified"):
        services.review_and_publish(draft, reviewer=unverified_doctor)


def test_return_to_draft_takes_article_off_the_site(article, client):
    services.return_to_draft(article, by=article.author)
    assert client.get(article.get_absolute_url()).status_code == 404


@pytest.mark.parametrize("status", [ArticleStatus.DRAFT, ArticleStatus.IN_REVIEW])
def test_unpublished_articles_are_404_to_the_public(client, doctor, specialty, status, patient):
    hidden = ArticleFactory(
        draft=True, status=status, author=doctor, specialty=specialty, slug="hidden", title="Unreleased draft on warts"
    )
    assert client.get(hidden.get_absolute_url()).status_code == 404
    client.force_login(patient)
    assert client.get(hidden.get_absolute_url()).status_code == 404
    assert b"Unreleased draft" not in client.get("/articles/").content
    assert b"Unreleased draft" not in client.get("/").content


def test_add_months_clamps_to_month_end():
    assert services.add_months(datetime(2024, 1, 31, tzinfo=UTC), 1) == datetime(2024, 2, 29, tzinfo=UTC)
    assert services.add_months(datetime(2024, 11, 15, tzinfo=UTC), 14) == datetime(2026, 1, 15, tzinfo=UTC)


# --- re-review deadline ------------------------------------------------------------------


@pytest.fixture
def expired(doctor, reviewer, specialty):
    return ArticleFactory(
        author=doctor, reviewer=reviewer, specialty=specialty, slug="old-advice", reviewed_ago=timedelta(days=400)
    )


def test_expired_review_drops_the_badge_and_notifies_once(expired, article, reviewer, client):
    assert not expired.review_is_current()
    assert article.review_is_current()

    first = services.flag_overdue_reviews()
    second = services.flag_overdue_reviews()

    assert (first.flagged, first.notified) == (1, 1)
    assert (second.flagged, second.notified) == (0, 0)
    expired.refresh_from_db()
    assert expired.review_overdue_at is not None
    notifications = Notification.objects.filter(kind="article_review_overdue")
    assert [(n.to_email, n.recipient) for n in notifications] == [("reviewer@example.com", reviewer.user)]
    assert "old-advice" in notifications[0].body
    page = client.get(expired.get_absolute_url()).content.decode()
    assert "Verified data" not in page
    assert "due for its regular medical re-review" in page
    assert "Verified data" in client.get(article.get_absolute_url()).content.decode()


def test_overdue_notice_is_emailed_after_commit(expired, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        tasks.flag_overdue_reviews.delay()
    assert [message.to for message in mail.outbox] == [["reviewer@example.com"]]
    assert "Medical review overdue" in mail.outbox[0].subject


def test_badge_disappears_at_the_deadline_even_before_the_sweep(article):
    with time_machine.travel(article.next_review_due_at + timedelta(seconds=1)):
        assert not Article.objects.get(pk=article.pk).review_is_current()


def test_new_review_restores_the_badge(expired, other_doctor):
    services.flag_overdue_reviews()
    expired.refresh_from_db()
    services.review_and_publish(expired, reviewer=other_doctor)
    expired.refresh_from_db()
    assert expired.review_overdue_at is None
    assert expired.review_is_current()


def test_flagging_continues_in_batches(doctor, reviewer, specialty):
    for n in range(5):
        ArticleFactory(author=doctor, reviewer=reviewer, specialty=specialty, reviewed_ago=timedelta(days=400 + n))
    result = services.flag_overdue_reviews(batch_size=2)
    assert result.flagged == 5
    assert Notification.objects.filter(kind="article_review_overdue").count() == 5


def test_one_failing_article_does_not_stop_the_others(doctor, reviewer, specialty, monkeypatch):
    broken = ArticleFactory(author=doctor, reviewer=reviewer, specialty=specialty, reviewed_ago=timedelta(days=500))
    fine = ArticleFactory(author=doctor, reviewer=reviewer, specialty=specialty, reviewed_ago=timedelta(days=400))
    real_notify = services._notify_reviewer_overdue

    def notify(article_id):
        if article_id == broken.pk:
            raise RuntimeError("template error")
        return real_notify(article_id)

    monkeypatch.setattr(services, "_notify_reviewer_overdue", notify)
    result = services.flag_overdue_reviews()
    assert result.flagged == 1
    broken.refresh_from_db()
    fine.refresh_from_db()
    # The failed one is left unflagged, so the next run retries it.
    assert broken.review_overdue_at is None
    assert fine.review_overdue_at is not None


def test_current_and_unpublished_articles_are_not_flagged(article, doctor, specialty):
    ArticleFactory(draft=True, author=doctor, specialty=specialty)
    assert services.flag_overdue_reviews().flagged == 0
