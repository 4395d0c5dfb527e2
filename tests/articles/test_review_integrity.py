"""A published article never shows a medical review for content its reviewer did not see.

The reviewed content (title, summary, body, hero image and its description,
author, sources) cannot change without the review being redone: any change
withdraws the review and sends a published article back to medical review,
off the public site. And nobody reviews words they wrote: a doctor in the staff
admin writes and edits only as themselves.
"""

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.db import IntegrityError, transaction
from django.urls import reverse

from articles import services
from articles.admin import SEEN_KEY
from articles.models import Article, ArticleStatus, Source
from tests.articles.factories import ArticleFactory, SourceFactory
from tests.factories import DoctorFactory, UserFactory

pytestmark = pytest.mark.django_db

DANGEROUS = "Stop all your medication now."


def _editor(*codenames):
    """Editorial staff without a doctor profile (may edit, never review)."""
    user = UserFactory(email="editor@example.com", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="articles", codename__in=["view_article", *codenames])
    )
    return user


def _change_form_data(client, url, **overrides):
    """What the change form would post back unchanged, plus `overrides`."""
    page = client.get(url)
    assert page.status_code == 200
    context = page.context
    form = context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if name == "tags":
            data[name] = [tag.pk for tag in value] if value else []
        elif name == "hero_image":
            continue
        elif value is not None:
            data[name] = getattr(value, "pk", value)
    for formset in context["inline_admin_formsets"]:
        management = formset.formset.management_form
        prefix = formset.formset.prefix
        forms = [f for f in formset.formset.forms if f.instance.pk]
        data.update(
            {
                f"{prefix}-TOTAL_FORMS": len(forms),
                f"{prefix}-INITIAL_FORMS": len(forms),
                f"{prefix}-MIN_NUM_FORMS": management.initial.get("MIN_NUM_FORMS", 0),
                f"{prefix}-MAX_NUM_FORMS": 1000,
            }
        )
        for index, inline_form in enumerate(forms):
            for name in ("title", "url", "position"):
                data[f"{prefix}-{index}-{name}"] = getattr(inline_form.instance, name)
            data[f"{prefix}-{index}-id"] = inline_form.instance.pk
            data[f"{prefix}-{index}-article"] = inline_form.instance.article_id
    data.update(overrides)
    return data


def _assert_review_withdrawn(article):
    article.refresh_from_db()
    assert article.status == ArticleStatus.IN_REVIEW
    assert article.reviewer is None
    assert article.reviewed_at is None and article.next_review_due_at is None
    assert not article.is_published and not article.verified


@pytest.mark.parametrize(
    "field, value",
    [
        ("body_markdown", DANGEROUS),
        ("title", "Stop your medication"),
        ("summary", DANGEROUS),
        ("hero_image_alt", "A patient throwing pills away"),
    ],
)
def test_editor_changing_a_published_articles_content_withdraws_the_review(client, article, reviewer, field, value):
    public_url = article.get_absolute_url()
    before = client.get(public_url)  # also fills the page caches
    assert before.status_code == 200 and "Rita Reviewer" in before.content.decode()

    client.force_login(_editor("change_article"))
    url = reverse("admin:articles_article_change", args=[article.pk])
    response = client.post(url, _change_form_data(client, url, **{field: value}))
    assert response.status_code == 302, response.content.decode()[:2000]

    _assert_review_withdrawn(article)
    assert getattr(article, field) == value
    assert any("medical review was withdrawn" in str(m) for m in get_messages(response.wsgi_request))
    client.logout()
    # The cached copy of the reviewed page is retired with the edit.
    assert client.get(public_url).status_code == 404


def test_editor_changing_a_source_withdraws_the_review(client, article):
    source = SourceFactory(article=article, title="WHO: acne", url="https://www.who.int/")
    services.review_and_publish(article, reviewer=article.reviewer)
    client.force_login(_editor("change_article"))
    url = reverse("admin:articles_article_change", args=[article.pk])
    data = _change_form_data(client, url, **{"sources-0-url": "https://quack.example/"})
    assert client.post(url, data).status_code == 302
    source.refresh_from_db()
    assert source.url == "https://quack.example/"
    _assert_review_withdrawn(article)


def test_editor_changing_the_author_withdraws_the_review(client, article, specialty):
    other = DoctorFactory(specialties=[specialty])
    client.force_login(_editor("change_article"))
    url = reverse("admin:articles_article_change", args=[article.pk])
    assert client.post(url, _change_form_data(client, url, author=other.pk)).status_code == 302
    _assert_review_withdrawn(article)
    assert article.author == other


