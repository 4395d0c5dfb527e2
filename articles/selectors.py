"""The data behind the public pages, each piece in a fixed number of queries
and cached under the content version (see articles.cache).

Views call these; they return plain lists and dicts of loaded objects so a
cached page needs no database at all.
"""

from dataclasses import dataclass, field

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Count, Q, QuerySet, Value

from articles import popularity
from articles.cache import cached
from articles.models import Article, Tag
from consultations.models import DoctorProfile, Question, Specialty

PAGE_SIZE = 12
RELATED_COUNT = 4
POPULAR_COUNT = 5
RECENT_COUNT = 6
POPULAR_TIMEOUT = 300  # popularity moves with every flush, not only with edits
SEARCH_CONFIG = "english"


def search(articles: QuerySet[Article], text: str) -> QuerySet[Article]:
    """Full-text search: ranked and stemmed on PostgreSQL, word by word elsewhere (SQLite)."""
    text = " ".join(text.split())
    if not text:
        return articles
    if connection.vendor == "postgresql":
        return postgres_search(articles, text)
    return portable_search(articles, text)


def postgres_search(articles: QuerySet[Article], text: str) -> QuerySet[Article]:
    """Every word (stemmed: 'vaccination' finds 'vaccine') in the title, summary or body; best first."""
    vector = (
        SearchVector("title", weight="A", config=SEARCH_CONFIG)
        + SearchVector("summary", weight="B", config=SEARCH_CONFIG)
        + SearchVector("body_markdown", weight="C", config=SEARCH_CONFIG)
    )
    query = SearchQuery(text, search_type="websearch", config=SEARCH_CONFIG)
    return (
        articles.annotate(search=vector, rank=SearchRank(vector, query))
        .filter(search=query)
        .order_by("-rank", "-published_at", "pk")
    )


def portable_search(articles: QuerySet[Article], text: str) -> QuerySet[Article]:
    """Every word (its first 10) in the title, summary, body or a tag's name, without stemming;
    a tag carries the topic word an article's text may only inflect ('Vaccination' / 'vaccine')."""
    for word in text.split()[:10]:
        matching = Article.objects.filter(
            Q(title__icontains=word)
            | Q(summary__icontains=word)
            | Q(body_markdown__icontains=word)
            | Q(tags__name__icontains=word)
        )
        articles = articles.filter(pk__in=matching.values("pk"))
    return articles


@dataclass
class ListPage:
    articles: list[Article]
    number: int
    num_pages: int
    count: int
    specialty: Specialty | None = None
    tag: Tag | None = None
    specialties: list[Specialty] = field(default_factory=list)
    tags: list[Tag] = field(default_factory=list)

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.num_pages

    @property
    def previous_page_number(self) -> int:
        return self.number - 1

    @property
    def next_page_number(self) -> int:
        return self.number + 1


def filter_choices() -> tuple[list[Specialty], list[Tag]]:
    """Specialties and tags that have at least one published article."""

    def build():
        specialties = list(Specialty.objects.filter(articles__status="published").distinct().order_by("sort_order"))
        tags = list(
            Tag.objects.filter(articles__status="published")
            .annotate(n=Count("articles", distinct=True))
            .order_by("-n", "name")[:30]
        )
        return specialties, tags

    return cached(("filters",), build)


def article_list(text: str = "", specialty_slug: str = "", tag_slug: str = "", page: int = 1) -> ListPage:
    def build():
        articles = Article.objects.published().for_cards()
        specialty = tag = None
        if specialty_slug:
            specialty = Specialty.objects.filter(slug=specialty_slug).first()
            articles = articles.filter(specialty=specialty) if specialty else articles.none()
        if tag_slug:
            tag = Tag.objects.filter(slug=tag_slug).first()
            articles = articles.filter(tags=tag) if tag else articles.none()
        articles = search(articles, text)
        paginator = Paginator(articles, PAGE_SIZE)
        current = paginator.get_page(page)
        specialties, tags = filter_choices()
        return ListPage(
            articles=list(current.object_list),
            number=current.number,
            num_pages=paginator.num_pages,
            count=paginator.count,
            specialty=specialty,
            tag=tag,
            specialties=specialties,
            tags=tags,
        )

    return cached(("list", text, specialty_slug, tag_slug, page), build)


def related_articles(article: Article, tag_ids: list[int], limit: int = RELATED_COUNT) -> list[Article]:
    """Published articles sharing tags (most shared first) or the specialty."""
    articles = Article.objects.published().for_cards().exclude(pk=article.pk)
    if tag_ids:
        articles = articles.annotate(shared_tags=Count("tags", filter=Q(tags__in=tag_ids), distinct=True)).filter(
            Q(specialty_id=article.specialty_id) | Q(shared_tags__gt=0)
        )
    else:
        articles = articles.annotate(shared_tags=Value(0)).filter(specialty_id=article.specialty_id)
    return list(articles.order_by("-shared_tags", "-published_at", "pk")[:limit])


def popular(limit: int = POPULAR_COUNT) -> list[Article]:
    return cached(("popular", limit), lambda: list(popularity.popular_articles(limit=limit)), timeout=POPULAR_TIMEOUT)


def article_page(slug: str) -> dict | None:
    """Everything the article page shows except "most popular", or None if not published."""

    def build():
        article = (
            Article.objects.published()
            .select_related("specialty", "author", "reviewer")
            .prefetch_related("tags", "sources", "author__specialties")
            .filter(slug=slug)
            .first()
        )
        if article is None:
            return None
        tags = list(article.tags.all())
        return {
            "article": article,
            "tags": tags,
            "sources": list(article.sources.all()),
            "author_specialties": list(article.author.specialties.all()),
            "related": related_articles(article, [tag.pk for tag in tags]),
        }

    return cached(("page", slug), build)


def home_page() -> dict:
    def build():
        return {
            "specialties": list(Specialty.objects.all()),
            "recent": list(Article.objects.published().for_cards().order_by("-published_at", "pk")[:RECENT_COUNT]),
        }

    return cached(("home",), build)


def doctor_page(slug: str) -> dict | None:
    doctor = DoctorProfile.objects.verified().prefetch_related("specialties").filter(slug=slug).first()
    if doctor is None:
        return None
    published = Article.objects.published().for_cards()
    return {
        "doctor": doctor,
        "written": list(published.filter(author=doctor)),
        "reviewed": list(published.filter(reviewer=doctor)),
        "questions_answered": Question.objects.filter(answered_by=doctor).count(),
    }
