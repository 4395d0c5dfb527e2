"""The staff admin (/admin/) for consultations: specialties, doctors, questions
(with reassigning and moving to another specialty), and the read-only records:
replies, attachment metadata and the access log of who opened which question.

Patients' records (questions, replies, attachments) open only for staff with the
medical-record permission (consultations.access), on top of the model's own
permission; what a patient wrote is shown read-only to everyone. The doctors'
workbench lives in doctor_admin/. The guarantee's records (escalations,
outbox, sweeps) are registered by consultations.admin_sla.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import Case, F, IntegerField, Q, Value, When
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import ngettext

from consultations import (
    admin_sla,  # noqa: F401 - registers escalations, the outbox and sweep runs
    cover_cache,
    levels,
    services,
)
from consultations.access import may_change_specialty, may_read_medical_records, may_reassign
from consultations.doctor_admin import ReassignForm, sla_badge
from consultations.models import AccessLog, Attachment, DoctorProfile, DutyPeriod, Question, Reply, Specialty
from portal.admin_sites import ReadOnlyMixin

# The staff list's sort key, as the doctors' queue sorts: 0 urgent with a running clock,
# 1 other running clocks, 2 no clock running (answered, closed, paused...).
QUEUE_RANK = Case(
    When(Q(clock_due_at__isnull=False, is_urgent=True), then=Value(0)),
    When(clock_due_at__isnull=False, then=Value(1)),
    default=Value(2),
    output_field=IntegerField(),
)


def attachment_link(attachment: Attachment):
    """A link through the access-checked download view (attachments have no public URL)."""
    url = reverse("consultations:attachment", args=[attachment.pk])
    return format_html('<a href="{}">{}</a>', url, attachment.neutral_name)


class MedicalRecordMixin:
    """Patients' records: the model's permission is not enough, the medical-record one is needed too."""

    def has_module_permission(self, request):
        return may_read_medical_records(request.user) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return may_read_medical_records(request.user) and super().has_view_permission(request, obj)


@admin.register(Specialty)
class SpecialtyAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "sort_order")
    list_editable = ("sort_order",)
    search_fields = ("name",)
    prepopulated_fields = {"slug": ("name",)}


class DutyPeriodInline(admin.TabularInline):
    """The doctor's weekly schedule, in the time zone of their account."""

    model = DutyPeriod
    extra = 1
    verbose_name = "weekly period on duty"
    verbose_name_plural = "weekly schedule (in the doctor's own time zone; an end at or before the start ends next day)"


OWN_PROFILE_REFUSED = "You cannot verify your own doctor profile: ask a colleague."


