"""Health articles: medically reviewed pages, their sources and tags, view
counts per day, and newsletter subscribers.

The Markdown body is rendered to sanitized HTML once, on save, into
`body_html`; pages never render Markdown per request. The workflow rules
(submit, review, publish, overdue reviews) live in `articles.services`; one
rule lives here, where every save passes: a review vouches for the content it
saw (REVIEWED_FIELDS and the sources), so changing that content withdraws the
review and a published article goes back to medical review, off the site.
"""

import uuid
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models, transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from articles.markdown import render_markdown
from consultations.models import DoctorProfile, Specialty


class Tag(models.Model):
    name = models.CharField(max_length=60, unique=True)
    slug = models.SlugField(max_length=60, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return f"{reverse('articles:list')}?tag={self.slug}"


class ArticleStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In medical review"
    PUBLISHED = "published", "Published"


class ArticleQuerySet(models.QuerySet):
    def published(self):
        return self.filter(status=ArticleStatus.PUBLISHED, published_at__isnull=False)

    def for_cards(self):
        """What an article card shows, in one query."""
        return self.select_related("specialty", "reviewer")


def hero_image_path(instance, filename):
    # Random names: an uploaded file name never decides where it lands.
    return f"articles/{uuid.uuid4().hex}{Path(filename).suffix.lower()}"


HERO_IMAGE_MAX_BYTES = 5 * 1024 * 1024


def validate_hero_image_size(file):
    if file.size > HERO_IMAGE_MAX_BYTES:
        raise ValidationError("The image is larger than 5 MB; please upload a smaller one.")


# Paths under /articles/ that are not articles.
RESERVED_SLUGS = {"newsletter"}

# What a medical review vouches for: the words, the picture and who wrote them
# (the sources are checked by Source). Changing any of it withdraws the review
# (Article.withdraw_review); slug, specialty and tags only file the article.
REVIEWED_FIELDS = ("title", "summary", "body_markdown", "hero_image", "hero_image_alt", "author")
# What withdrawing a review changes.
REVIEW_STATE_FIELDS = ("status", "submitted_at", "reviewer", "reviewed_at", "next_review_due_at", "review_overdue_at")


class Article(models.Model):
    title = models.CharField(max_length=160)
    slug = models.SlugField(max_length=160, unique=True)
    summary = models.CharField(max_length=300, help_text="One or two sentences; also the page's meta description.")
    body_markdown = models.TextField(
        "body",
        help_text="Markdown. Use question-style headings (## What is …?) and bullet lists. "
        "HTML is sanitized: scripts, frames and event handlers are removed.",
    )
    # Rendered once on save from body_markdown; never edited by hand.
    body_html = models.TextField(editable=False, default="")
    toc = models.JSONField(editable=False, default=list, help_text="Table of contents: [{id, title, level}].")
    word_count = models.PositiveIntegerField(editable=False, default=0)
    reading_minutes = models.PositiveSmallIntegerField(editable=False, default=1)

    specialty = models.ForeignKey(Specialty, on_delete=models.PROTECT, related_name="articles")
    tags = models.ManyToManyField(Tag, blank=True, related_name="articles")
    author = models.ForeignKey(DoctorProfile, on_delete=models.PROTECT, related_name="articles_written")
    reviewer = models.ForeignKey(
        DoctorProfile,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="articles_reviewed",
        help_text="The doctor who medically reviewed the article (never its author).",
    )
    status = models.CharField(max_length=20, choices=ArticleStatus.choices, default=ArticleStatus.DRAFT)
    submitted_at = models.DateTimeField(null=True, blank=True, editable=False)
    published_at = models.DateTimeField(null=True, blank=True, editable=False)
    reviewed_at = models.DateTimeField(null=True, blank=True, editable=False)
    next_review_due_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Set once by the overdue sweep (which notifies the reviewer); cleared by a new review.
    review_overdue_at = models.DateTimeField(null=True, blank=True, editable=False)

    hero_image = models.ImageField(
        upload_to=hero_image_path, blank=True, validators=[validate_hero_image_size], help_text="Optional, up to 5 MB."
    )
    hero_image_alt = models.CharField(
        "hero image description", max_length=200, blank=True, help_text="What the image shows, for screen readers."
    )
    # Lifetime views, kept up to date by the periodic flush (never per request).
    view_count = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ArticleQuerySet.as_manager()

    class Meta:
        ordering = ["-published_at", "-created_at"]
        permissions = [
            ("write_article", "Can write articles and submit them for medical review"),
            ("review_article", "Can medically review and publish other doctors' articles"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(reviewer__isnull=True) | ~Q(reviewer=F("author")),
                name="article_reviewer_is_not_author",
                violation_error_message="A doctor cannot review their own article.",
            ),
            # A published article always names its reviewer and review date.
            models.CheckConstraint(
                condition=~Q(status="published")
                | Q(reviewer__isnull=False, published_at__isnull=False, reviewed_at__isnull=False),
                name="article_published_is_reviewed",
                violation_error_message="A published article needs a reviewer and review date.",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-published_at"], name="article_status_published_idx"),
            models.Index(fields=["next_review_due_at"], name="article_review_due_idx"),
        ]

    def __str__(self):
        return self.title

    def save(self, *args, **kwargs):
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and set(update_fields) & set(REVIEWED_FIELDS):
            # A new version of what a review vouches for (articles.services.article_version).
            kwargs["update_fields"] = update_fields = {*update_fields, "updated_at"}
        if update_fields is None:
            self.render_body()
        elif "body_markdown" in update_fields:
            self.render_body()
            kwargs["update_fields"] = update_fields = {
                *update_fields,
                "body_html",
                "toc",
                "word_count",
                "reading_minutes",
            }
        if self._reviewed_content_changed(update_fields):
            # Whoever saves, through whichever form: a review never outlives the text it approved.
            self.withdraw_review()
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, *REVIEW_STATE_FIELDS}
        super().save(*args, **kwargs)

    def get_absolute_url(self):
        return reverse("articles:detail", args=[self.slug])

    def clean(self):
        super().clean()
        if self.slug in RESERVED_SLUGS:
            raise ValidationError({"slug": f"“{self.slug}” is used by the site itself; please choose another slug."})
        if self.reviewer_id and self.reviewer_id == self.author_id:
            # Not tied to a field: the admin forms show neither field as editable.
            raise ValidationError("A doctor cannot review their own article.", code="self_review")

    def render_body(self) -> None:
        rendered = render_markdown(self.body_markdown)
        self.body_html = rendered.html
        self.toc = rendered.toc
        self.word_count = rendered.word_count
        self.reading_minutes = rendered.reading_minutes

    @property
    def has_review(self) -> bool:
        """A review (current or expired) stands for this article's content."""
        return self.status == ArticleStatus.PUBLISHED or self.reviewer_id is not None or self.reviewed_at is not None

    def withdraw_review(self, now=None) -> None:
        """Forget the review (in memory; the caller saves): a published article goes
        back to medical review and off the public site until a doctor other than the
        author reviews the new content (articles.services.review_and_publish).
        published_at is kept, as on every re-review."""
        if self.status == ArticleStatus.PUBLISHED:
            self.status = ArticleStatus.IN_REVIEW
            self.submitted_at = now or timezone.now()
        self.reviewer = None
        self.reviewed_at = None
        self.next_review_due_at = None
        self.review_overdue_at = None

    def _reviewed_content_changed(self, update_fields) -> bool:
        if self._state.adding or self.pk is None or not self.has_review:
            return False
        names = [name for name in REVIEWED_FIELDS if update_fields is None or name in update_fields]
        if not names:
            return False
        columns = [self._meta.get_field(name).attname for name in names]
        stored = type(self)._base_manager.filter(pk=self.pk).values(*columns).first()
        if stored is None:
            return False
        for column in columns:
            value = getattr(self, column)
            before = stored[column]
            if column == "hero_image":
                value, before = value.name or "", before or ""
            if isinstance(value, str) and isinstance(before, str):
                # The admin's form fields strip surrounding whitespace; that changes nothing a reader sees.
                value, before = value.strip(), before.strip()
            if value != before:
                return True
        return False

    @property
    def is_published(self) -> bool:
        return self.status == ArticleStatus.PUBLISHED and self.published_at is not None

    def review_is_current(self, now=None) -> bool:
        """The "Verified data" badge: reviewed, not flagged, and before the re-review date."""
        now = now or timezone.now()
        return (
            self.is_published
            and self.reviewer_id is not None
            and self.reviewed_at is not None
            and self.next_review_due_at is not None
            and self.review_overdue_at is None
            and now < self.next_review_due_at
        )

    @property
    def verified(self) -> bool:
        return self.review_is_current()

    @property
    def review_overdue(self) -> bool:
        return self.is_published and not self.review_is_current()


def validate_web_url(value):
    URLValidator(schemes=["http", "https"], message="Enter a web address starting with http:// or https://.")(value)


class Source(models.Model):
    """A reference the article relies on, shown under "Sources"."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="sources")
    title = models.CharField(max_length=250)
    url = models.URLField("web address", max_length=500, validators=[validate_web_url])
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "pk"]

    def __str__(self):
        return self.title

    # A source is part of the reviewed content: adding, changing (title or address)
    # or removing one withdraws the article's review, like a change to its text. In one
    # transaction with the source's own write, so no approval sees the one without the other.
    def save(self, *args, **kwargs):
        with transaction.atomic():
            changed = (
                self._state.adding
                or not Source._base_manager.filter(
                    pk=self.pk, article_id=self.article_id, title=self.title, url=self.url
                ).exists()
            )
            super().save(*args, **kwargs)
            if changed:
                withdraw_review_of(self.article_id)

    def delete(self, *args, **kwargs):
        article_id = self.article_id
        with transaction.atomic():
            result = super().delete(*args, **kwargs)
            withdraw_review_of(article_id)
        return result


def withdraw_review_of(article_id: int) -> bool:
    """Withdraw the review of an article whose sources changed; False if it had none."""
    article = Article._base_manager.filter(pk=article_id).first()
    if article is None:
        return False
    if not article.has_review:
        # Still a change to what a reviewer reads: a new version, so an approval of the one
        # shown before is refused (articles.services.review_and_publish, `seen_version`).
        Article._base_manager.filter(pk=article_id).update(updated_at=timezone.now())
        return False
    article.withdraw_review()
    article.save(update_fields=[*REVIEW_STATE_FIELDS, "updated_at"])
    return True


class ArticleViewDay(models.Model):
    """Views of one article on one (UTC) day, added by the periodic flush."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="view_days")
    day = models.DateField()
    views = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["article", "day"], name="article_view_day_unique")]
        indexes = [models.Index(fields=["day"], name="article_view_day_idx")]

    def __str__(self):
        return f"{self.article_id} on {self.day}: {self.views}"


class Subscriber(models.Model):
    """A newsletter address: confirmed by a link in an e-mail (double opt-in)."""

    email = models.EmailField("e-mail address", unique=True)
    consented_at = models.DateTimeField(help_text="When the person agreed to the terms and privacy policy.")
    confirmation_sent_at = models.DateTimeField(null=True, blank=True)
    confirmations_sent = models.PositiveSmallIntegerField(default=0)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.email

    @property
    def is_active(self) -> bool:
        return self.confirmed_at is not None and self.unsubscribed_at is None

    @property
    def status(self) -> str:
        if self.unsubscribed_at:
            return "unsubscribed"
        return "subscribed" if self.confirmed_at else "awaiting confirmation"