def test_editor_cannot_make_the_reviewer_the_author(client, article, reviewer):
    client.force_login(_editor("change_article"))
    url = reverse("admin:articles_article_change", args=[article.pk])
    response = client.post(url, _change_form_data(client, url, author=reviewer.pk))
    article.refresh_from_db()
    assert article.author != reviewer
    # Whatever the form does, the database refuses an author who reviewed the article.
    with pytest.raises(IntegrityError), transaction.atomic():
        Article.objects.filter(pk=article.pk).update(author=reviewer)
    assert response.status_code in (200, 302)


def test_editor_changing_only_tags_and_slug_keeps_the_review(client, article, reviewer):
    client.force_login(_editor("change_article"))
    url = reverse("admin:articles_article_change", args=[article.pk])
    response = client.post(url, _change_form_data(client, url, slug="adult-acne"))
    assert response.status_code == 302
    article.refresh_from_db()
    assert article.slug == "adult-acne"
    assert article.status == ArticleStatus.PUBLISHED and article.reviewer == reviewer and article.verified


def test_the_rule_holds_outside_the_admin(article):
    article.body_markdown = DANGEROUS
    article.save()
    _assert_review_withdrawn(article)
    assert DANGEROUS in article.body_html

    again = ArticleFactory(specialty=article.specialty)
    source = SourceFactory(article=again)
    services.review_and_publish(again, reviewer=again.reviewer)
    source.delete()
    _assert_review_withdrawn(again)

    third = ArticleFactory(specialty=article.specialty)
    Source.objects.create(article=third, title="New claim", url="https://quack.example/")
    _assert_review_withdrawn(third)


def test_a_withdrawn_review_can_be_redone(article, reviewer):
    article.summary = "Corrected summary."
    article.save()
    services.review_and_publish(article, reviewer=reviewer)
    article.refresh_from_db()
    assert article.status == ArticleStatus.PUBLISHED and article.verified


def test_staff_doctor_cannot_enter_an_article_for_a_colleague_and_review_it(client, specialty):
    from tests.articles.test_admin import _form_data

    staff_doctor = DoctorFactory(user=UserFactory(is_staff=True), specialties=[specialty])
    staff_doctor.user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="articles",
            codename__in=["view_article", "add_article", "change_article", "write_article", "review_article"],
        )
    )
    colleague = DoctorFactory(specialties=[specialty])
    client.force_login(staff_doctor.user)
    response = client.post(reverse("admin:articles_article_add"), _form_data(specialty, author=colleague.pk))
    assert response.status_code == 302
    article = Article.objects.get(slug="sore-throat-antibiotics")
    assert article.author == staff_doctor

    client.post(reverse("admin:articles_article_workflow", args=[article.pk, "submit"]))
    client.post(reverse("admin:articles_article_workflow", args=[article.pk, "publish"]))
    article.refresh_from_db()
    assert article.status != ArticleStatus.PUBLISHED and article.reviewer is None