@admin.register(DoctorProfile)
class DoctorProfileAdmin(admin.ModelAdmin):
    list_display = (
        "display_name",
        "email",
        "registration_number",
        "specialty_list",
        "is_verified",
        "is_senior",
        "off_duty",
    )
    list_filter = ("is_verified", "is_senior", "off_duty", "specialties")
    inlines = [DutyPeriodInline]
    search_fields = ("display_name", "registration_number", "user__email")
    autocomplete_fields = ("user",)
    filter_horizontal = ("specialties",)
    prepopulated_fields = {"slug": ("display_name",)}
    list_select_related = ("user",)
    actions = ["mark_verified", "mark_unverified"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("specialties")

    # Separation of duties: the staff who onboard doctors never give themselves the
    # workbench. Only a superuser moves a profile to another account or verifies their own.
    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        if obj is not None and not request.user.is_superuser:
            return (*fields, "user")
        return fields

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if request.user.is_superuser:
            return form

        class NotForOneself(form):
            def clean(self):
                cleaned = super().clean()
                owner = cleaned.get("user") or getattr(self.instance, "user", None)
                if cleaned.get("is_verified") and owner is not None and owner.pk == request.user.pk:
                    self.add_error("is_verified", OWN_PROFILE_REFUSED)
                return cleaned

        return NotForOneself

    @admin.display(description="e-mail", ordering="user__email")
    def email(self, obj):
        return obj.user.email

    @admin.display(description="specialties")
    def specialty_list(self, obj):
        return ", ".join(s.name for s in obj.specialties.all())

    def _set_verified(self, request, queryset, verified: bool, message: str) -> int:
        """Verify or unverify the doctors not so already, each written in their history
        (who gave or took the queue, when). Returns how many changed."""
        doctors = list(queryset.exclude(is_verified=verified))
        if verified and not request.user.is_superuser:
            own = [doctor for doctor in doctors if doctor.user_id == request.user.pk]
            if own:
                self.message_user(request, OWN_PROFILE_REFUSED, messages.ERROR)
            doctors = [doctor for doctor in doctors if doctor.user_id != request.user.pk]
        DoctorProfile.objects.filter(pk__in=[doctor.pk for doctor in doctors]).update(is_verified=verified)
        cover_cache.forget()  # update() sends no signal, hence also:
        for doctor in doctors:
            if not verified:  # their open questions go back to the specialty's queue
                services.release_claims_doctor_may_not_hold(doctor)
            self.log_change(request, doctor, message)
        return len(doctors)

    @admin.action(description="Verify the selected doctors (they get the queue)", permissions=["change"])
    def mark_verified(self, request, queryset):
        changed = self._set_verified(request, queryset, True, "Verified (they get the queue).")
        self.message_user(
            request,
            ngettext(
                "%(count)d doctor verified: they can now sign in at /doctor/.",
                "%(count)d doctors verified: they can now sign in at /doctor/.",
                changed,
            )
            % {"count": changed},
        )

    @admin.action(description="Withdraw verification (they lose the queue)", permissions=["change"])
    def mark_unverified(self, request, queryset):
        changed = self._set_verified(request, queryset, False, "Verification withdrawn (they lose the queue).")
        self.message_user(
            request,
            ngettext(
                "%(count)d doctor can no longer open the doctors' workbench.",
                "%(count)d doctors can no longer open the doctors' workbench.",
                changed,
            )
            % {"count": changed},
        )


class ReplyInline(ReadOnlyMixin, admin.StackedInline):
    model = Reply
    extra = 0
    fields = ("kind", "doctor", "author", "created_at", "body")
    readonly_fields = fields
    show_change_link = False


class AttachmentInline(ReadOnlyMixin, admin.TabularInline):
    model = Attachment
    extra = 0
    fields = ("download", "original_name", "content_type", "size", "uploaded_at")
    readonly_fields = fields

    @admin.display(description="file")
    def download(self, obj):
        return attachment_link(obj)


class SpecialtyForm(forms.Form):
    specialty = forms.ModelChoiceField(
        queryset=Specialty.objects.all(),
        label="Move this question to",
        empty_label="Choose a specialty",
        error_messages={"required": "Choose the specialty the question belongs to."},
    )


@admin.register(Question)
class QuestionAdmin(MedicalRecordMixin, admin.ModelAdmin):
    """Read-only: what the patient wrote is never edited by staff, and the workflow
    changes only through services. Routing has its own logged actions: reassign
    (a doctor of the specialty) and move to another specialty."""

    # Few, narrow columns so the list fits 1280 px beside its filters: the urgent and
    # follow-up tags ride in the title cell, one "doctor" column for claim and answer.
    list_display = ("title_column", "specialty", "status", "time_left", "doctor_column", "submitted_at")
    list_display_links = ("title_column",)
    list_filter = ("status", "is_urgent", "is_follow_up", "specialty")
    # Like the doctors' queue: running clocks first, urgent ones first among them, then
    # the clock that runs out first; questions without a running clock newest first.
    # (Newest by pk, not submitted_at: the list then marks "time left" as its sort column.)
    ordering = (QUEUE_RANK.asc(), F("clock_due_at").asc(nulls_last=True), "-pk")
    search_fields = ("title", "=patient__patient_code", "=patient__email")
    search_help_text = "Title words, a patient code (exact) or a patient's e-mail (exact)."
    list_select_related = ("specialty", "claimed_by", "answered_by")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    # The patient's own page is theirs alone: no "view on site" from here.
    view_on_site = False
    fieldsets = (
        (
            "The question",
            {
                "fields": (
                    "patient",
                    "specialty",
                    "title",
                    "description",
                    ("age", "sex"),
                    "medical_history",
                    "current_medication",
                    ("is_urgent", "red_flags"),
                )
            },
        ),
        ("Who answers", {"fields": ("status", ("claimed_by", "claimed_at"), ("answered_by", "first_answered_at"))}),
        (
            "Guarantee",
            {
                "fields": (
                    ("submitted_at", "due_at"),
                    ("clock_started_at", "clock_warn_at", "clock_due_at", "clock_paused_at"),
                    "is_follow_up",
                    tuple(level.marker for level in levels.LEVELS),
                    ("sweep_error", "sweep_retry_at"),
                )
            },
        ),
        ("Rating and closing", {"fields": (("rating", "rated_at"), "rating_comment", "closed_at", "updated_at")}),
    )
    inlines = [ReplyInline, AttachmentInline]
    actions = ["reassign_selected"]

    def has_add_permission(self, request):
        # Questions come from patients, with their guarantee: never typed in here.
        return False

    def has_change_permission(self, request, obj=None):
        # Every field is shown read-only and there is no Save button: the patient's
        # words are theirs, and the workflow belongs to services.
        return False

    def has_delete_permission(self, request, obj=None):
        # A medical record and its access log (who opened it) are kept: deleting
        # a question would cascade to both. Erasure requests go through a
        # deliberate process, not a button.
        return False

    def has_reassign_permission(self, request):
        return may_reassign(request.user)

    @admin.display(description="question", ordering="title")
    def title_column(self, obj):
        tags = [
            mark_safe('<span class="tag tag-urgent">Urgent</span>') if obj.is_urgent else "",
            mark_safe('<span class="tag tag-follow-up">Follow-up</span>') if obj.is_follow_up else "",
        ]
        return format_html("{} {}{}", obj.title, *tags)

    @admin.display(description="time left", ordering="clock_due_at")
    def time_left(self, obj):
        return sla_badge(obj, timezone.now())

    @admin.display(description="doctor")
    def doctor_column(self, obj):
        """Who answered it, else who holds the claim."""
        if obj.answered_by_id:
            return obj.answered_by.display_name
        if obj.claimed_by_id:
            return format_html("{} <small>(claimed)</small>", obj.claimed_by.display_name)
        return "—"

    class Media:
        css = {"all": ["consultations/workbench.css"]}

    def get_urls(self):
        return [
            path(
                "<path:object_id>/reassign/",
                self.admin_site.admin_view(self.reassign_view),
                name="consultations_question_reassign",
            ),
            path(
                "<path:object_id>/specialty/",
                self.admin_site.admin_view(self.specialty_view),
                name="consultations_question_specialty",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method == "GET":
            question = self.get_object(request, object_id)
            if question is not None and self.has_view_or_change_permission(request, question):
                services.log_access(request.user, question, "view", request)
        context = {
            "access_log_url": reverse("admin:consultations_accesslog_changelist") + f"?question={object_id}",
            "reassign_url": reverse("admin:consultations_question_reassign", args=[object_id]),
            "specialty_url": reverse("admin:consultations_question_specialty", args=[object_id]),
            "workbench_url": reverse("doctor_admin:consultations_question_change", args=[object_id]),
            "may_reassign": may_reassign(request.user),
            "may_change_specialty": may_change_specialty(request.user),
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra_context=context)

    def _reassign_page(self, request, questions, form, *, single=None):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Reassign questions" if single is None else f"Reassign “{single.title}”",
            "questions": questions,
            "form": form,
            "no_eligible_doctor": not form.fields["doctor"].queryset.exists(),
            "single": single,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/consultations/question/reassign.html", context)

    def _apply_reassign(self, request, pks, doctor) -> None:
        moved, closed, refused = 0, 0, []
        for pk in pks:
            try:
                if services.reassign_question(pk, doctor):
                    moved += 1
                else:
                    closed += 1
            except services.AssignmentRefused as refusal:
                refused.append(f"Question #{pk}: {refusal}")
        if moved:
            self.message_user(
                request,
                ngettext(
                    "%(count)d question now belongs to %(doctor)s.",
                    "%(count)d questions now belong to %(doctor)s.",
                    moved,
                )
                % {"count": moved, "doctor": doctor.display_name},
                messages.SUCCESS,
            )
        if closed:
            self.message_user(
                request,
                ngettext(
                    "%(count)d question was not open any more and was left as it is.",
                    "%(count)d questions were not open any more and were left as they are.",
                    closed,
                )
                % {"count": closed},
                messages.WARNING,
            )
        for line in refused:
            self.message_user(request, line, messages.ERROR)

    @admin.action(description="Reassign the selected questions to a doctor…", permissions=["reassign"])
    def reassign_selected(self, request, queryset):
        specialty_ids = set(queryset.values_list("specialty_id", flat=True))
        form = ReassignForm(request.POST if "apply" in request.POST else None, specialty_ids=specialty_ids)
        if form.is_valid():
            self._apply_reassign(request, list(queryset.values_list("pk", flat=True)), form.cleaned_data["doctor"])
            return None
        return self._reassign_page(request, queryset.select_related("specialty", "claimed_by"), form)

    def reassign_view(self, request, object_id):
        # The page shows the question's title, as its change page does: it needs that
        # page's permission too (the SLA dashboard's reassign is for staff without it).
        if not (may_reassign(request.user) and self.has_view_permission(request)):
            raise PermissionDenied
        question = self.get_object(request, object_id)
        if question is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        form = ReassignForm(request.POST or None, specialty_ids=[question.specialty_id])
        if request.method == "POST" and form.is_valid():
            self._apply_reassign(request, [question.pk], form.cleaned_data["doctor"])
            return HttpResponseRedirect(reverse("admin:consultations_question_change", args=[question.pk]))
        return self._reassign_page(request, [question], form, single=question)

    def specialty_view(self, request, object_id):
        """Move a waiting question to another specialty: an explicit, logged action
        (the patient's words stay as they wrote them)."""
        if not may_change_specialty(request.user):
            raise PermissionDenied
        question = self.get_object(request, object_id)
        if question is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        form = SpecialtyForm(request.POST or None, initial={"specialty": question.specialty_id})
        if request.method == "POST" and form.is_valid():
            result = services.change_specialty(question.pk, form.cleaned_data["specialty"], by=request.user)
            if result.ok:
                self.message_user(request, result.message, messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:consultations_question_change", args=[question.pk]))
            form.add_error("specialty", result.message)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Move question #{question.pk} to another specialty",
            "question": question,
            "form": form,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/consultations/question/specialty.html", context)


@admin.register(Reply)
class ReplyAdmin(MedicalRecordMixin, ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("question", "kind", "written_by", "created_at")
    list_filter = ("kind",)
    search_fields = ("=question__id",)
    search_help_text = "A question's number."
    list_select_related = ("question", "doctor", "author")
    show_full_result_count = False
    fields = ("question", "kind", "doctor", "author", "created_at", "body")
    readonly_fields = fields

    @admin.display(description="written by")
    def written_by(self, obj):
        return obj.doctor.display_name if obj.doctor_id else obj.author.email


@admin.register(Attachment)
class AttachmentAdmin(MedicalRecordMixin, ReadOnlyMixin, admin.ModelAdmin):
    """Metadata only: the file itself opens through the access-checked view."""

    list_display = ("neutral_name", "question", "content_type", "size", "uploaded_at")
    list_filter = ("content_type",)
    search_fields = ("=question__id",)
    search_help_text = "A question's number."
    list_select_related = ("question",)
    show_full_result_count = False
    fields = ("download", "question", "reply", "original_name", "content_type", "size", "uploaded_at")
    readonly_fields = fields

    @admin.display(description="file")
    def download(self, obj):
        return attachment_link(obj)


@admin.register(AccessLog)
class AccessLogAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Who opened which question: the privacy audit trail."""

    list_display = ("created_at", "user", "action", "question", "attachment", "ip_address")
    list_filter = ("action",)
    # A question's own page links here filtered to it ("who opened it"); its number is a column.
    linked_lookups = ("question",)
    search_fields = ("=question__id", "=user__email")
    search_help_text = "A question's number or a user's e-mail (exact)."
    list_select_related = ("user", "question", "attachment")
    show_full_result_count = False
    fields = ("created_at", "user", "action", "question", "attachment", "ip_address")
    readonly_fields = fields
