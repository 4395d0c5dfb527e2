"""Demo health articles (original text written for this portal) and the
function that loads them: `seed_articles`, called by the seed_demo command.

The articles are Markdown files in `articles/demo_content/`, one per article,
named `NN-<slug>.md` (NN orders them). Each starts with TOML front matter
between `+++` lines (as Hugo writes it; Python reads TOML without a new
dependency):

    +++
    title = "Fever in adults: when is it a reason to see a doctor?"
    specialty = "general-medicine"        # a Specialty slug
    summary = "..."                       # at most 300 characters
    tags = ["Fever", "Infections"]
    reviewed_days_ago = 40                # published articles: their medical review...
    published_days_ago = 200              # ...and publication, before the seeding
    views = 34                            # a day's views, for a few weeks of counts
    sources = ["nhs", { title = "...", url = "https://..." }]
    +++
    The body, in Markdown.

`status = "in_review"` (without the two dates) leaves an article waiting for
review. A source named by a word is one of `sources.toml`. Reading is strict:
an unknown key, a missing one or a file not named as above stops the seeding.

The texts are general information in a plain, careful tone. They are demo
content: a clinic replaces them with its own doctors' articles.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils.text import slugify

from articles.cache import bump_version
from articles.models import Article, ArticleStatus, ArticleViewDay, Source, Tag, withdraw_review_of
from articles.services import next_review_due, review_and_publish
from consultations.models import DoctorProfile, Specialty

CONTENT_DIR = Path(__file__).with_name("demo_content")
SOURCES_FILE = "sources.toml"
FILE_NAME = re.compile(r"\d{2,}-(?P<slug>[a-z0-9]+(?:-[a-z0-9]+)*)\.md")
FRONT_MATTER = re.compile(r"\+\+\+\n(?P<meta>.*?\n)\+\+\+\n(?P<body>.*)", re.DOTALL)
REQUIRED = {"title", "specialty", "summary", "tags", "sources"}
PUBLISHED_ONLY = {"reviewed_days_ago", "published_days_ago"}
OPTIONAL = PUBLISHED_ONLY | {"status", "views"}


class DemoArticleError(ValueError):
    """A demo article file does not say what the seeding needs; the message names the file."""


@dataclass(frozen=True)
class DemoArticle:
    slug: str
    specialty: str
    title: str
    summary: str
    tags: tuple[str, ...]
    sources: tuple[tuple[str, str], ...]
    body: str
    status: str = ArticleStatus.PUBLISHED
    reviewed_days_ago: int = 0
    published_days_ago: int = 0
    views: int = 0


def _read_toml(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise DemoArticleError(f"{where}: {error}") from error


@cache
def _named_sources() -> dict[str, tuple[str, str]]:
    path = CONTENT_DIR / SOURCES_FILE
    named = {}
    for key, value in _read_toml(path.read_text(encoding="utf-8"), str(path)).items():
        named[key] = _source(value, f"{path} [{key}]", {})
    return named


def _source(value: Any, where: str, named: Mapping[str, tuple[str, str]]) -> tuple[str, str]:
    if isinstance(value, str):
        if value not in named:
            raise DemoArticleError(f"{where}: no source {value!r} in {SOURCES_FILE}")
        return named[value]
    if not isinstance(value, dict) or set(value) != {"title", "url"}:
        raise DemoArticleError(f"{where}: a source is a name from {SOURCES_FILE} or {{ title = ..., url = ... }}")
    if not str(value["url"]).startswith("https://"):
        raise DemoArticleError(f"{where}: a source's url starts with https://")
    return (value["title"], value["url"])


def _check_meta(meta: dict[str, Any], where: str) -> None:
    if missing := sorted(REQUIRED - set(meta)):
        raise DemoArticleError(f"{where}: missing key(s) {', '.join(missing)}")
    if unknown := sorted(set(meta) - REQUIRED - OPTIONAL):
        raise DemoArticleError(f"{where}: unknown key(s) {', '.join(unknown)}")
    status = meta.get("status", ArticleStatus.PUBLISHED)
    if status not in (ArticleStatus.PUBLISHED, ArticleStatus.IN_REVIEW):
        raise DemoArticleError(f"{where}: status is published or in_review, not {status!r}")
    dates = PUBLISHED_ONLY & set(meta)
    if status == ArticleStatus.PUBLISHED and dates != PUBLISHED_ONLY:
        raise DemoArticleError(f"{where}: a published article needs reviewed_days_ago and published_days_ago")
    if status == ArticleStatus.IN_REVIEW and dates:
        raise DemoArticleError(f"{where}: an article in review has no review or publication date")
    for key in ("title", "specialty", "summary"):
        if not isinstance(meta[key], str) or not meta[key].strip():
            raise DemoArticleError(f"{where}: {key} is a non-empty string")
    for key in PUBLISHED_ONLY | {"views"}:
        if key in meta and (type(meta[key]) is not int or meta[key] < 0):
            raise DemoArticleError(f"{where}: {key} is a whole number of days (or views) >= 0")
    if not isinstance(meta["tags"], list) or not all(isinstance(tag, str) and tag for tag in meta["tags"]):
        raise DemoArticleError(f"{where}: tags is a list of names")


def read_article(path: Path) -> DemoArticle:
    """One `NN-<slug>.md` file as a DemoArticle."""
    name = FILE_NAME.fullmatch(path.name)
    if name is None:
        raise DemoArticleError(f"{path}: a demo article is named NN-<slug>.md")
    parts = FRONT_MATTER.fullmatch(path.read_text(encoding="utf-8"))
    if parts is None or not parts["body"].strip():
        raise DemoArticleError(f"{path}: front matter between +++ lines, then the Markdown body")
    meta = _read_toml(parts["meta"], str(path))
    _check_meta(meta, str(path))
    sources = tuple(_source(value, str(path), _named_sources()) for value in meta.pop("sources"))
    return DemoArticle(slug=name["slug"], body=parts["body"], sources=sources, tags=tuple(meta.pop("tags")), **meta)


@cache
def demo_articles() -> tuple[DemoArticle, ...]:
    """Every demo article, in file-name order; any other file but sources.toml is an error."""
    paths = sorted(path for path in CONTENT_DIR.iterdir() if path.name != SOURCES_FILE)
    articles = tuple(read_article(path) for path in paths)
    slugs = [article.slug for article in articles]
    if len(set(slugs)) != len(slugs):
        raise DemoArticleError(f"{CONTENT_DIR}: two files share a slug")
    return articles


def _doctors_for(value) -> list[DoctorProfile]:
    if value is None:
        return []
    if isinstance(value, DoctorProfile):
        return [value]
    return [doctor for doctor in value if doctor is not None]


def _pick_author_and_reviewer(
    specialty_slug: str, doctors: Mapping[str, list[DoctorProfile]]
) -> tuple[DoctorProfile, DoctorProfile | None] | None:
    own = doctors.get(specialty_slug) or []
    if not own:
        return None
    author = own[0]
    # As an editorial board would: a colleague of the article's own specialty reviews it,
    # never a doctor of an unrelated one. Without one the article waits in review.
    reviewer = next((doctor for doctor in own[1:] if doctor.pk != author.pk), None)
    return author, reviewer


def _tags(names: Iterable[str]) -> list[Tag]:
    tags = []
    for name in names:
        tag, _ = Tag.objects.get_or_create(slug=slugify(name), defaults={"name": name})
        tags.append(tag)
    return tags


def _set_sources(article: Article, sources: Sequence[tuple[str, str]], *, reviewed_with_them: bool) -> None:
    wanted = [(title, url) for title, url in sources]
    if list(article.sources.values_list("title", "url")) == wanted:
        return
    article.sources.all().delete()
    Source.objects.bulk_create(
        Source(article=article, title=title, url=url, position=position) for position, (title, url) in enumerate(wanted)
    )
    if not reviewed_with_them:
        # The bulk calls skip Source.save/delete: apply their rule (changed sources
        # withdraw the review) here. A new demo article's review covers its sources.
        withdraw_review_of(article.pk)


def _seed_views(article: Article, per_day: int, now: datetime) -> None:
    """A few weeks of plausible view counts so "most popular" has something to rank."""
    if per_day <= 0 or article.view_days.exists():
        return
    today = now.date()
    rows = [
        ArticleViewDay(article=article, day=today - timedelta(days=offset), views=max(1, per_day - offset % 7))
        for offset in range(21)
    ]
    ArticleViewDay.objects.bulk_create(rows)
    article.view_count = sum(row.views for row in rows)
    article.save(update_fields=["view_count"])


def _new_article(spec: DemoArticle, content: dict, author, reviewer, now: datetime) -> Article:
    """A new demo article with its dates, reviewer and a few weeks of view counts."""
    article = Article(slug=spec.slug, author=author, **content)
    if spec.status == ArticleStatus.PUBLISHED and reviewer is not None:
        reviewed_at = now - timedelta(days=spec.reviewed_days_ago)
        article.reviewer = reviewer
        article.reviewed_at = reviewed_at
        article.next_review_due_at = next_review_due(reviewed_at)
        article.published_at = now - timedelta(days=max(spec.published_days_ago, spec.reviewed_days_ago))
        article.status = ArticleStatus.PUBLISHED
    else:
        article.status = ArticleStatus.IN_REVIEW
        article.submitted_at = now - timedelta(days=2)
    article.save()
    _seed_views(article, spec.views, now)
    return article


@transaction.atomic
def seed_articles(doctors_by_specialty_slug: Mapping, now: datetime) -> int:
    """Create or update the demo articles; safe to run again and again.

    Contract (for portal.demo, behind the seed_demo command):
    - `doctors_by_specialty_slug` maps a Specialty slug ("general-medicine",
      "dermatology", "plastic-surgery", "orthopedics", "psychiatry",
      "pediatrics", "gynecology", "cardiology") to a DoctorProfile or a list
      of them. The Specialty rows must already exist; articles whose
      specialty slug is missing from the mapping or the database are skipped.
    - The first doctor of a specialty is the author; the reviewer is the next
      doctor of the same specialty (never the author, never a doctor of another
      specialty). A specialty with a single doctor keeps its articles "in
      review" instead of publishing them (nobody may review their own).
    - `now` (aware datetime) anchors the published / reviewed dates. One
      article ("cold-or-flu-how-to-tell") is created with an expired review so
      the overdue sweep has something to flag; one ("palpitations-when-to-get-
      checked") is left in review for the workflow demo.
    - Articles are looked up by slug. A new one gets its dates, reviewer and
      a few weeks of view counts; an existing one only gets its text, tags and
      sources refreshed, so workflow changes made in the admin are kept. New
      text or sources withdraw a review (articles.models); the demo's reviewer
      then reviews the article again (dated `now`) if it was published.
    Returns how many articles were created or updated.
    """
    doctors = {slug: _doctors_for(value) for slug, value in doctors_by_specialty_slug.items()}
    specialties = Specialty.objects.in_bulk(list(doctors), field_name="slug")
    seeded = 0
    for spec in demo_articles():
        specialty = specialties.get(spec.specialty)
        people = _pick_author_and_reviewer(spec.specialty, doctors)
        if specialty is None or people is None:
            continue
        content = {"title": spec.title, "summary": spec.summary, "body_markdown": spec.body, "specialty": specialty}
        article = Article.objects.filter(slug=spec.slug).first()
        created = article is None
        if created:
            article = _new_article(spec, content, *people, now)
        else:
            had_review = article.has_review
            for field, value in content.items():
                setattr(article, field, value)
            article.save()
        article.tags.set(_tags(spec.tags))
        _set_sources(article, spec.sources, reviewed_with_them=created)
        if not created:
            article.refresh_from_db()
            if had_review and not article.has_review and spec.status == ArticleStatus.PUBLISHED and people[1]:
                # New demo text withdrew the review (articles.models); the demo's
                # reviewer, never the author, reviews the new text so the demo
                # stays published.
                review_and_publish(article, reviewer=people[1], now=now)
        seeded += 1
    bump_version()
    return seeded
