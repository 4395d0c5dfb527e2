"""The public article list and article page."""

import json
import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse

from articles.models import ArticleViewDay
from tests.articles.factories import ArticleFactory, SourceFactory, TagFactory
from tests.factories import DoctorFactory, SpecialtyFactory

pytestmark = pytest.mark.django_db

# count, page of cards (with specialty and reviewer), specialties filter, tags filter
LIST_QUERIES = 4
# article (+specialty, author, reviewer), tags, sources, author's specialties, related, popular
PAGE_QUERIES = 6


def _json_ld(html: str) -> dict:
    match = re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    assert match, "no JSON-LD block"
    return json.loads(match.group(1))


def test_article_page_shows_every_element(client, article, reviewer, doctor, specialty):
    tag = TagFactory(name="Skin care", slug="skin-care")
    article.tags.add(tag)
    SourceFactory(article=article, title="World Health Organization", url="https://www.who.int/")
    related = ArticleFactory(specialty=specialty, title="Rosacea or acne?", slug="rosacea-or-acne")
    html = client.get(article.get_absolute_url()).content.decode()

    assert 'aria-label="breadcrumb"' in html and 'href="/articles/"' in html
    assert "<h1" in html and "What causes adult acne?" in html
    assert "Why acne can start after your teens" in html
    assert "Dermatology" in html
    assert f'Medically reviewed by <a href="/doctors/{reviewer.slug}/"' in html
    assert "Published <time" in html and "Reviewed <time" in html
    assert "min read" in html
    assert "Verified data" in html
    assert 'href="#s-what-is-it"' in html and 'id="s-what-is-it"' in html  # table of contents
    assert "About the author" in html and doctor.display_name in html
    assert "#Skin care" in html
    assert 'href="https://www.who.int/"' in html
    assert "Medical disclaimer" in html
    assert "Related articles" in html and related.title in html
    assert "Most popular articles" in html
    assert 'action="/articles/newsletter/"' in html and "privacy policy" in html
    assert "Ask a doctor online now: guaranteed answer within 4 hours" in html
    assert f'href="{reverse("consultations:ask")}?specialty=dermatology"' in html


def test_article_page_has_no_inline_script_or_style(client, article):
    html = client.get(article.get_absolute_url()).content.decode()
    scripts = re.findall(r"<script([^>]*)>", html)
    assert all("src=" in attrs or 'type="application/ld+json"' in attrs for attrs in scripts)
    assert " style=" not in html
    assert not re.search(r"\son[a-z]+=", html)


def test_json_ld_names_the_reviewer_and_review_date(client, article, reviewer):
    data = _json_ld(client.get(article.get_absolute_url()).content.decode())
    assert data["@type"] == "MedicalWebPage"
    assert data["reviewedBy"]["name"] == "Dr. Rita Reviewer"
    assert data["reviewedBy"]["url"].endswith(f"/doctors/{reviewer.slug}/")
    assert data["lastReviewed"] == article.reviewed_at.date().isoformat()
    assert data["author"]["name"] == "Dr. Dana Derm"
    assert data["datePublished"] == article.published_at.isoformat()


def test_json_ld_cannot_be_broken_out_of(client, doctor, reviewer, specialty):
    sneaky = ArticleFactory(
        author=doctor,
        reviewer=reviewer,
        specialty=specialty,
        title="</script><script>alert(1)</script> & more",
        summary="<!-- comment --> </SCRIPT>",
    )
    html = client.get(sneaky.get_absolute_url()).content.decode()
    block = re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S).group(1)
    assert "<" not in block
    assert json.loads(block)["headline"] == "</script><script>alert(1)</script> & more"


def test_open_graph_and_canonical(client, article, settings):
    settings.SITE_URL = "https://portal.example"
    cache.clear()
    html = client.get(article.get_absolute_url()).content.decode()
    canonical = "https://portal.example/articles/what-causes-adult-acne/"
    assert f'<link rel="canonical" href="{canonical}">' in html
    assert f'<meta property="og:url" content="{canonical}">' in html
    assert '<meta property="og:type" content="article">' in html
    assert '<meta property="og:title" content="What causes adult acne?">' in html


def test_unknown_article_is_404(client):
    assert client.get("/articles/no-such-article/").status_code == 404


def test_list_shows_cards_with_summary_specialty_reading_time_reviewer(client, article):
    html = client.get("/articles/").content.decode()
    assert "What causes adult acne?" in html
    assert "Why acne can start after your teens" in html
    assert "Dermatology" in html
    assert "1 min read" in html
    assert "Medically reviewed by Dr. Rita Reviewer" in html


def test_search_finds_matching_articles_only(client, article, doctor, reviewer, other_specialty):
    ArticleFactory(
        author=doctor,
        reviewer=reviewer,
        specialty=other_specialty,
        title="Living with high blood pressure",
        body_markdown="Lowering salt helps most people with hypertension.",
    )
    html = client.get("/articles/", {"q": "acne"}).content.decode()
    assert "What causes adult acne?" in html
    assert "high blood pressure" not in html
    html = client.get("/articles/", {"q": "salt"}).content.decode()
    assert "high blood pressure" in html and "adult acne" not in html
    assert "No articles match" in client.get("/articles/", {"q": "zebra quantum"}).content.decode()


def test_search_result_pages_are_not_indexed(client, article):
    html = client.get("/articles/", {"q": "acne"}).content.decode()
    assert '<meta name="robots" content="noindex, follow">' in html
    assert 'rel="canonical" href="http://127.0.0.1:8000/articles/"' in html


