"""Factories for articles: a published, reviewed article by default."""

from datetime import timedelta

import factory
from django.utils import timezone

from articles.models import REVIEW_STATE_FIELDS, Article, ArticleStatus, Source, Tag
from articles.services import next_review_due
from tests.factories import DoctorFactory, SpecialtyFactory

REVIEW_STATE_COLUMNS = [Article._meta.get_field(name).attname for name in REVIEW_STATE_FIELDS]

BODY = """Short introduction to the topic.

## What is it?

A plain explanation in a few sentences.

## When should I see a doctor?

- Symptoms that last longer than two weeks
- Fever above 39 °C
"""


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tag
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Topic {n}")
    slug = factory.Sequence(lambda n: f"topic-{n}")


class ArticleFactory(factory.django.DjangoModelFactory):
    """Published and reviewed `reviewed_ago` ago (default: 10 days).

    ArticleFactory(draft=True) gives a draft with no reviewer; tags=[...] sets tags.
    """

    class Meta:
        model = Article
        skip_postgeneration_save = True

    class Params:
        draft = factory.Trait(
            status=ArticleStatus.DRAFT, reviewer=None, published_at=None, reviewed_at=None, next_review_due_at=None
        )
        reviewed_ago = timedelta(days=10)

    title = factory.Sequence(lambda n: f"Health article number {n}")
    slug = factory.Sequence(lambda n: f"health-article-{n}")
    summary = "A short summary of what the article explains."
    body_markdown = BODY
    specialty = factory.SubFactory(SpecialtyFactory)
    author = factory.SubFactory(DoctorFactory)
    reviewer = factory.SubFactory(DoctorFactory)
    status = ArticleStatus.PUBLISHED
    reviewed_at = factory.LazyAttribute(lambda o: timezone.now() - o.reviewed_ago)
    published_at = factory.LazyAttribute(lambda o: o.reviewed_at)
    next_review_due_at = factory.LazyAttribute(lambda o: next_review_due(o.reviewed_at))

    @factory.post_generation
    def tags(obj, create, extracted, **kwargs):
        if create and extracted:
            obj.tags.set(extracted)


class SourceFactory(factory.django.DjangoModelFactory):
    """A source the article's reviewer saw: the article keeps its review as it was.

    (A real new source withdraws the review, articles.models.Source.save; tests of
    that rule create sources with Source.objects.create or through the admin.)"""

    class Meta:
        model = Source

    article = factory.SubFactory(ArticleFactory)
    title = factory.Sequence(lambda n: f"Reference {n}")
    url = "https://www.who.int/"

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        article = kwargs["article"]
        review = Article.objects.filter(pk=article.pk).values(*REVIEW_STATE_COLUMNS).get()
        source = super()._create(model_class, *args, **kwargs)
        Article.objects.filter(pk=article.pk).update(**review)
        return source
