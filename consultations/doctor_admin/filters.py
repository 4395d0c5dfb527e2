"""The queue's paginator and its filters (the only query parameters the queue accepts)."""

from django.contrib import admin
from django.core.paginator import Paginator
from django.utils import timezone
from django.utils.functional import cached_property

from consultations import services, sla
from consultations.access import (
    may_read_medical_records,
    verified_doctor,
)
from consultations.doctor_admin.display import QUEUE_STATE_LABELS
from consultations.models import QuestionStatus, Specialty

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
