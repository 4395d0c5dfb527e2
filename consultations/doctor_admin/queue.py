"""The queue and the question page: QuestionQueueAdmin, registered on the workbench site."""

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.templatetags.admin_list import items_for_result, result_headers
from django.core.exceptions import PermissionDenied
from django.db.models import BooleanField, ExpressionWrapper, F, Q, Value
from django.http import HttpResponseNotAllowed, HttpResponseNotModified, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from consultations import duty, pictures, queue, services
from consultations.access import (
    may_reassign,
    question_for,
    questions_visible_to,
    verified_doctor,
)
from consultations.doctor_admin.display import (
    live_etag,
    live_row,
    live_sla_badge,
    question_timeline,
    sla_badge,
)
from consultations.doctor_admin.filters import (
    CappedCountPaginator,
    ClaimFilter,
    QueueStatusFilter,
    SlaStateFilter,
    SpecialtyFilter,
)
from consultations.doctor_admin.forms import ReassignForm, ReplyForm
from consultations.models import DoctorProfile, Question, ReplyKind
from portal.admin_sites import ReadOnlyMixin
from portal.redirects import safe_next

# --- The queue and the question page ------------------------------------------------


class QuestionQueueAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "title_column",
        "specialty",
        "patient_column",
        "time_left_column",
        "claimed_by_column",
        "urgent_column",
        "row_actions",
    )
    list_display_links = ("title_column",)
    list_filter = (QueueStatusFilter, ClaimFilter, SlaStateFilter, SpecialtyFilter)
    search_fields = ("title",)
    search_help_text = "Search the questions' titles."
    list_select_related = ("specialty", "claimed_by")
    list_per_page = 50
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    sortable_by = ()
    paginator = CappedCountPaginator
    # Urgent first, then the clock that runs out first; pk keeps pages stable.
    ordering = (F("is_urgent").desc(), F("clock_due_at").asc(nulls_last=True), "pk")
    actions = ["claim_selected", "release_selected"]
    # The patient's own page is theirs alone: no "view on site" from the workbench.
    view_on_site = False
    change_list_template = "doctor_admin/queue.html"
    question_template = "doctor_admin/question.html"
    object_history_template = "doctor_admin/timeline.html"

    # Doctors are not staff and hold no model permissions: the site decides.
    def has_module_permission(self, request):
        return self.admin_site.has_permission(request)

    def has_view_permission(self, request, obj=None):
        return self.admin_site.has_permission(request)

    def lookup_allowed(self, lookup, value, request):
        """Only the queue's own filters. Django would also allow any of the model's fields,
        so a doctor could filter on what they never see: patients' rating comments letter
        by letter, or questions grouped by the patient's internal id. Anything else is 400."""
        return lookup in {list_filter.parameter_name for list_filter in self.list_filter}

    def get_queryset(self, request):
        doctor = verified_doctor(request.user)
        mine = (
            ExpressionWrapper(Q(claimed_by_id=doctor.pk), output_field=BooleanField())
            if doctor is not None
            else Value(False)
        )
        return questions_visible_to(request.user).annotate(claimed_by_viewer=mine)

    def get_ordering(self, request):
        # Answered and closed questions have no clock to sort by: newest first,
        # which the submitted_at index serves without sorting years of rows.
        if request.GET.get(QueueStatusFilter.parameter_name) in QueueStatusFilter.HISTORY:
            return ("-submitted_at", "-pk")
        return super().get_ordering(request)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if verified_doctor(request.user) is None:
            return {}
        return actions

    # Columns -------------------------------------------------------------------

    @admin.display(description="Question")
    def title_column(self, obj):
        follow_up = mark_safe(' <span class="tag tag-follow-up">Follow-up</span>') if obj.is_follow_up else ""
        return format_html("{}{}", obj.title, follow_up)

    @admin.display(description="Age and sex")
    def patient_column(self, obj):
        return f"{obj.age} · {obj.get_sex_display()}"

    @admin.display(description="Time left")
    def time_left_column(self, obj):
        return live_sla_badge(obj, timezone.now())

    @admin.display(description="Claimed by")
    def claimed_by_column(self, obj):
        if obj.claimed_by_id is None:
            return mark_safe('<span class="unclaimed">Unclaimed</span>')
        if obj.claimed_by_viewer:
            return mark_safe('<strong class="claimed-by-me">You</strong>')
        return obj.claimed_by.display_name

    @admin.display(description="Urgent")
    def urgent_column(self, obj):
        return mark_safe('<span class="tag tag-urgent">Urgent</span>') if obj.is_urgent else "—"

    @admin.display(description="Actions")
    def row_actions(self, obj):
        # Buttons post the changelist form (CSRF token included) to the
        # question's own claim/release URL: no nested forms, no inline script.
        if obj.status not in services.OPEN_STATUSES:
            return ""
        if obj.claimed_by_id is None:
            url, label = self._url("claim", obj.pk), "Claim"
        elif obj.claimed_by_viewer:
            url, label = self._url("release", obj.pk), "Release"
        else:
            return ""
        return format_html(
            '<button type="submit" class="button row-button" formaction="{}" formnovalidate>{}</button>', url, label
        )

    # Views ---------------------------------------------------------------------

    def _url(self, view: str, pk=None) -> str:
        name = f"{self.admin_site.name}:consultations_question_{view}"
        return reverse(name, args=[pk] if pk is not None else [])

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("live/", wrap(self.live_view), name="consultations_question_live"),
            path("<path:object_id>/claim/", wrap(self.claim_view), name="consultations_question_claim"),
            path("<path:object_id>/release/", wrap(self.release_view), name="consultations_question_release"),
            path("<path:object_id>/reassign/", wrap(self.reassign_view), name="consultations_question_reassign"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        doctor = verified_doctor(request.user)
        now = timezone.now()
        counts = queue.queue_counts(questions_visible_to(request.user), doctor, now)
        context = {
            "title": "Your queue" if doctor is not None else "Questions waiting",
            "counts": counts,
            "workbench_doctor": doctor,
            "duty": duty.workbench_summary(doctor, now),
            "live_url": self._url("live"),
            "live_poll_seconds": settings.WORKBENCH_POLL_SECONDS,
            # The countdown runs on the server's clock, whatever the doctor's computer says.
            "live_server_now": timezone.now().isoformat(),
            **(extra_context or {}),
        }
        response = super().changelist_view(request, extra_context=context)
        cl = getattr(response, "context_data", {}).get("cl")
        if cl is not None and not cl.result_count:
            # An empty queue still gets the table's head, hidden, for new rows to go into.
            response.context_data["live_headers"] = list(result_headers(cl))
        return response

    def live_view(self, request):
        """The queue's rows as JSON for the page to poll: the changelist itself (the same
        queryset, access rule, filters, ordering and first page), so it can show nothing
        the queue would not. Only the queue's four filters; an unchanged answer is a 304."""
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET"])
        allowed = {list_filter.parameter_name for list_filter in self.list_filter}
        unknown = sorted(set(request.GET) - allowed)
        if unknown:
            return JsonResponse({"error": f"Unknown parameter: {', '.join(unknown)}."}, status=400)
        try:
            cl = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return JsonResponse({"error": "These filters do not fit the queue."}, status=400)
        now = timezone.now()
        results = list(cl.result_list)
        rows = [live_row(question, now) for question in results]
        # The header's figures, as the page counts them (one query).
        counts = queue.queue_counts(questions_visible_to(request.user), verified_doctor(request.user), now)
        etag = live_etag(rows, [counts, cl.paginator.capped])
        # A proxy that compresses may have weakened the tag ("W/..."): the rows are the same.
        sent = {tag.strip().removeprefix("W/") for tag in request.headers.get("If-None-Match", "").split(",")}
        if etag in sent:
            response = HttpResponseNotModified()
        else:
            for row, question in zip(rows, results, strict=True):
                # The row exactly as the queue page renders it (its own columns and buttons).
                cells = "".join(items_for_result(cl, question, None))
                row["html"] = format_html('<tr data-question-id="{}">{}</tr>', question.pk, mark_safe(cells))
            response = JsonResponse(
                {"generated_at": now.isoformat(), "rows": rows, "counts": counts, "capped": cl.paginator.capped}
            )
        response["ETag"] = etag
        return response

    def _doctor_or_403(self, request) -> DoctorProfile:
        doctor = verified_doctor(request.user)
        if doctor is None:
            raise PermissionDenied("Only verified doctors can claim and answer questions.")
        return doctor

    def claim_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        question = question_for(request.user, object_id)
        result = services.claim_question(question.pk, self._doctor_or_403(request))
        if result.ok:
            messages.success(request, f"You have claimed “{question.title}”.")
        else:
            messages.error(request, result.message)
        return HttpResponseRedirect(safe_next(request, default=self._url("change", question.pk)))

    def release_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        question = question_for(request.user, object_id)
        if services.release_claim(question.pk, self._doctor_or_403(request)):
            messages.success(request, f"You released “{question.title}”: it is back in the queue for everyone.")
        else:
            messages.error(request, "You do not hold this question, so there is nothing to release.")
        return HttpResponseRedirect(safe_next(request, default=self._url("change", question.pk)))

    def reassign_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        question = question_for(request.user, object_id)
        if not may_reassign(request.user):
            raise PermissionDenied("Only staff can reassign questions.")
        form = ReassignForm(request.POST, specialty_ids=[question.specialty_id])
        if not form.is_valid():
            messages.error(request, " ".join(form.errors.get("doctor", ["Choose a doctor."])))
            return HttpResponseRedirect(self._url("change", question.pk))
        doctor = form.cleaned_data["doctor"]
        try:
            moved = services.reassign_question(question.pk, doctor)
        except services.AssignmentRefused as refusal:
            messages.error(request, str(refusal))
        else:
            if moved:
                messages.success(request, f"“{question.title}” now belongs to {doctor.display_name}.")
            else:
                messages.error(request, "Only open questions can be reassigned.")
        return HttpResponseRedirect(self._url("change", question.pk))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The question page: everything needed to answer, nothing to edit."""
        question = question_for(request.user, object_id)
        doctor = verified_doctor(request.user)
        form = ReplyForm(request.POST or None)
        if request.method == "POST":
            if doctor is None:
                raise PermissionDenied("Only verified doctors can reply to patients.")
            if form.is_valid():
                asks = form.cleaned_data["intent"] == "info"
                result = services.reply_as_doctor(
                    question.pk, doctor, form.cleaned_data["body"], ask_for_information=asks
                )
                if result.ok:
                    services.log_access(request.user, question, "info_request" if asks else "answer", request)
                    if asks:
                        messages.success(request, f"Your question went to the patient (“{question.title}”).")
                    else:
                        messages.success(request, f"Your answer to “{question.title}” was sent to the patient.")
                    return redirect(self._url("changelist"))
                form.add_error(None, result.refusal)
        else:
            services.log_access(request.user, question, "view", request)
        return self._render_question(request, question, doctor, form)

    def _render_question(self, request, question, doctor, form):
        question = Question.objects.select_related("specialty", "claimed_by", "answered_by", "patient").get(
            pk=question.pk
        )
        now = timezone.now()
        is_open = question.status in services.OPEN_STATUSES
        holder = question.claimed_by
        mine = doctor is not None and holder is not None and holder.pk == doctor.pk
        # A thread the doctor answered in a specialty they left stays readable, no more.
        may_take = doctor is not None and not services.assignment_refusal(question, doctor)
        replies = list(
            question.replies.select_related("doctor").prefetch_related("attachments").order_by("created_at", "pk")
        )
        for reply in replies:
            reply.shown_attachments = pictures.shown_attachments(reply.attachments.all())
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": question.title,
            "question": question,
            "patient_label": question.patient_label,
            "sla_badge": sla_badge(question, now),
            "replies": replies,
            "attachments": pictures.shown_attachments(question.attachments.filter(reply__isnull=True)),
            "doctor": doctor,
            "holder": holder,
            "is_open": is_open,
            "held_by_me": mine,
            "can_claim": may_take and is_open and holder is None,
            # A refused reply keeps its box, so the doctor's text is never lost.
            "can_reply": doctor is not None
            and (may_take and is_open and (holder is None or mine) or bool(form.errors)),
            "form": form,
            "reassign_form": (
                ReassignForm(specialty_ids=[question.specialty_id]) if may_reassign(request.user) and is_open else None
            ),
            "queue_url": self._url("changelist"),
            "claim_url": self._url("claim", question.pk),
            "release_url": self._url("release", question.pk),
            "reassign_url": self._url("reassign", question.pk),
            "timeline_url": self._url("history", question.pk),
            "ReplyKind": ReplyKind,
            "media": self.media,
        }
        return TemplateResponse(request, self.question_template, context)

    def history_view(self, request, object_id, extra_context=None):
        """A timeline built from the question itself, not the admin's change log
        (which would carry whatever the staff admin wrote, names included)."""
        question = question_for(request.user, object_id)
        services.log_access(request.user, question, "timeline", request)
        question = Question.objects.select_related("patient", "answered_by").get(pk=question.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Timeline: {question.title}",
            "question": question,
            "events": question_timeline(question),
            "question_url": self._url("change", question.pk),
            "queue_url": self._url("changelist"),
        }
        return TemplateResponse(request, self.object_history_template, context)

    # Actions -------------------------------------------------------------------

    @admin.action(description="Claim the selected questions")
    def claim_selected(self, request, queryset):
        doctor = self._doctor_or_403(request)
        claimed, refused = 0, []
        for pk, title in queryset.order_by().values_list("pk", "title"):
            result = services.claim_question(pk, doctor)
            if result.ok:
                claimed += 1
            else:
                refused.append(f"“{title}”: {result.message}")
        if claimed:
            self.message_user(request, f"You claimed {claimed} question{'s' if claimed != 1 else ''}.")
        for line in refused:
            self.message_user(request, line, messages.ERROR)

    @admin.action(description="Release the selected questions")
    def release_selected(self, request, queryset):
        doctor = self._doctor_or_403(request)
        released = sum(services.release_claim(pk, doctor) for pk in queryset.order_by().values_list("pk", flat=True))
        if released:
            self.message_user(request, f"You released {released} question{'s' if released != 1 else ''}.")
        else:
            self.message_user(request, "None of the selected questions was claimed by you.", messages.WARNING)

    class Media:
        css = {"all": ["consultations/workbench.css"]}
        js = ["consultations/workbench.js"]
