# Root-level URLs for search engines: sitemap.xml, robots.txt, feeds (issue 5).
urlpatterns: list = []
