"""Root-level URLs for search engines: sitemap.xml, robots.txt and the article feed."""

from django.contrib.sitemaps.views import sitemap
from django.http import HttpResponse
from django.urls import path
from django.views.decorators.http import require_GET

from articles.seo import SITEMAPS, LatestArticlesFeed, robots_txt


@require_GET
def robots(request):
    return HttpResponse(robots_txt(), content_type="text/plain; charset=utf-8")


urlpatterns = [
    path("sitemap.xml", sitemap, {"sitemaps": SITEMAPS}, name="sitemap"),
    path("robots.txt", robots, name="robots_txt"),
    path("feed.xml", LatestArticlesFeed(), name="article_feed"),
]
