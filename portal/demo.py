"""The whole `make run` demo, behind `manage.py seed_demo`.

Each app seeds its own demo content from its own data files: the consultations
app its specialties, people and questions (consultations.demo), then the
articles app its articles, written and reviewed by those doctors
(articles.demo). The project, which knows both apps, puts them together, so
neither app's demo imports the other's.
"""

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from articles.demo import seed_articles
from consultations.demo import SeedResult, seed_consultations


def seed_demo(now: datetime | None = None) -> SeedResult:
    """Create (or bring back) the whole demo in one transaction; safe to run again."""
    now = now or timezone.now()
    with transaction.atomic():
        result = seed_consultations(now)
        result.articles = seed_articles(result.doctors_by_specialty, now)
    return result
