"""Articles' fixtures: a clean cache per test, named articles."""

import pytest
from django.core.cache import cache

from articles import cache as article_cache
from articles import popularity
from articles.local_pages import local_pages
from tests.articles.factories import ArticleFactory
from tests.factories import DoctorFactory, UserFactory


@pytest.fixture(autouse=True)
def _clean_cache_and_counters():
    # Our own Redis db only (REDIS_URL points at it in these runs).
    _forget_outages()
    cache.clear()
    popularity.local_buffer.take()
    yield
    _forget_outages()
    cache.clear()
    popularity.local_buffer.take()


def _forget_outages():
    # A test that simulates a dead Redis must not make the next one skip the cache.
    article_cache.outage.reset()
    article_cache._bump_pending.clear()
    popularity.redis_outage.reset()
    # Nor may visitors seen by one test (SQLite reuses article ids) or copies kept in this
    # process's memory (articles/local_pages.py) carry over to the next.
    popularity.local_seen = popularity.LocalSeen()
    local_pages.flush_views()
    local_pages.forget()
    local_pages.queued.clear()


@pytest.fixture
def reviewer(specialty):
    return DoctorFactory(
        user=UserFactory(email="reviewer@example.com"), display_name="Dr. Rita Reviewer", specialties=[specialty]
    )


@pytest.fixture
def article(doctor, reviewer, specialty):
    return ArticleFactory(
        title="What causes adult acne?",
        slug="what-causes-adult-acne",
        summary="Why acne can start after your teens, and what helps.",
        specialty=specialty,
        author=doctor,
        reviewer=reviewer,
    )
