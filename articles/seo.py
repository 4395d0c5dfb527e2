"""What search engines and link previews read: canonical URLs, JSON-LD
MedicalWebPage, the sitemap, the feed and robots.txt."""

import json
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.sitemaps import Sitemap
from django.contrib.syndication.views import Feed
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from articles.models import Article

# As Django's json_script: nothing inside the JSON can close the <script> element.
_JSON_SCRIPT_ESCAPES = {ord("<"): "\\u003C", ord(">"): "\\u003E", ord("&"): "\\u0026"}


def absolute_url(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def _person(doctor) -> dict:
    person = {"@type": "Person", "name": doctor.display_name, "url": absolute_url(doctor.get_absolute_url())}
    if doctor.qualifications:
        person["jobTitle"] = doctor.qualifications
    return person


def article_structured_data(article: Article, tags: list, sources: list) -> dict:
    data = {
        "@context": "https://schema.org",
        "@type": "MedicalWebPage",
        "headline": article.title,
        "name": article.title,
        "description": article.summary,
        "url": absolute_url(article.get_absolute_url()),
        "mainEntityOfPage": absolute_url(article.get_absolute_url()),
        "inLanguage": "en",
        "datePublished": article.published_at.isoformat(),
        "dateModified": article.updated_at.isoformat(),
        "author": _person(article.author),
        "publisher": {"@type": "Organization", "name": "Ask a Doctor", "url": settings.SITE_URL},
        "about": {"@type": "MedicalSpecialty", "name": article.specialty.name},
        "keywords": ", ".join(tag.name for tag in tags),
        "citation": [{"@type": "CreativeWork", "name": s.title, "url": s.url} for s in sources],
    }
    if article.reviewer_id:
        data["reviewedBy"] = _person(article.reviewer)
    if article.reviewed_at:
        data["lastReviewed"] = article.reviewed_at.date().isoformat()
    if article.hero_image:
        data["image"] = absolute_url(article.hero_image.url)
    return data


def json_ld(data: dict) -> SafeString:
    """The JSON for a <script type="application/ld+json"> element, safe to embed."""
    return mark_safe(json.dumps(data, ensure_ascii=False).translate(_JSON_SCRIPT_ESCAPES))  # noqa: S308


class _SiteUrlSitemap(Sitemap):
    """Absolute URLs from SITE_URL, not from the request's Host header."""

    @property
    def protocol(self):
        return urlsplit(settings.SITE_URL).scheme or "https"

    def get_domain(self, site=None):
        return urlsplit(settings.SITE_URL).netloc


class ArticleSitemap(_SiteUrlSitemap):
    changefreq = "monthly"
    priority = 0.8

    def items(self):
        return Article.objects.published().order_by("-published_at", "pk")

    def lastmod(self, article):
        return max(article.updated_at, article.reviewed_at or article.updated_at)


class StaticPagesSitemap(_SiteUrlSitemap):
    changefreq = "weekly"
    priority = 0.5

    def items(self):
        return ["home", "articles:list", "terms", "privacy", "disclaimer"]

    def location(self, name):
        return reverse(name)


SITEMAPS = {"articles": ArticleSitemap, "pages": StaticPagesSitemap}


class LatestArticlesFeed(Feed):
    title = "Ask a Doctor: medically reviewed health articles"
    description = "New health articles written and medically reviewed by verified doctors."

    def link(self):
        return reverse("articles:list")

    def items(self):
        return Article.objects.published().select_related("author", "specialty").order_by("-published_at")[:20]

    def item_title(self, article):
        return article.title

    def item_description(self, article):
        return article.summary

    def item_pubdate(self, article):
        return article.published_at

    def item_updateddate(self, article):
        return article.updated_at

    def item_author_name(self, article):
        return article.author.display_name

    def item_categories(self, article):
        return [article.specialty.name]


ROBOTS_DISALLOW = ["/admin/", "/doctor/", "/staff/", "/questions/", "/accounts/", "/articles/newsletter/"]


def robots_txt() -> str:
    lines = ["User-agent: *", *(f"Disallow: {path}" for path in ROBOTS_DISALLOW), ""]
    lines.append(f"Sitemap: {absolute_url(reverse('sitemap'))}")
    return "\n".join(lines) + "\n"
