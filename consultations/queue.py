"""The doctors' queue header's figures (consultations.doctor_admin)."""

from datetime import datetime

from django.db.models import Count, Q

from consultations import sla
from consultations.models import DoctorProfile
from consultations.services import OPEN_STATUSES

# The states a question in the queue can be in: a running clock, or paused
# while the doctor waits for the patient.
QUEUE_SLA_STATES = (sla.ON_TRACK, sla.AT_RISK, sla.BREACHED, sla.PAUSED)


def queue_counts(questions, doctor: DoctorProfile | None, now: datetime) -> dict[str, int]:
    """The queue header's numbers in one query, over open questions only.

    Restricting to open statuses keeps the count on the partial queue index,
    so it costs the questions waiting, not the questions stored.
    """
    counts = {state: Count("pk", filter=sla.state_q(state, now)) for state in QUEUE_SLA_STATES}
    counts["total"] = Count("pk")
    counts["unclaimed"] = Count("pk", filter=Q(claimed_by__isnull=True))
    counts["follow_ups"] = Count("pk", filter=Q(is_follow_up=True))
    counts["urgent"] = Count("pk", filter=Q(is_urgent=True))
    if doctor is not None:
        counts["mine"] = Count("pk", filter=Q(claimed_by=doctor))
    result = questions.filter(status__in=OPEN_STATUSES).aggregate(**counts)
    result.setdefault("mine", 0)
    return result
