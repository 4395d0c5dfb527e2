"""The doctors' workbench: a separate admin site at /doctor/ where verified
doctors take questions from a queue, answer them and pick up follow-ups.

Doctors are not staff: the site admits verified doctors, and clinical staff who
oversee and reassign (staff status alone does not open it). Every page resolves
its question through consultations.access, and the patient is only ever
"Patient #CODE" with age and sex: no name, no e-mail, no original file names.
Only the queue's own filters are accepted in the URL.
"""

import hashlib
import json
from datetime import datetime, timedelta

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import AdminSite
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.templatetags.admin_list import items_for_result, result_headers
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import BooleanField, ExpressionWrapper, F, Q, Value
from django.http import HttpResponseNotAllowed, HttpResponseNotModified, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from consultations import duty, pictures, queue, services, sla
from consultations.access import (
    may_read_medical_records,
    may_reassign,
    may_use_workbench,
    question_for,
    questions_visible_to,
    verified_doctor,
)
from consultations.models import DoctorProfile, Escalation, Question, QuestionStatus, ReplyKind, Specialty
from portal.admin_sites import ScopedViewOnSiteMixin
from portal.forms import LoginNameLengthMixin
from portal.redirects import safe_next

QUEUE_STATE_LABELS = {
    sla.ON_TRACK: "On track",
    sla.AT_RISK: "At risk",
    sla.BREACHED: "Breached",
    sla.PAUSED: "Waiting for the patient",
}


# --- Plain helpers (tested directly) ------------------------------------------------


