"""Who may see which question: one helper per object type, used by every view.

Patients see their own questions; verified doctors see questions of their
specialties and those claimed by or answered by them; staff see patients'
records only with the explicit `view_medical_record` permission (the "Clinical
staff" group; superusers hold every permission): staff status alone opens
nothing clinical, so editors and support logins read no patient text.
Anything else is a 404, so ids reveal nothing.
"""

from django.contrib.auth.models import Group, Permission
from django.db.models import Q, QuerySet
from django.http import Http404

from consultations.models import Attachment, DoctorProfile, Question, Specialty


def verified_doctor(user) -> DoctorProfile | None:
    """The user's doctor profile if they are an active, verified doctor."""
    if not user.is_authenticated or not user.is_active:
        return None
    profile = getattr(user, "doctor_profile", None)
    if profile is None or not profile.may_practise:
        return None
    return profile


def is_staff_member(user) -> bool:
    return user.is_authenticated and user.is_active and user.is_staff


MEDICAL_RECORD_PERMISSION = "consultations.view_medical_record"
CLINICAL_STAFF_GROUP = "Clinical staff"
# What the clinical staff group holds: the medical-record permission, and the staff
# admin's view permissions on the records it opens.
CLINICAL_PERMISSIONS = ("view_medical_record", "view_question", "view_reply", "view_attachment")


def clinical_staff_group() -> Group:
    """The "Clinical staff" group with its permissions (created by migration 0004; again
    here for seed_demo and for a database emptied since)."""
    group, _ = Group.objects.get_or_create(name=CLINICAL_STAFF_GROUP)
    group.permissions.add(
        *Permission.objects.filter(content_type__app_label="consultations", codename__in=CLINICAL_PERMISSIONS)
    )
    return group


def may_read_medical_records(user) -> bool:
    """Staff who may read any patient's question, replies and files: the one rule
    behind the workbench, the attachment download, the staff admin's records and
    the dashboard's lists."""
    return is_staff_member(user) and user.has_perm(MEDICAL_RECORD_PERMISSION)


def questions_for_doctor(doctor: DoctorProfile) -> QuerySet[Question]:
    """What a doctor reads: their specialties' questions, and their own threads (one they
    hold or answered first), kept even after they left that specialty, so they can look
    back at what they wrote. Reading is not taking: see questions_doctor_may_take. A
    doctor who leaves a specialty loses their open claims in it (services.
    release_claims_doctor_may_not_hold), so only threads they answered stay."""
    return Question.objects.filter(
        Q(specialty__in=doctor.specialties.all()) | Q(claimed_by=doctor) | Q(answered_by=doctor)
    )  # no join here can repeat a row, so no DISTINCT (it doubled the queue's cost)


def questions_doctor_may_take(doctor: DoctorProfile) -> QuerySet[Question]:
    """The questions a doctor may claim, answer or be handed: those of their specialties,
    while they may practise. Read from the database, not from `doctor` in memory, so a
    doctor unverified or moved a moment ago takes nothing."""
    practising = DoctorProfile.objects.verified().filter(pk=doctor.pk)
    return Question.objects.filter(specialty__in=Specialty.objects.filter(doctors__in=practising))


def own_questions(user) -> QuerySet[Question]:
    """The patient pages' rule (my questions, the question page and its actions): the
    user's own questions only, whoever they are; doctors and staff read others' in
    their own tools, through questions_visible_to."""
    if not user.is_authenticated:
        return Question.objects.none()
    return Question.objects.filter(patient=user)


def own_question(user, pk) -> Question:
    """The user's own question, else Http404."""
    try:
        return own_questions(user).select_related("specialty", "answered_by").get(pk=pk)
    except (Question.DoesNotExist, ValueError, TypeError):
        raise Http404("No such question.") from None


def questions_visible_to(user) -> QuerySet[Question]:
    if may_read_medical_records(user):
        return Question.objects.all()
    doctor = verified_doctor(user)
    if doctor is not None:
        return questions_for_doctor(doctor)
    return own_questions(user)


def question_for(user, pk) -> Question:
    """The question if `user` may see it, else Http404."""
    try:
        return questions_visible_to(user).get(pk=pk)
    except (Question.DoesNotExist, ValueError, TypeError):
        raise Http404("No such question.") from None


def attachment_for(user, pk) -> Attachment:
    """The attachment if `user` may see its question, else Http404."""
    try:
        attachment = Attachment.objects.select_related("question").get(pk=pk)
    except (Attachment.DoesNotExist, ValueError, TypeError):
        raise Http404("No such attachment.") from None
    question_for(user, attachment.question_id)
    return attachment


def may_use_workbench(user) -> bool:
    """The doctors' admin admits verified doctors, and clinical staff who oversee and
    reassign; never patients, nor staff without the medical-record permission."""
    return verified_doctor(user) is not None or may_read_medical_records(user)


def may_reassign(user) -> bool:
    return is_staff_member(user) and user.has_perm("consultations.reassign_question")


def may_change_specialty(user) -> bool:
    """Moving a question to another specialty: clinical staff allowed to change questions."""
    return may_read_medical_records(user) and user.has_perm("consultations.change_question")


SLA_DASHBOARD_PERMISSION = "consultations.view_sla_dashboard"


def may_view_dashboard(user) -> bool:
    """The staff SLA dashboard at /staff/sla/: staff holding its permission."""
    return is_staff_member(user) and user.has_perm(SLA_DASHBOARD_PERMISSION)


def work_links(user) -> list[tuple[str, str]]:
    """The tools this user works in, as (label, URL name), the user's home first: a
    doctor's queue, then the staff dashboard, then the staff admin. Patients have none."""
    if not user.is_authenticated or not user.is_active:
        return []
    links = []
    if verified_doctor(user) is not None:
        links.append(("Question queue", "doctor_admin:index"))
    if may_view_dashboard(user):
        links.append(("SLA dashboard", "staff:sla_dashboard"))
    if is_staff_member(user):
        links.append(("Staff admin", "admin:index"))
    if verified_doctor(user) is None and may_read_medical_records(user):
        links.append(("Doctors' workbench", "doctor_admin:index"))  # clinical staff oversee the queue
    return links


def home_url_name(user) -> str:
    """Where a user lands after logging in: their first tool, else their questions."""
    links = work_links(user)
    return links[0][1] if links else "consultations:my_questions"
