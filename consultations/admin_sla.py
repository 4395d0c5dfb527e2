"""Read-only staff admin for the guarantee engine's records: escalations, the
notification outbox (with "resend now"), the sweep heartbeat and the ledger of
breach credits.

These are history: nobody edits or deletes them from the admin. An e-mail's
subject and body show only to staff who may read medical records. Registered on
the staff site (`django.contrib.admin.site`) when this module is imported.
"""

from django.contrib import admin, messages
from django.db import transaction
from django.utils.translation import ngettext

from consultations import credits, levels, notifications
from consultations.access import may_read_medical_records
from consultations.models import BreachCredit, Escalation, Notification, SweepRun
from portal.admin_sites import ReadOnlyMixin


class ReadOnlyAdmin(ReadOnlyMixin, admin.ModelAdmin):
    pass


@admin.register(Escalation)
class EscalationAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "level", "question", "is_follow_up", "clock_due_at", "recipient_count")
    list_filter = ("level", "is_follow_up", "created_at")
    search_fields = ("question__id",)
    date_hierarchy = "created_at"
    list_select_related = ("question",)
    raw_id_fields = ("question", "sweep")

    @admin.display(description="notified")
    def recipient_count(self, obj):
        return len(obj.recipients or [])


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "to_email", "status", "attempts", "next_attempt_at", "sent_at", "question")
    list_filter = ("status", "kind", "created_at")
    search_fields = ("to_email", "dedupe_key", "question__id")
    date_hierarchy = "created_at"
    raw_id_fields = ("recipient", "question")
    list_select_related = ("question",)
    actions = ["resend_now"]
    # What an e-mail says may quote the patient's question: medical-record permission only.
    CLINICAL_FIELDS = ("subject", "body")

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if may_read_medical_records(request.user):
            return fields
        return [name for name in fields if name not in self.CLINICAL_FIELDS]

    @admin.action(description="Resend now (unsent ones only)", permissions=["view"])
    def resend_now(self, request, queryset):
        with transaction.atomic():
            queued = notifications.requeue(queryset.values_list("pk", flat=True))
        skipped = queryset.count() - queued
        self.message_user(
            request,
            ngettext(
                "%(count)d notification queued for sending.", "%(count)d notifications queued for sending.", queued
            )
            % {"count": queued},
            messages.SUCCESS,
        )
        if skipped:
            self.message_user(
                request,
                f"{skipped} skipped: already sent, or being sent right now.",
                messages.WARNING,
            )


@admin.register(SweepRun)
class SweepRunAdmin(ReadOnlyAdmin):
    list_display = ("started_at", "finished_at", *levels.counters(), "errors", "host")
    list_filter = ("started_at",)
    date_hierarchy = "started_at"


@admin.register(BreachCredit)
class BreachCreditAdmin(ReadOnlyAdmin):
    """What each broken guarantee earned its patient (issue 14). No clinical text: the
    question's number and the patient's label, never their name or words. Seen with the
    model's view permission (consultations.view_breachcredit)."""

    list_display = (
        "breached_at",
        "question",
        "patient_label",
        "is_follow_up",
        "clock_due_at",
        "minutes_late",
        "final_minutes_late",
        "kind",
    )
    list_filter = ("kind", "is_follow_up", "breached_at")
    search_fields = ("question__id",)
    date_hierarchy = "breached_at"
    list_select_related = ("question", "patient")
    fields = (
        "question",
        "patient_label",
        "is_follow_up",
        "clock_due_at",
        "breached_at",
        "minutes_late",
        "final_minutes_late",
        "kind",
        "sweep",
    )
    readonly_fields = ("patient_label", "final_minutes_late")

    def get_queryset(self, request):
        return credits.with_answer(super().get_queryset(request))

    @admin.display(description="patient")
    def patient_label(self, obj):
        return obj.patient.patient_label

    @admin.display(description="minutes late when answered")
    def final_minutes_late(self, obj):
        late = obj.final_minutes_late
        return "not answered yet" if late is None else late