def describe_time_left(left: timedelta | None) -> str:
    """ "2 h 05 min left" / "overdue by 12 min": readable without the colour."""
    if left is None:
        return ""
    minutes = int(abs(left).total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    amount = f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"
    return f"{amount} left" if left >= timedelta(0) else f"overdue by {amount}"


def sla_badge(question: Question, now: datetime):
    """The time-left cell: a coloured badge whose words carry the state too."""
    state = sla.sla_state(question, now)
    label = QUEUE_STATE_LABELS.get(state) or sla.STATE_LABELS.get(state, state)
    detail = "" if state == sla.PAUSED else describe_time_left(sla.time_left(question, now))
    return format_html(
        '<span class="sla-badge sla-{}">{}</span> <span class="sla-detail">{}</span>', state, label, detail
    )


def running_clock(question: Question) -> tuple[datetime, datetime] | None:
    """(warn_at, due_at) of a clock that is running now, for the page to count down; else None."""
    if question.clock_due_at is None or question.clock_paused_at is not None or question.clock_warn_at is None:
        return None
    return question.clock_warn_at, question.clock_due_at


def live_sla_badge(question: Question, now: datetime):
    """The queue's time-left cell: the badge, with the times the workbench script counts
    down from (data attributes only: the CSP allows no inline script or style)."""
    clock = running_clock(question)
    times = (
        format_html(' data-warn-at="{}" data-due-at="{}"', clock[0].isoformat(), clock[1].isoformat()) if clock else ""
    )
    return format_html(
        '<span class="sla-live" data-question="{}" data-sig="{}"{}>{}</span>',
        question.pk,
        live_row(question, now)["sig"],
        times,
        sla_badge(question, now),
    )


def live_row(question: Question, now: datetime) -> dict:
    """What the live queue tells the page about one row: no more than the row shows."""
    state = sla.sla_state(question, now)
    clock = running_clock(question)
    row = {
        "id": question.pk,
        "title": question.title,
        "follow_up": question.is_follow_up,
        "state": state,
        "state_label": QUEUE_STATE_LABELS.get(state) or sla.STATE_LABELS.get(state, state),
        "warn_at": clock[0].isoformat() if clock else None,
        "due_at": clock[1].isoformat() if clock else None,
        "urgent": question.is_urgent,
        "claimed": None if question.claimed_by_id is None else ("you" if question.claimed_by_viewer else "other"),
        "status": question.status,
    }
    # The page swaps a row only when its signature changes (so a ticked box stays ticked).
    row["sig"] = hashlib.sha256(json.dumps(row, sort_keys=True).encode()).hexdigest()[:16]
    return row


def live_etag(rows: list[dict], extra) -> str:
    """Changes when anything the rows show changes (a state crossing included), not as time passes."""
    digest = hashlib.sha256(json.dumps([rows, extra], sort_keys=True).encode()).hexdigest()[:32]
    return f'"{digest}"'


# --- Login ------------------------------------------------------------------------


class WorkbenchLoginForm(LoginNameLengthMixin, AuthenticationForm):
    """Admin login without the admin's is_staff rule: verified doctors get in, patients do not."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "not_verified": (
            "Your doctor account has not been verified by the clinic team yet, so the queue is not open to you. "
            "Please contact the clinic team."
        ),
        "not_doctor": (
            "This sign-in is for the clinic's doctors. To see your own questions, sign in on the patient pages."
        ),
        "not_clinical": (
            "Your staff account may not read patients' questions. "
            "Ask the clinic's administrator for clinical access if your work needs it."
        ),
    }

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if may_use_workbench(user):
            return
        if hasattr(user, "doctor_profile"):
            code = "not_verified"
        else:
            code = "not_clinical" if user.is_staff else "not_doctor"
        raise ValidationError(self.error_messages[code], code=code)


class DoctorAdminSite(ScopedViewOnSiteMixin, AdminSite):
    site_header = "Ask a Doctor: doctors' workbench"
    site_title = "Doctors' workbench"
    index_title = "Your queue"
    site_url = "/"
    enable_nav_sidebar = False
    login_form = WorkbenchLoginForm
    login_template = "doctor_admin/login.html"

    def has_permission(self, request):
        return may_use_workbench(request.user)

    def index(self, request, extra_context=None):
        # The queue is the home page: there is nothing else a doctor comes for.
        return redirect("doctor_admin:consultations_question_changelist")

    def app_index(self, request, app_label, extra_context=None):
        if app_label == "consultations":
            return redirect("doctor_admin:consultations_question_changelist")
        return super().app_index(request, app_label, extra_context)

    def get_urls(self):
        return [path("duty/", self.admin_view(self.duty_switch_view), name="duty_switch"), *super().get_urls()]

    def duty_switch_view(self, request):
        """The doctor's own on/off duty switch (one POST from the queue)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        doctor = verified_doctor(request.user)
        if doctor is None:
            raise PermissionDenied("Only verified doctors go on or off duty.")
        if request.POST.get("on") == "1":
            duty.switch_on_duty(doctor)
            messages.success(request, duty.describe_duty(doctor, timezone.now()))
        else:
            duty.switch_off_duty(doctor)
            messages.success(request, "You are off duty: you get no e-mails about new work until you go on duty again.")
        return HttpResponseRedirect(
            safe_next(
                request, request.POST.get("next", ""), default=reverse("doctor_admin:consultations_question_changelist")
            )
        )


doctor_admin_site = DoctorAdminSite(name="doctor_admin")
doctor_admin_site.disable_action("delete_selected")


# --- Queue pagination and filters ---------------------------------------------------


class CappedCountPaginator(Paginator):
    """Counts at most `cap` matching rows, so no page load scans the whole table.

    The open queue is far below the cap; only "everything" views over years of
    answered questions reach it, and then the list says "more than N".
    """

    cap = 5000
    capped = False

    @cached_property
    def count(self):
        # Only the ids, unordered: the count need not sort or compare whole rows.
        found = self.object_list.order_by().values("pk")[: self.cap + 1].count()
        self.capped = found > self.cap
        return min(found, self.cap)


class QueueStatusFilter(admin.SimpleListFilter):
    """Defaults to the open queue (waiting for a doctor or for the patient)."""

    title = "status"
    parameter_name = "show"
    HISTORY = {"answered", "closed", "all"}

    def lookups(self, request, model_admin):
        return [("answered", "Answered"), ("closed", "Closed"), ("all", "Everything")]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "answered":
            return queryset.filter(status=QuestionStatus.ANSWERED)
        if value == "closed":
            return queryset.filter(status=QuestionStatus.CLOSED)
        if value == "all":
            return queryset
        return queryset.filter(status__in=services.OPEN_STATUSES)

    def choices(self, changelist):
        value = self.value()
        yield {
            "selected": value not in self.HISTORY,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "Open queue",
        }
        for lookup, title in self.lookup_choices:
            yield {
                "selected": value == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }


class ClaimFilter(admin.SimpleListFilter):
    title = "claim"
    parameter_name = "claim"

    def lookups(self, request, model_admin):
        choices = [("unclaimed", "Unclaimed")]
        if verified_doctor(request.user) is not None:
            choices.append(("mine", "Claimed by me"))
        choices.append(("others", "Claimed by someone"))
        return choices

    def queryset(self, request, queryset):
        value = self.value()
        doctor = verified_doctor(request.user)
        if value == "unclaimed":
            return queryset.filter(claimed_by__isnull=True)
        if value == "mine" and doctor is not None:
            return queryset.filter(claimed_by=doctor)
        if value == "others":
            others = queryset.filter(claimed_by__isnull=False)
            return others.exclude(claimed_by=doctor) if doctor is not None else others
        return queryset


class SlaStateFilter(admin.SimpleListFilter):
    """Filters in the database on the clock columns, never row by row in Python."""

    title = "time left"
    parameter_name = "sla"

    def lookups(self, request, model_admin):
        return list(QUEUE_STATE_LABELS.items())

    def queryset(self, request, queryset):
        if self.value() in QUEUE_STATE_LABELS:
            return queryset.filter(sla.state_q(self.value(), timezone.now()))
        return queryset


class SpecialtyFilter(admin.SimpleListFilter):
    """Only the doctor's own specialties are offered (staff see all)."""

    title = "specialty"
    parameter_name = "specialty"

    def lookups(self, request, model_admin):
        doctor = verified_doctor(request.user)
        if may_read_medical_records(request.user) or doctor is None:
            specialties = Specialty.objects.all()
        else:
            specialties = doctor.specialties
        return [(str(pk), name) for pk, name in specialties.values_list("pk", "name")]

    def queryset(self, request, queryset):
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(specialty_id=int(value))
        return queryset


# --- Forms ------------------------------------------------------------------------


class ReplyForm(forms.Form):
    INTENTS = [("answer", "Send answer"), ("info", "Ask for more information")]

    body = forms.CharField(
        label="Your reply to the patient",
        max_length=10000,
        widget=forms.Textarea(attrs={"rows": 12, "class": "workbench-reply"}),
        error_messages={"required": "Write your reply before sending it."},
    )
    intent = forms.ChoiceField(
        choices=INTENTS,
        widget=forms.HiddenInput,
        error_messages={"required": "Choose “Send answer” or “Ask for more information”."},
    )


class DoctorChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        specialties = ", ".join(s.name for s in obj.specialties.all())
        return f"{obj.display_name} ({specialties})" if specialties else obj.display_name


class ReassignForm(forms.Form):
    """Staff hand open questions to a verified doctor of their specialty, whoever holds them now.

    Only doctors of every selected question's specialty are offered; the service
    checks again (consultations.services.reassign_question).
    """

    doctor = DoctorChoiceField(
        queryset=DoctorProfile.objects.none(),
        label="Hand this question to",
        empty_label="Choose a doctor",
        error_messages={
            "required": "Choose the doctor who should answer.",
            "invalid_choice": "Choose a verified doctor of the question's specialty.",
        },
    )

    def __init__(self, *args, specialty_ids=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["doctor"].queryset = (
            services.eligible_doctors(specialty_ids).prefetch_related("specialties").order_by("display_name")
        )


# --- The queue and the question page ------------------------------------------------


class QuestionQueueAdmin(admin.ModelAdmin):
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

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

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
            "can_claim": doctor is not None and is_open and holder is None,
            # A refused reply keeps its box, so the doctor's text is never lost.
            "can_reply": doctor is not None and (is_open and (holder is None or mine) or bool(form.errors)),
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


def question_timeline(question: Question) -> list[tuple[datetime, str]]:
    """What happened to a question, oldest first, in words safe to show any doctor."""
    events = [(question.submitted_at, f"{question.patient_label} asked the question.")]
    for reply in question.replies.select_related("doctor"):
        if reply.kind == ReplyKind.FOLLOW_UP:
            events.append((reply.created_at, f"{question.patient_label} wrote a follow-up."))
            continue
        who = reply.doctor.display_name if reply.doctor else "A doctor"
        if reply.kind == ReplyKind.INFO_REQUEST:
            events.append((reply.created_at, f"{who} asked for more information."))
        else:
            events.append((reply.created_at, f"{who} answered."))
    for escalation in Escalation.objects.filter(question=question).order_by("created_at"):
        events.append((escalation.created_at, f"Escalation: {escalation.get_level_display()}."))
    if question.closed_at:
        events.append((question.closed_at, "The question was closed."))
    return sorted(events, key=lambda event: event[0])


doctor_admin_site.register(Question, QuestionQueueAdmin)
