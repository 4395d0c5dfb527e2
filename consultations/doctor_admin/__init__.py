"""The doctors' workbench: a separate admin site at /doctor/ where verified
doctors take questions from a queue, answer them and pick up follow-ups.

Doctors are not staff: the site admits verified doctors, and clinical staff who
oversee and reassign (staff status alone does not open it). Every page resolves
its question through consultations.access, and the patient is only ever
"Patient #CODE" with age and sex: no name, no e-mail, no original file names.
Only the queue's own filters are accepted in the URL.
"""

from consultations.doctor_admin.display import (
    QUEUE_STATE_LABELS,
    describe_time_left,
    live_etag,
    live_row,
    live_sla_badge,
    question_timeline,
    running_clock,
    sla_badge,
)
from consultations.doctor_admin.filters import CappedCountPaginator
from consultations.doctor_admin.forms import ReassignForm, ReplyForm
from consultations.doctor_admin.queue import QuestionQueueAdmin
from consultations.doctor_admin.site import DoctorAdminSite, WorkbenchLoginForm, doctor_admin_site
from consultations.models import Question

doctor_admin_site.register(Question, QuestionQueueAdmin)

__all__ = [
    "QUEUE_STATE_LABELS",
    "CappedCountPaginator",
    "DoctorAdminSite",
    "QuestionQueueAdmin",
    "ReassignForm",
    "ReplyForm",
    "WorkbenchLoginForm",
    "describe_time_left",
    "doctor_admin_site",
    "live_etag",
    "live_row",
    "live_sla_badge",
    "question_timeline",
    "running_clock",
    "sla_badge",
]
