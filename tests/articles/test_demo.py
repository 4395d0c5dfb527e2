"""The demo articles and their loader's contract (used by seed_demo)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from articles import demo, services
from articles.demo import demo_articles, seed_articles
from articles.models import Article, ArticleStatus, Source
from tests.demo_files import content_copy
from tests.factories import DoctorFactory, SpecialtyFactory

pytestmark = pytest.mark.django_db

SPECIALTIES = {
    "general-medicine": "General Medicine",
    "dermatology": "Dermatology",
    "plastic-surgery": "Plastic Surgery",
    "orthopedics": "Orthopedics",
    "psychiatry": "Psychiatry",
    "pediatrics": "Pediatrics",
    "gynecology": "Gynecology",
    "cardiology": "Cardiology",
}


@pytest.fixture
def doctors_by_specialty():
    """Two doctors of each specialty: the first writes, the second reviews."""
    mapping = {}
    for slug, name in SPECIALTIES.items():
        specialty = SpecialtyFactory(slug=slug, name=name)
        mapping[slug] = [DoctorFactory(specialties=[specialty]), DoctorFactory(specialties=[specialty])]
    return mapping


def test_demo_content_is_rich_enough():
    articles = demo_articles()
    published = [spec for spec in articles if spec.status == ArticleStatus.PUBLISHED]
    assert len(published) >= 12
    assert len({spec.specialty for spec in published}) >= 6
    assert len({spec.slug for spec in articles}) == len(articles)
    for spec in articles:
        assert 2 <= len(spec.sources) <= 4, spec.slug
        assert all(url.startswith("https://") for _title, url in spec.sources)
        assert "\n- " in spec.body, f"{spec.slug} has no bullet list"
        assert len(spec.summary) <= 300


def test_seed_creates_published_reviewed_articles(doctors_by_specialty):
    now = timezone.now()
    assert seed_articles(doctors_by_specialty, now) == len(demo_articles())
    published = Article.objects.published()
    assert published.count() >= 12
    assert published.values("specialty").distinct().count() >= 6
    for article in published:
        assert article.reviewer_id and article.reviewer_id != article.author_id
        assert any(entry["title"].endswith("?") for entry in article.toc), article.slug
        assert "<ul>" in article.body_html
        assert 2 <= article.sources.count() <= 4
    derm = Article.objects.get(slug="adult-acne-causes-and-treatment")
    assert derm.author == doctors_by_specialty["dermatology"][0]
    assert derm.reviewer == doctors_by_specialty["dermatology"][1]
    assert Article.objects.get(slug="palpitations-when-to-get-checked").status == ArticleStatus.IN_REVIEW


def test_seed_includes_exactly_one_overdue_review_which_the_sweep_flags(doctors_by_specialty):
    now = timezone.now()
    seed_articles(doctors_by_specialty, now)
    overdue = [article for article in Article.objects.published() if not article.review_is_current(now)]
    assert [article.slug for article in overdue] == ["cold-or-flu-how-to-tell"]
    assert services.flag_overdue_reviews(now).flagged == 1


def test_seed_is_idempotent_and_keeps_workflow_changes(doctors_by_specialty):
    now = timezone.now()
    seed_articles(doctors_by_specialty, now)
    in_review = Article.objects.get(slug="palpitations-when-to-get-checked")
    services.review_and_publish(in_review, reviewer=doctors_by_specialty["general-medicine"][0], now=now)
    counts = (Article.objects.count(), Source.objects.count())

    seed_articles(doctors_by_specialty, now + timedelta(days=1))

    assert (Article.objects.count(), Source.objects.count()) == counts
    assert Article.objects.get(slug="palpitations-when-to-get-checked").status == ArticleStatus.PUBLISHED


def test_seed_skips_specialties_it_was_not_given(doctors_by_specialty):
    only = {slug: doctors_by_specialty[slug] for slug in ("dermatology", "cardiology")}
    seed_articles(only, timezone.now())
    assert set(Article.objects.values_list("specialty__slug", flat=True)) == {"dermatology", "cardiology"}


def test_with_a_single_doctor_nothing_is_self_reviewed():
    specialty = SpecialtyFactory(slug="cardiology", name="Cardiology")
    lone = DoctorFactory(specialties=[specialty])
    seed_articles({"cardiology": lone}, timezone.now())
    assert Article.objects.exists()
    assert not Article.objects.published().exists()
    assert not Article.objects.filter(reviewer=lone).exists()


def test_a_doctor_of_another_specialty_never_reviews(doctors_by_specialty):
    """Issue 15: reviewers match the article's specialty, as a real editorial board's do.
    A specialty with one doctor keeps its articles in review rather than borrow one."""
    lone_orthopedist = doctors_by_specialty["orthopedics"][:1]
    seed_articles({**doctors_by_specialty, "orthopedics": lone_orthopedist}, timezone.now())
    for article in Article.objects.published():
        assert article.reviewer.specialties.filter(pk=article.specialty_id).exists(), article.slug
        assert article.reviewer in doctors_by_specialty[article.specialty.slug][1:]
    orthopedics = Article.objects.filter(specialty__slug="orthopedics")
    assert orthopedics.exists()
    assert set(orthopedics.values_list("status", flat=True)) == {ArticleStatus.IN_REVIEW}
    assert not orthopedics.exclude(reviewer=None).exists()


@pytest.fixture
def content_dir(tmp_path, monkeypatch):
    """A copy of articles/demo_content/ to break, read instead of the real one."""
    yield from content_copy(tmp_path, monkeypatch, demo, demo.demo_articles, demo._named_sources)


def test_every_article_file_is_read_with_its_front_matter():
    files = sorted(p.name for p in demo.CONTENT_DIR.iterdir() if p.name != demo.SOURCES_FILE)
    articles = demo_articles()
    assert [f"{n:02d}-{a.slug}.md" for n, a in enumerate(articles, start=1)] == files
    fever = articles[0]
    assert fever.slug == "fever-in-adults-when-to-see-a-doctor" and fever.specialty == "general-medicine"
    assert (fever.reviewed_days_ago, fever.published_days_ago, fever.views) == (40, 200, 34)
    assert fever.sources[0] == ("NHS: Health A to Z", "https://www.nhs.uk/conditions/")
    assert fever.body.startswith("A raised temperature") and fever.body.endswith("within hours.\n")
    assert "+++" not in fever.body


ARTICLE = "01-fever-in-adults-when-to-see-a-doctor.md"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("views = 34", "views = 34\nauthor = 'Nora'", "unknown key(s) author"),
        ("reviewed_days_ago = 40\n", "", "needs reviewed_days_ago and published_days_ago"),
        ('"nhs",', '"nhs-uk",', "no source 'nhs-uk'"),
        ("views = 34", 'views = 34\nstatus = "draft"', "status is published or in_review"),
        ("views = 34", "views = -1", "views"),
        ("+++\n", "---\n", "front matter between +++ lines"),
    ],
)
def test_a_mistake_in_an_article_file_is_reported_not_skipped(content_dir, old, new, message):
    path = content_dir / ARTICLE
    path.write_text(path.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
    with pytest.raises(demo.DemoArticleError) as error:
        demo_articles()
    assert message in str(error.value)


def test_a_file_not_named_as_an_article_is_reported(content_dir):
    (content_dir / "notes.txt").write_text("not an article", encoding="utf-8")
    with pytest.raises(demo.DemoArticleError, match="NN-<slug>.md"):
        demo_articles()


def test_new_demo_text_or_sources_withdraw_the_review_and_the_demo_reviewer_redoes_it(doctors_by_specialty):
    """Demo content stays in step with the review rule (articles.models.REVIEWED_FIELDS)."""
    now = timezone.now()
    seed_articles(doctors_by_specialty, now)
    derm = Article.objects.get(slug="adult-acne-causes-and-treatment")
    reviewed_at = derm.reviewed_at
    # An older demo text and source list, as a database seeded from an earlier version holds them.
    Article.objects.filter(pk=derm.pk).update(body_markdown="Older demo text.")
    Source.objects.filter(article=derm).update(url="https://old.example/")

    later = now + timedelta(days=1)
    seed_articles(doctors_by_specialty, later)

    derm.refresh_from_db()
    assert derm.body_markdown != "Older demo text."
    assert derm.status == ArticleStatus.PUBLISHED
    assert derm.reviewer == doctors_by_specialty["dermatology"][1] != derm.author
    assert derm.reviewed_at == later != reviewed_at
    # Unchanged demo articles keep their seeded review dates.
    fever = Article.objects.get(slug="fever-in-adults-when-to-see-a-doctor")
    assert fever.reviewed_at < later - timedelta(days=1)
