"""Articles in both admin sites: the editorial workflow for doctors and staff.

Staff admin (/admin/): staff see every article. A doctor who is staff writes
with the `write_article` permission and reviews with `review_article`.
Doctors' workbench (/doctor/): any verified doctor writes articles and reviews
colleagues' articles; they see their own articles, articles waiting for review
and published ones, and edit only their own drafts.
Either way nobody reviews their own article (articles.services refuses it,
and a database constraint backs that up), and a doctor edits only their own
articles, in either site, so no reviewer reviews words they wrote (editorial
staff without a doctor profile may edit any article and pick its author, but
never review). Changing the reviewed content of an article (articles.models.
REVIEWED_FIELDS and its sources) withdraws its review: a published article goes
back to medical review, off the site. Overdue reviews are listed first.
"""

from datetime import timedelta

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Case, IntegerField, Q, Value, When
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from articles import services
from articles.models import REVIEW_STATE_FIELDS, Article, ArticleStatus, ArticleViewDay, Source, Subscriber, Tag
from consultations.access import verified_doctor
from consultations.doctor_admin import doctor_admin_site

WORKFLOW_STEPS = {
    "submit": "Submit for medical review",
    "publish": "Approve and publish (I reviewed it)",
    "draft": "Send back to draft",
}

CHANGES_NEED_REVIEW = (
    "Changing the title, summary, body, image, author or sources withdraws the medical review: "
    "the article leaves the public site until a doctor other than the author reviews it again."
)
REVIEW_WITHDRAWN = (
    "The reviewed content changed, so the medical review was withdrawn: the article is off the public site "
    "and waits for a doctor other than the author to review it again."
)


class ReviewStateFilter(admin.SimpleListFilter):
    title = "medical review"
    parameter_name = "review"

    def lookups(self, request, model_admin):
        return [("overdue", "Overdue"), ("due_soon", "Due within 30 days"), ("current", "Current")]

    def queryset(self, request, queryset):
        now = timezone.now()
        published = queryset.filter(status=ArticleStatus.PUBLISHED)
        if self.value() == "overdue":
            return published.filter(Q(next_review_due_at__lte=now) | Q(review_overdue_at__isnull=False))
        if self.value() == "due_soon":
            return published.filter(next_review_due_at__gt=now, next_review_due_at__lte=now + timedelta(days=30))
        if self.value() == "current":
            return published.filter(next_review_due_at__gt=now, review_overdue_at__isnull=True)
        return queryset