def test_filters_by_specialty_and_tag(client, article, doctor, reviewer, other_specialty):
    tag = TagFactory(name="Heart", slug="heart")
    ArticleFactory(author=doctor, reviewer=reviewer, specialty=other_specialty, title="Palpitations", tags=[tag])
    html = client.get("/articles/", {"specialty": "cardiology"}).content.decode()
    assert "Palpitations" in html and "adult acne" not in html
    html = client.get("/articles/", {"tag": "heart"}).content.decode()
    assert "Palpitations" in html and "adult acne" not in html
    html = client.get("/articles/", {"specialty": "no-such-thing"}).content.decode()
    assert "No articles match" in html


def test_list_is_paginated(client, doctor, reviewer, specialty):
    for n in range(14):
        ArticleFactory(author=doctor, reviewer=reviewer, specialty=specialty, title=f"Numbered article {n:02d}")
    first = client.get("/articles/").content.decode()
    second = client.get("/articles/", {"page": 2}).content.decode()
    assert first.count("Numbered article") == 12
    assert second.count("Numbered article") == 2
    assert "Page 2 of 2" in second
    # Nonsense page numbers fall back to a real page instead of failing.
    assert client.get("/articles/", {"page": "abc"}).status_code == 200
    assert client.get("/articles/", {"page": 999}).status_code == 200


def _bulk(count, tags_per_article, doctor, reviewer, specialty):
    tags = [TagFactory() for _ in range(tags_per_article)]
    articles = [ArticleFactory(author=doctor, reviewer=reviewer, specialty=specialty, tags=tags) for _ in range(count)]
    for item in articles:
        for _ in range(3):
            SourceFactory(article=item)
        ArticleViewDay.objects.create(article=item, day=item.published_at.date(), views=5)
    return articles


@pytest.mark.parametrize(("count", "tags_per_article"), [(1, 0), (3, 1), (30, 6)])
def test_list_query_count_is_fixed(
    client, django_assert_num_queries, doctor, reviewer, specialty, count, tags_per_article
):
    _bulk(count, tags_per_article, doctor, reviewer, specialty)
    cache.clear()
    with django_assert_num_queries(LIST_QUERIES):
        response = client.get("/articles/")
    assert response.status_code == 200


@pytest.mark.parametrize(("count", "tags_per_article"), [(1, 0), (3, 1), (30, 6)])
def test_article_page_query_count_is_fixed(
    client, django_assert_num_queries, doctor, reviewer, specialty, count, tags_per_article
):
    articles = _bulk(count, tags_per_article, doctor, reviewer, specialty)
    cache.clear()
    with django_assert_num_queries(PAGE_QUERIES):
        response = client.get(articles[0].get_absolute_url())
    assert response.status_code == 200


def test_cached_article_page_needs_no_queries(client, article, django_assert_num_queries):
    client.get(article.get_absolute_url())
    with django_assert_num_queries(0):
        assert client.get(article.get_absolute_url()).status_code == 200


def test_related_prefers_shared_tags_then_specialty(client, article, doctor, reviewer, specialty, other_specialty):
    tag = TagFactory(name="Hormones", slug="hormones")
    article.tags.add(tag)
    same_tag = ArticleFactory(author=doctor, reviewer=reviewer, specialty=other_specialty, title="PCOS", tags=[tag])
    same_specialty = ArticleFactory(author=doctor, reviewer=reviewer, specialty=specialty, title="Eczema basics")
    unrelated = ArticleFactory(
        author=doctor, reviewer=reviewer, specialty=SpecialtyFactory(slug="ortho"), title="Knee pain"
    )
    from articles.selectors import related_articles

    related = related_articles(article, [tag.pk])
    assert related == [same_tag, same_specialty]
    assert unrelated not in related


def test_home_page_shows_specialties_guarantee_articles_and_search(client, article, other_specialty):
    html = client.get("/").content.decode()
    assert "Dermatology" in html and "Cardiology" in html
    assert "Guaranteed first answer within 4 hours" in html
    assert "What causes adult acne?" in html
    assert 'action="/articles/"' in html and 'name="q"' in html
    assert f"{reverse('consultations:ask')}?specialty=cardiology" in html
    assert "Recent articles" in html and "Most popular articles" in html


def test_doctor_without_photo_gets_initials(client, doctor, reviewer, specialty):
    author = DoctorFactory(display_name="Dr. Zoe Zed", specialties=[specialty])
    item = ArticleFactory(author=author, reviewer=reviewer, specialty=specialty)
    html = client.get(item.get_absolute_url()).content.decode()
    assert 'class="doctor-photo doctor-initials' in html


def test_author_photo_is_shown(client, article, doctor, settings, tmp_path):
    from django.core.files.base import ContentFile

    doctor.photo.save("dana.png", ContentFile(b"\x89PNG\r\n\x1a\nfake"), save=True)
    html = client.get(article.get_absolute_url()).content.decode()
    assert f'src="{doctor.photo.url}" alt="Photo of Dr. Dana Derm"' in html


def test_article_review_in_the_past_shows_due_notice(client, doctor, reviewer, specialty):
    old = ArticleFactory(author=doctor, reviewer=reviewer, specialty=specialty, reviewed_ago=timedelta(days=370))
    html = client.get(old.get_absolute_url()).content.decode()
    assert "Verified data" not in html


def test_a_very_long_search_is_shortened_not_refused(client, article):
    response = client.get("/articles/", {"q": "acne " + "x" * 500, "specialty": "dermatology"})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'value="acne xxxxx' in html
    assert "x" * 101 not in html


def test_head_request_works_and_is_not_counted_as_a_view(client, article):
    from articles import popularity

    assert client.head(article.get_absolute_url()).status_code == 200
    assert client.head("/").status_code == 200
    assert popularity.flush_view_counts() == 0
