"""Telling doctors of new work: a new question in their specialty, a follow-up to
their answer, the patient's reply to their request for information.

Written through the outbox in the transaction that creates the work, so an e-mail
exists exactly when the work does. Only doctors on duty (consultations.duty) hear
of it; escalations addressed to a doctor by name are the sweep's and ignore this.

Batched by a quiet period: the first piece of work of a kind in each
NEW_WORK_EMAIL_MINUTES slot (counted from the epoch) e-mails the doctor at once;
more of the same kind in that slot add nothing, since the outbox's unique dedupe
key (kind, doctor, slot) already holds that doctor's e-mail. A burst of 50
questions is one e-mail per doctor, two if it straddles a slot's end.
"""

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.urls import reverse

from consultations import cover_cache, duty
from consultations.models import DoctorProfile, Notification, Question, ReplyKind
from consultations.notifications import queue_notification
from portal.times import format_time

NEW_QUESTION = "new_question"
FOLLOW_UP = "follow_up_received"
INFO_RESPONSE = "info_response_received"
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def quiet_period() -> timedelta:
    return timedelta(minutes=settings.NEW_WORK_EMAIL_MINUTES)


def slot_start(now: datetime) -> datetime:
    """The start of the quiet-period slot `now` falls in."""
    period = quiet_period()
    return EPOCH + ((now - EPOCH) // period) * period


def dedupe_key(kind: str, doctor: DoctorProfile, now: datetime) -> str:
    return _slot_key(kind, doctor.pk, now)


def _slot_key(kind: str, doctor_id: int, now: datetime) -> str:
    return f"new_work:{kind}:{doctor_id}:{slot_start(now):%Y%m%dT%H%M}"


def workbench_url(question: Question | None = None) -> str:
    if question is None:
        return settings.SITE_URL + reverse("doctor_admin:consultations_question_changelist")
    return settings.SITE_URL + reverse("doctor_admin:consultations_question_change", args=[question.pk])


def tell_doctors(kind: str, question: Question, doctors, now: datetime) -> list[Notification]:
    """Queue `kind` for each doctor (with an address) who has no e-mail of this kind in
    this slot yet. Returns the rows queued."""
    doctors = [doctor for doctor in doctors if doctor.user.email]
    keys = {doctor.pk: dedupe_key(kind, doctor, now) for doctor in doctors}
    # One query instead of a failed insert per doctor for every question of a burst.
    already = set(Notification.objects.filter(dedupe_key__in=keys.values()).values_list("dedupe_key", flat=True))
    quiet_until = slot_start(now) + quiet_period()
    queued = []
    for doctor in doctors:
        if keys[doctor.pk] in already:
            continue
        notification = queue_notification(
            recipient=doctor.user,
            to_email=doctor.user.email,
            kind=kind,
            context={
                "question": question,
                "doctor": doctor,
                "specialty": question.specialty.name,
                "url": workbench_url(question),
                "queue_url": workbench_url(),
                "minutes": settings.NEW_WORK_EMAIL_MINUTES,
                "quiet_until": format_time(quiet_until, "H:i", doctor.user.time_zone),
            },
            dedupe_key=keys[doctor.pk],
            question=question,
        )
        if notification is not None:
            queued.append(notification)
    return queued


def notify_new_question(question: Question, now: datetime) -> list[Notification]:
    """The verified doctors of the question's specialty who are on duty now. None are read
    when the duty rule's kept answer (consultations.cover_cache) says none is on duty, or
    that each of those on duty has this slot's e-mail already: after the first question
    of a slot, the usual case while doctors are on duty (one small query instead of the
    doctors, their accounts and periods, and the e-mails' lookup). The kept roster ends
    at the next duty boundary and at every write the portal makes to what it reads, so
    a doctor who comes on duty is read with the next question; a write made outside
    Django, or one whose new roster version Redis lost, goes unseen for up to
    COVER_CACHE_SECONDS, as it does for the ask form's duty notes."""
    on_duty = cover_cache.doctors_on_duty_now(question.specialty_id, now)
    if not on_duty or _all_queued([_slot_key(NEW_QUESTION, doctor_id, now) for doctor_id in on_duty]):
        return []
    return tell_doctors(NEW_QUESTION, question, duty.on_duty_list(question.specialty_id, now), now)


def _all_queued(keys: list[str]) -> bool:
    """Whether the outbox holds a row under each of these (distinct) dedupe keys."""
    return Notification.objects.filter(dedupe_key__in=keys).count() == len(keys)


def notify_patient_reply(question: Question, *, answered: bool, now: datetime) -> list[Notification]:
    """A follow-up after an answer goes to the doctor who holds the question (the one
    who answered); a reply to a request for information, to the doctor who asked.
    Nobody hears of it while that doctor is off duty: the sweep still escalates.
    When that doctor may no longer take it (they left the specialty, or were
    unverified), it waits unclaimed in the queue: the specialty's doctors on duty
    hear of it as of a new question."""
    if answered:
        doctor, kind = question.claimed_by, FOLLOW_UP  # the handover left it unclaimed if not theirs
    else:
        request = question.replies.filter(kind=ReplyKind.INFO_REQUEST).select_related("doctor").last()
        doctor = request.doctor if request is not None and request.doctor else question.claimed_by
        kind = INFO_RESPONSE
        if doctor is not None and doctor.pk != question.claimed_by_id and not _may_take(question, doctor):
            doctor = question.claimed_by
    if doctor is None:
        return notify_new_question(question, now)
    if not duty.is_on_duty(doctor, now):
        return []
    return tell_doctors(kind, question, [doctor], now)


def _may_take(question: Question, doctor: DoctorProfile) -> bool:
    return doctor.may_practise and doctor.specialties.filter(pk=question.specialty_id).exists()