class SourceInline(admin.StackedInline):
    """Sources are part of the article: whoever may edit the article edits them.

    Stacked, not tabular: the tabular inline's inputs have no <label> (axe "label",
    critical) and its table is wider than a phone (issue 15)."""

    model = Source
    extra = 1
    fields = ["title", "url", "position"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def _article_admin(self):
        return self.admin_site._registry[Article]

    def _may_edit(self, request, obj):
        parent = self._article_admin()
        return parent.has_add_permission(request) if obj is None else parent.has_change_permission(request, obj)

    def has_add_permission(self, request, obj=None):
        return self._may_edit(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._may_edit(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._may_edit(request, obj)

    def has_view_permission(self, request, obj=None):
        return self._article_admin().has_view_permission(request, obj)


# The versions of articles each reviewer last had shown (in their session), newest last.
SEEN_KEY = "articles.seen_versions"
SEEN_KEPT = 200


def remember_seen(request, article: Article) -> None:
    """This page shows `article` to someone who may approve it: which version it is.
    The session is written only when that changes (a reopened page costs no write)."""
    seen = dict(request.session.get(SEEN_KEY, {}))
    key, version = str(article.pk), services.article_version(article)
    if seen.get(key) == version:
        return
    seen.pop(key, None)
    seen[key] = version
    request.session[SEEN_KEY] = dict(list(seen.items())[-SEEN_KEPT:])


def approvable_version(request, article: Article) -> str | None:
    """The version an approval of `article` may vouch for: the one last shown to this user,
    and, from the article's page, only if that page shows it too (an older tab's button
    does not approve what a newer tab showed). None: nothing this user was shown."""
    seen = request.session.get(SEEN_KEY, {}).get(str(article.pk))
    on_page = request.POST.get("article_version")
    if seen is None or (on_page is not None and on_page != seen):
        return None
    return seen


class ArticleAdminBase(admin.ModelAdmin):
    list_display = ["title", "specialty", "status", "author", "reviewer", "review_state", "published_at"]
    list_filter = [ReviewStateFilter, "status", "specialty"]
    list_select_related = ["specialty", "author", "reviewer"]
    search_fields = ["title", "summary"]
    prepopulated_fields = {"slug": ["title"]}
    filter_horizontal = ["tags"]
    inlines = [SourceInline]
    actions = ["submit_selected", "publish_selected", "draft_selected"]
    readonly_fields = [
        "status",
        "reviewer",
        "submitted_at",
        "published_at",
        "reviewed_at",
        "next_review_due_at",
        "review_overdue_at",
        "reading_minutes",
        "view_count",
        "preview",
    ]
    change_form_template = "admin/articles/article/change_form.html"

    class Media:
        css = {"all": ["articles/admin.css"]}

    editable_fields = ["title", "slug", "summary", "specialty", "tags", "body_markdown", "hero_image", "hero_image_alt"]

    # --- who is acting -------------------------------------------------------------
    def acting_doctor(self, request):
        """The doctor profile the workflow records for this user (None for staff without one)."""
        return verified_doctor(request.user)

    def forced_author(self, request):
        """The author a new article gets automatically, or None if the user picks one."""
        return self.acting_doctor(request)

    def acts_as_staff(self, request) -> bool:
        """Editorial staff may move any article through the workflow (but never review it)."""
        return False

    # --- list ------------------------------------------------------------------------
    def get_queryset(self, request):
        now = timezone.now()
        # Annotate before ordering: the default ordering uses review_rank.
        queryset = self.model._default_manager.get_queryset().annotate(
            review_rank=Case(
                When(
                    Q(status=ArticleStatus.PUBLISHED)
                    & (Q(next_review_due_at__lte=now) | Q(review_overdue_at__isnull=False)),
                    then=Value(0),
                ),
                When(status=ArticleStatus.IN_REVIEW, then=Value(1)),
                default=Value(2),
                output_field=IntegerField(),
            )
        )
        return queryset.order_by(*self.get_ordering(request))

    def get_ordering(self, request):
        # Overdue reviews first (oldest due first), then articles waiting for review.
        return ["review_rank", "next_review_due_at", "-updated_at"]

    @admin.display(description="Review", ordering="next_review_due_at")
    def review_state(self, article):
        if article.status != ArticleStatus.PUBLISHED:
            return "—"
        if not article.review_is_current():
            return format_html(
                '<strong class="review-overdue">Overdue since {}</strong>',
                timezone.localtime(article.next_review_due_at).date(),
            )
        return format_html("Due {}", timezone.localtime(article.next_review_due_at).date())

    @admin.display(description="Preview (as published)")
    def preview(self, article):
        if not article.pk:
            return "Saved articles show a preview here."
        # body_html was sanitized by nh3 when the article was saved.
        return mark_safe(f'<div class="article-preview">{article.body_html}</div>')  # noqa: S308

    # --- form ------------------------------------------------------------------------
    def get_fields(self, request, obj=None):
        fields = list(self.editable_fields)
        if self.forced_author(request) is None:
            fields.insert(4, "author")
        if obj is not None:
            if not self.has_change_permission(request, obj):
                # A reader (e.g. the reviewer) gets the rendered preview instead of raw Markdown.
                fields.remove("body_markdown")
            fields += list(self.readonly_fields)
        return fields

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def save_model(self, request, obj, form, change):
        if not change:
            author = self.forced_author(request)
            if author is not None:
                obj.author = author
        obj._had_review = change and obj.has_review
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        article = form.instance
        if getattr(article, "_had_review", False):
            # The article or a source withdrew the review (articles.models): say so.
            article.refresh_from_db(fields=list(REVIEW_STATE_FIELDS))
            if not article.has_review:
                self.message_user(request, REVIEW_WITHDRAWN, messages.WARNING)

    def response_change(self, request, obj):
        if "_submit_for_review" in request.POST:
            self._run_step(request, obj, "submit")
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        obj = self.get_object(request, object_id)
        if obj is not None:
            steps = self.available_steps(request, obj)
            extra_context["workflow_buttons"] = [
                {"step": step, "label": WORKFLOW_STEPS[step], "url": self._step_url(obj, step)} for step in steps
            ]
            extra_context["workflow_help"] = self.workflow_help(request, obj)
        return super().change_view(request, object_id, form_url, extra_context)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and not add and request.method == "GET":
            if "publish" in self.available_steps(request, obj):
                # The version this page shows: what its button, or later the list, may approve.
                remember_seen(request, obj)
                context["article_version"] = services.article_version(obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def workflow_help(self, request, article):
        doctor = self.acting_doctor(request)
        if article.status == ArticleStatus.IN_REVIEW and doctor is not None and doctor.pk == article.author_id:
            return "Waiting for another doctor's medical review. You cannot review your own article."
        notes = []
        if article.status == ArticleStatus.PUBLISHED and not article.review_is_current():
            notes.append("The medical review is overdue: a doctor other than the author should review it again.")
        if article.has_review and self.has_change_permission(request, article):
            notes.append(CHANGES_NEED_REVIEW)
        return " ".join(notes)

    # --- workflow --------------------------------------------------------------------
    def available_steps(self, request, article) -> list[str]:
        doctor = self.acting_doctor(request)
        steps = []
        if article.status == ArticleStatus.DRAFT and self.may_submit(request, article):
            steps.append("submit")
        if article.status != ArticleStatus.DRAFT and self.may_review(request) and doctor is not None:
            if doctor.pk != article.author_id:
                steps.append("publish")
        if article.status != ArticleStatus.DRAFT and self.may_send_back(request, article):
            steps.append("draft")
        return steps

    def may_submit(self, request, article) -> bool:
        raise NotImplementedError

    def may_review(self, request) -> bool:
        raise NotImplementedError

    def may_send_back(self, request, article) -> bool:
        raise NotImplementedError

    def _step_url(self, article, step):
        return reverse(f"{self.admin_site.name}:articles_article_workflow", args=[article.pk, step])

    def get_urls(self):
        return [
            path(
                "<int:pk>/workflow/<str:step>/",
                self.admin_site.admin_view(require_POST(self.workflow_view)),
                name="articles_article_workflow",
            ),
            *super().get_urls(),
        ]

    def workflow_view(self, request, pk, step):
        if step not in WORKFLOW_STEPS:
            raise PermissionDenied
        article = get_object_or_404(self.get_queryset(request), pk=pk)
        # _run_step checks the user's rights and explains any refusal.
        self._run_step(request, article, step)
        if self.has_view_or_change_permission(request, article):
            return HttpResponseRedirect(reverse(f"{self.admin_site.name}:articles_article_change", args=[pk]))
        return HttpResponseRedirect(reverse(f"{self.admin_site.name}:articles_article_changelist"))

    def _run_step(self, request, article, step) -> bool:
        doctor = self.acting_doctor(request)
        try:
            if step == "submit":
                if not self.may_submit(request, article):
                    raise services.WorkflowError(f"You cannot submit “{article.title}” for review.")
                services.submit_for_review(article, by=None if self.acts_as_staff(request) else doctor)
                self.message_user(request, f"“{article.title}” was sent for medical review.", messages.SUCCESS)
            elif step == "publish":
                if doctor is None or not self.may_review(request):
                    raise services.WorkflowError("Only a verified doctor with review rights can review an article.")
                services.check_may_review(article, doctor)
                seen = approvable_version(request, article)
                if seen is None:
                    raise services.WorkflowError(
                        f"“{article.title}” was not published: open it and read this version before approving it."
                    )
                services.review_and_publish(article, reviewer=doctor, seen_version=seen)
                self.message_user(
                    request, f"“{article.title}” is published, reviewed by {doctor.display_name}.", messages.SUCCESS
                )
            elif step == "draft":
                if not self.may_send_back(request, article):
                    raise services.WorkflowError(f"You cannot send “{article.title}” back to draft.")
                services.return_to_draft(article, by=None if self.acts_as_staff(request) else doctor)
                self.message_user(request, f"“{article.title}” is a draft again.", messages.SUCCESS)
        except services.WorkflowError as error:
            self.message_user(request, str(error), messages.ERROR)
            return False
        return True

    def _run_on_selected(self, request, queryset, step):
        for article in queryset:
            self._run_step(request, article, step)

    @admin.action(description="Submit selected drafts for medical review")
    def submit_selected(self, request, queryset):
        self._run_on_selected(request, queryset, "submit")

    @admin.action(description="Approve and publish selected articles (I reviewed them)")
    def publish_selected(self, request, queryset):
        self._run_on_selected(request, queryset, "publish")

    @admin.action(description="Send selected articles back to draft")
    def draft_selected(self, request, queryset):
        self._run_on_selected(request, queryset, "draft")


@admin.register(Article)
class StaffArticleAdmin(ArticleAdminBase):
    def acts_as_staff(self, request):
        return request.user.has_perm("articles.change_article")

    def forced_author(self, request):
        # Editorial staff (no doctor profile) may enter an article for any doctor;
        # a doctor always writes as themselves, whatever their permissions, or they
        # could enter their own text under a colleague's name and then review it.
        return self.acting_doctor(request)

    def may_submit(self, request, article):
        user = request.user
        if user.has_perm("articles.change_article"):
            return True
        doctor = self.acting_doctor(request)
        return user.has_perm("articles.write_article") and doctor is not None and doctor.pk == article.author_id

    def may_review(self, request):
        return request.user.has_perm("articles.review_article")

    def may_send_back(self, request, article):
        user = request.user
        if user.has_perm("articles.change_article"):
            return True
        doctor = self.acting_doctor(request)
        if article.status == ArticleStatus.IN_REVIEW and self.may_review(request):
            return doctor is not None and doctor.pk != article.author_id
        return doctor is not None and doctor.pk == article.author_id and user.has_perm("articles.write_article")

    def _writes(self, request):
        return request.user.has_perm("articles.write_article") and self.acting_doctor(request) is not None

    def has_module_permission(self, request):
        return super().has_module_permission(request) or self._writes(request) or self.may_review(request)

    def has_view_permission(self, request, obj=None):
        # Staff see everything; writers and reviewers see every article too.
        return super().has_view_permission(request, obj) or self._writes(request) or self.may_review(request)

    def has_add_permission(self, request):
        return super().has_add_permission(request) or self._writes(request)

    def has_change_permission(self, request, obj=None):
        doctor = self.acting_doctor(request)
        if obj is not None and doctor is not None and obj.author_id != doctor.pk:
            # A doctor edits only their own articles (as on the workbench), even with
            # change_article: the reviewer never reviews words they wrote themselves.
            return False
        if super().has_change_permission(request, obj):
            return True
        if not self._writes(request):
            return False
        return obj is None or (obj.author_id == self.acting_doctor(request).pk and obj.status == ArticleStatus.DRAFT)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not self.may_review(request):
            actions.pop("publish_selected", None)
        return actions


class DoctorArticleAdmin(ArticleAdminBase):
    """The doctors' workbench: every verified doctor writes and reviews."""

    list_filter = [ReviewStateFilter, "status", "specialty"]

    def forced_author(self, request):
        return self.acting_doctor(request)

    def get_queryset(self, request):
        doctor = self.acting_doctor(request)
        queryset = super().get_queryset(request)
        if doctor is None:
            return queryset.none()
        return queryset.filter(
            Q(author=doctor) | Q(reviewer=doctor) | Q(status__in=[ArticleStatus.IN_REVIEW, ArticleStatus.PUBLISHED])
        )

    def _is_author(self, request, article):
        doctor = self.acting_doctor(request)
        return doctor is not None and article is not None and doctor.pk == article.author_id

    def may_submit(self, request, article):
        return self._is_author(request, article)

    def may_review(self, request):
        return self.acting_doctor(request) is not None

    def may_send_back(self, request, article):
        # The reviewer returns an article for changes; the author withdraws their own.
        if self._is_author(request, article):
            return True
        return article.status == ArticleStatus.IN_REVIEW and self.acting_doctor(request) is not None

    def has_module_permission(self, request):
        return self.acting_doctor(request) is not None

    def has_view_permission(self, request, obj=None):
        return self.acting_doctor(request) is not None

    def has_add_permission(self, request):
        return self.acting_doctor(request) is not None

    def has_change_permission(self, request, obj=None):
        if obj is None:
            return self.acting_doctor(request) is not None
        return self._is_author(request, obj) and obj.status == ArticleStatus.DRAFT

    def has_delete_permission(self, request, obj=None):
        # Only an author's never-published draft can be deleted here.
        return obj is not None and self.has_change_permission(request, obj) and obj.published_at is None


class TagAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    search_fields = ["name"]
    prepopulated_fields = {"slug": ["name"]}


admin.site.register(Tag, TagAdmin)


class DoctorTagAdmin(TagAdmin):
    def _doctor(self, request):
        return verified_doctor(request.user) is not None

    def has_module_permission(self, request):
        return self._doctor(request)

    def has_view_permission(self, request, obj=None):
        return self._doctor(request)

    def has_add_permission(self, request):
        return self._doctor(request)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


doctor_admin_site.register(Article, DoctorArticleAdmin)
doctor_admin_site.register(Tag, DoctorTagAdmin)


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin):
    list_display = ["email", "status", "consented_at", "confirmed_at", "unsubscribed_at"]
    list_filter = [("confirmed_at", admin.EmptyFieldListFilter), ("unsubscribed_at", admin.EmptyFieldListFilter)]
    search_fields = ["email"]
    readonly_fields = [
        "email",
        "consented_at",
        "confirmation_sent_at",
        "confirmations_sent",
        "confirmed_at",
        "unsubscribed_at",
        "created_at",
    ]

    def has_add_permission(self, request):
        # Addresses come only through the double opt-in.
        return False


@admin.register(ArticleViewDay)
class ArticleViewDayAdmin(admin.ModelAdmin):
    list_display = ["article", "day", "views"]
    # Read-only: the counts come from the view counter. (An editable article
    # choice would also be ordered by StaffArticleAdmin's annotation and fail.)
    readonly_fields = ["article", "day", "views"]
    list_filter = ["day"]
    list_select_related = ["article"]
    date_hierarchy = "day"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