def test_staff_doctor_cannot_rewrite_a_colleagues_article_and_then_review_it(client, specialty):
    staff_doctor = DoctorFactory(user=UserFactory(is_staff=True), specialties=[specialty])
    staff_doctor.user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="articles",
            codename__in=["view_article", "change_article", "write_article", "review_article"],
        )
    )
    colleague = DoctorFactory(specialties=[specialty])
    theirs = ArticleFactory(draft=True, status=ArticleStatus.IN_REVIEW, author=colleague, specialty=specialty)
    client.force_login(staff_doctor.user)
    url = reverse("admin:articles_article_change", args=[theirs.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    response = client.post(url, {"body_markdown": DANGEROUS, "title": "x"})
    assert response.status_code == 403
    theirs.refresh_from_db()
    assert theirs.body_markdown != DANGEROUS


# --- An approval covers the version its reviewer was shown -------------------------------


def _in_review(author, specialty):
    return ArticleFactory(draft=True, status=ArticleStatus.IN_REVIEW, author=author, specialty=specialty)


def _publish(client, article):
    return client.post(reverse("doctor_admin:articles_article_workflow", args=[article.pk, "publish"]), follow=True)


def _open(client, article):
    page = client.get(reverse("doctor_admin:articles_article_change", args=[article.pk]))
    assert page.status_code == 200 and b"Approve and publish" in page.content


def _approve_from_list(client, *articles):
    return client.post(
        reverse("doctor_admin:articles_article_changelist"),
        {"action": "publish_selected", "_selected_action": [article.pk for article in articles]},
        follow=True,
    )


def _said(response) -> str:
    return " ".join(str(message) for message in get_messages(response.wsgi_request))


def _author_saves(article, **fields):
    edited = Article.objects.get(pk=article.pk)
    for name, value in fields.items():
        setattr(edited, name, value)
    edited.save()


def test_an_approval_of_a_version_saved_over_while_the_reviewer_read_it_is_refused(client, doctor, reviewer, specialty):
    """The reviewer read one text; the author saved another meanwhile: approving must not
    publish words the reviewer never saw."""
    article = _in_review(doctor, specialty)
    client.force_login(reviewer.user)
    _open(client, article)
    _author_saves(article, body_markdown=DANGEROUS)

    response = _publish(client, article)
    assert "was saved again after you opened it" in _said(response)
    article.refresh_from_db()
    assert article.status == ArticleStatus.IN_REVIEW and article.reviewer is None

    _open(client, article)  # reads the new version, then approves it
    _publish(client, article)
    article.refresh_from_db()
    assert article.status == ArticleStatus.PUBLISHED and article.reviewer == reviewer


def test_a_source_added_after_the_article_was_opened_refuses_the_approval(client, doctor, reviewer, specialty):
    article = _in_review(doctor, specialty)
    client.force_login(reviewer.user)
    _open(client, article)
    Source.objects.create(article=article, title="New claim", url="https://quack.example/")
    assert "was saved again after you opened it" in _said(_publish(client, article))
    article.refresh_from_db()
    assert article.status == ArticleStatus.IN_REVIEW


def test_approving_from_the_list_covers_the_versions_the_reviewer_opened(client, doctor, reviewer, specialty):
    """The list shows titles, not texts: an approval from it vouches for the version of each
    article its reviewer last opened. Read, then changed by the author, then approved from
    the list: refused. Never opened: refused."""
    read, changed, unread = (_in_review(doctor, specialty) for _ in range(3))
    client.force_login(reviewer.user)
    _open(client, read)
    _open(client, changed)
    _author_saves(changed, summary="Now says something else.")

    response = _approve_from_list(client, read, changed, unread)
    for article in (read, changed, unread):
        article.refresh_from_db()
    assert read.status == ArticleStatus.PUBLISHED and read.reviewer == reviewer
    assert changed.status == ArticleStatus.IN_REVIEW and unread.status == ArticleStatus.IN_REVIEW
    said = _said(response)
    assert f"“{changed.title}” was saved again after you opened it" in said
    assert f"“{unread.title}” was not published: open it and read this version before approving it" in said


def test_an_approval_from_someone_never_shown_the_article_is_refused(client, doctor, reviewer, specialty):
    article = _in_review(doctor, specialty)
    client.force_login(reviewer.user)
    assert "open it and read this version before approving it" in _said(_publish(client, article))
    article.refresh_from_db()
    assert article.status == ArticleStatus.IN_REVIEW


def test_an_older_tabs_button_does_not_approve_what_a_newer_tab_showed(client, doctor, reviewer, specialty):
    """Tab A shows the first text; the author saves a second; tab B shows it. The button
    in tab A approves the page it sits on, which is no longer the version to approve."""
    article = _in_review(doctor, specialty)
    client.force_login(reviewer.user)
    change = reverse("doctor_admin:articles_article_change", args=[article.pk])
    tab_a = client.get(change).context["article_version"]
    _author_saves(article, body_markdown=DANGEROUS)
    client.get(change)  # tab B
    url = reverse("doctor_admin:articles_article_workflow", args=[article.pk, "publish"])
    response = client.post(url, {"article_version": tab_a}, follow=True)
    assert "open it and read this version before approving it" in _said(response)
    article.refresh_from_db()
    assert article.status == ArticleStatus.IN_REVIEW


def test_showing_an_article_to_someone_who_may_not_approve_it_records_nothing(client, doctor, specialty):
    article = _in_review(doctor, specialty)
    client.force_login(doctor.user)  # its author
    assert client.get(reverse("doctor_admin:articles_article_change", args=[article.pk])).status_code == 200
    assert SEEN_KEY not in client.session
