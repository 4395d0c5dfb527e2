"""The editorial workflow in both admin sites."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.urls import reverse

from articles.models import Article, ArticleStatus
from tests.articles.factories import ArticleFactory
from tests.factories import DoctorFactory, UserFactory

pytestmark = pytest.mark.django_db


def _form_data(specialty, **overrides):
    data = {
        "title": "Do I need antibiotics for a sore throat?",
        "slug": "sore-throat-antibiotics",
        "summary": "Most sore throats clear up on their own; here is when to see a doctor.",
        "specialty": specialty.pk,
        "body_markdown": "## Why not antibiotics?\n\n- Most are viral\n<script>alert(1)</script>",
        "hero_image_alt": "",
        "sources-TOTAL_FORMS": "1",
        "sources-INITIAL_FORMS": "0",
        "sources-MIN_NUM_FORMS": "0",
        "sources-MAX_NUM_FORMS": "1000",
        "sources-0-title": "NHS: sore throat",
        "sources-0-url": "https://www.nhs.uk/",
        "sources-0-position": "0",
    }
    data.update(overrides)
    return data


def _messages(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


def _grant(user, *codenames):
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="articles", codename__in=codenames))


# --- the doctors' workbench (/doctor/) --------------------------------------------------


def test_doctor_writes_submits_and_a_colleague_publishes(client, doctor, reviewer, specialty):
    client.force_login(doctor.user)
    response = client.post(reverse("doctor_admin:articles_article_add"), _form_data(specialty))
    assert response.status_code == 302, response.content.decode()[:3000]
    article = Article.objects.get(slug="sore-throat-antibiotics")
    assert article.author == doctor
    assert article.status == ArticleStatus.DRAFT
    assert "<script" not in article.body_html
    assert article.sources.get().url == "https://www.nhs.uk/"

    change_url = reverse("doctor_admin:articles_article_change", args=[article.pk])
    data = _form_data(specialty, **{"_submit_for_review": "1", "sources-INITIAL_FORMS": "1"})
    data["sources-0-id"] = article.sources.get().pk
    data["sources-0-article"] = article.pk
    client.post(change_url, data)
    article.refresh_from_db()
    assert article.status == ArticleStatus.IN_REVIEW

    # The author cannot approve their own article.
    publish_url = reverse("doctor_admin:articles_article_workflow", args=[article.pk, "publish"])
    response = client.post(publish_url)
    assert any("cannot review their own" in m for m in _messages(response))
    article.refresh_from_db()
    assert article.status == ArticleStatus.IN_REVIEW

    client.force_login(reviewer.user)
    page = client.get(change_url)
    assert page.status_code == 200
    assert b"Approve and publish" in page.content
    response = client.post(publish_url)
    assert response.status_code == 302
    article.refresh_from_db()
    assert article.status == ArticleStatus.PUBLISHED
    assert article.reviewer == reviewer
    assert article.published_at and article.reviewed_at and article.next_review_due_at


def test_doctor_cannot_see_or_edit_a_colleagues_draft(client, doctor, reviewer, specialty):
    draft = ArticleFactory(draft=True, author=reviewer, specialty=specialty, title="Private draft")
    client.force_login(doctor.user)
    changelist = client.get(reverse("doctor_admin:articles_article_changelist"))
    assert changelist.status_code == 200
    assert b"Private draft" not in changelist.content
    change_url = reverse("doctor_admin:articles_article_change", args=[draft.pk])
    assert client.get(change_url).status_code == 302  # "does not exist" redirect
    client.post(change_url, _form_data(specialty, title="Hijacked"))
    draft.refresh_from_db()
    assert draft.title == "Private draft"
    client.post(reverse("doctor_admin:articles_article_workflow", args=[draft.pk, "submit"]))
    draft.refresh_from_db()
    assert draft.status == ArticleStatus.DRAFT


def test_reviewer_may_read_but_not_edit_a_colleagues_article_in_review(client, doctor, reviewer, specialty):
    in_review = ArticleFactory(
        draft=True, status=ArticleStatus.IN_REVIEW, author=reviewer, specialty=specialty, title="Waiting"
    )
    client.force_login(doctor.user)
    change_url = reverse("doctor_admin:articles_article_change", args=[in_review.pk])
    assert client.get(change_url).status_code == 200
    assert client.post(change_url, _form_data(specialty, title="Edited by reviewer")).status_code == 403
    # But may send it back to the author for changes.
    client.post(reverse("doctor_admin:articles_article_workflow", args=[in_review.pk, "draft"]))
    in_review.refresh_from_db()
    assert in_review.status == ArticleStatus.DRAFT


def test_patient_and_unverified_doctor_cannot_use_the_article_admin(client, patient, unverified_doctor):
    for user in (patient, unverified_doctor.user):
        client.force_login(user)
        response = client.get(reverse("doctor_admin:articles_article_changelist"))
        assert response.status_code == 302
        assert "/login/" in response["Location"]


def test_overdue_reviews_are_listed_first(client, doctor, reviewer, specialty):
    ArticleFactory(author=doctor, reviewer=reviewer, specialty=specialty, title="Fresh article")
    ArticleFactory(
        author=doctor, reviewer=reviewer, specialty=specialty, title="Stale article", reviewed_ago=timedelta(days=800)
    )
    ArticleFactory(
        author=doctor,
        reviewer=reviewer,
        specialty=specialty,
        title="Slightly stale article",
        reviewed_ago=timedelta(days=380),
    )
    for site in ("doctor_admin", "admin"):
        user = doctor.user if site == "doctor_admin" else UserFactory(is_staff=True, is_superuser=True)
        client.force_login(user)
        html = client.get(reverse(f"{site}:articles_article_changelist")).content.decode()
        positions = [html.index(title) for title in ("Stale article", "Slightly stale article", "Fresh article")]
        assert positions == sorted(positions), site
        assert "Overdue since" in html


# --- the staff admin (/admin/) ----------------------------------------------------------


def test_staff_see_every_article_including_drafts(client, staff, doctor, specialty):
    ArticleFactory(draft=True, author=doctor, specialty=specialty, title="Someone's draft")
    client.force_login(staff)
    html = client.get(reverse("admin:articles_article_changelist")).content.decode()
    assert "Someone&#x27;s draft" in html or "Someone's draft" in html


def test_staff_without_a_doctor_profile_cannot_review(client, staff, doctor, specialty):
    in_review = ArticleFactory(draft=True, status=ArticleStatus.IN_REVIEW, author=doctor, specialty=specialty)
    client.force_login(staff)
    response = client.post(reverse("admin:articles_article_workflow", args=[in_review.pk, "publish"]))
    assert any("Only a verified doctor" in m for m in _messages(response))
    in_review.refresh_from_db()
    assert in_review.status == ArticleStatus.IN_REVIEW


def test_staff_doctor_with_author_permission_writes_only_as_themselves(client, specialty):
    author = DoctorFactory(user=UserFactory(is_staff=True), specialties=[specialty])
    _grant(author.user, "write_article")
    other = DoctorFactory(specialties=[specialty])
    client.force_login(author.user)
    response = client.post(reverse("admin:articles_article_add"), _form_data(specialty, author=other.pk))
    assert response.status_code == 302
    article = Article.objects.get()
    assert article.author == author

    # Without the review permission, publishing is refused even for someone else's article.
    others = ArticleFactory(draft=True, status=ArticleStatus.IN_REVIEW, author=other, specialty=specialty)
    client.post(reverse("admin:articles_article_workflow", args=[others.pk, "publish"]))
    others.refresh_from_db()
    assert others.status == ArticleStatus.IN_REVIEW
    changelist = client.get(reverse("admin:articles_article_changelist")).content.decode()
    assert "publish_selected" not in changelist


def test_staff_doctor_with_review_permission_publishes_via_action_but_never_own(client, specialty):
    reviewer = DoctorFactory(user=UserFactory(is_staff=True), specialties=[specialty])
    _grant(reviewer.user, "write_article", "review_article")
    other = DoctorFactory(specialties=[specialty])
    theirs = ArticleFactory(draft=True, status=ArticleStatus.IN_REVIEW, author=other, specialty=specialty)
    mine = ArticleFactory(draft=True, status=ArticleStatus.IN_REVIEW, author=reviewer, specialty=specialty)
    client.force_login(reviewer.user)
    client.get(reverse("admin:articles_article_change", args=[theirs.pk]))  # read before approving
    response = client.post(
        reverse("admin:articles_article_changelist"),
        {"action": "publish_selected", "_selected_action": [theirs.pk, mine.pk]},
        follow=True,
    )
    theirs.refresh_from_db()
    mine.refresh_from_db()
    assert theirs.status == ArticleStatus.PUBLISHED and theirs.reviewer == reviewer
    assert mine.status == ArticleStatus.IN_REVIEW
    assert any("cannot review their own" in m for m in _messages(response))


def test_article_admin_preview_shows_sanitized_body(client, staff, article):
    article.body_markdown = "## Heading\n\n<img src=x onerror=alert(1)>"
    article.save()
    client.force_login(staff)
    html = client.get(reverse("admin:articles_article_change", args=[article.pk])).content.decode()
    preview = html.split('<div class="article-preview">', 1)[1].split("</div>", 1)[0]
    assert 'id="s-heading"' in preview
    assert "onerror" not in preview
    assert '<img src="x">' in preview
