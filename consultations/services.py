"""The consultation's rules: asking, claiming, answering, follow-ups, closing.

Views, admin actions, tasks and commands call these functions; they hold no
HTTP or Celery knowledge. Each state change that others might race on is a
conditional UPDATE that acts only when it changed exactly one row.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language

from consultations import attachments, levels, links, new_work, sla
from consultations.access import questions_doctor_may_take
from consultations.email_skeletons import EmailSkeletons
from consultations.models import (
    AccessLog,
    Attachment,
    DoctorProfile,
    Question,
    QuestionStatus,
    Reply,
    ReplyKind,
)
from consultations.notifications import queue_notification
from consultations.red_flags import find_red_flags
from portal import times
from portal.client_address import client_ip
from portal.database import TRANSIENT_DATABASE_ERRORS, insert_new

logger = logging.getLogger(__name__)

OPEN_STATUSES = (QuestionStatus.OPEN, QuestionStatus.INFO_REQUESTED)


def _clock_fields(started_at: datetime, is_urgent: bool, *, is_follow_up: bool) -> dict:
    """A fresh clock: its warning and breach are owed again, so the sweep's markers reset."""
    clock = sla.follow_up_clock(started_at, is_urgent) if is_follow_up else sla.new_clock(started_at, is_urgent)
    return {
        "clock_started_at": clock.started_at,
        "clock_due_at": clock.due_at,
        "clock_warn_at": clock.warn_at,
        "clock_paused_at": None,
        "is_follow_up": is_follow_up,
        **levels.markers_reset(),
        "sweep_error": "",
        "sweep_retry_at": None,
    }


def _stopped_clock_fields() -> dict:
    return {"clock_started_at": None, "clock_due_at": None, "clock_warn_at": None, "clock_paused_at": None}


def question_url(question: Question) -> str:
    return settings.SITE_URL + links.url_for_id("consultations:question_detail", question.pk)


def submit_question(
    *,
    patient,
    specialty,
    title,
    description,
    age,
    sex,
    medical_history="",
    current_medication="",
    files=(),
    submission_token: uuid.UUID | None = None,
    now: datetime | None = None,
) -> Question:
    """Save a patient's question with its guarantee, attachments and confirmation e-mail.

    `files` are already validated `(file, content_type)` pairs. A `submission_token`
    already used by this patient raises IntegrityError (see `submit_question_once`).
    """
    now = now or timezone.now()
    red_flags = find_red_flags(title, description, medical_history)
    is_urgent = bool(red_flags)
    clock = _clock_fields(now, is_urgent, is_follow_up=False)
    stored = []
    with transaction.atomic():
        try:
            question = Question(
                patient=patient,
                specialty=specialty,
                title=title,
                description=description,
                age=age,
                sex=sex,
                medical_history=medical_history,
                current_medication=current_medication,
                is_urgent=is_urgent,
                red_flags=red_flags,
                submitted_at=now,
                due_at=clock["clock_due_at"],
                submission_token=submission_token,
                **clock,
            )
            insert_new(question)
            attachments.store(question, files, now, stored)
            _confirm_receipt(question)
            new_work.notify_new_question(question, now)
        except BaseException:
            # (A failed COMMIT is not caught here: the rows may exist.)
            attachments.forget(stored)
            raise
    return question


RECEIPT_KIND = "question_received"
# Per language, the receipt's templates rendered once per process for an urgent and a
# not urgent question, with markers where each question's values go
# (consultations/email_skeletons.py): the markers only, never a patient's words.
_receipt_skeletons: dict[str, EmailSkeletons] = {}


def receipt_email(question: Question) -> tuple[str, str]:
    """The subject and body of the patient's "we have your question" e-mail: the same text
    as rendering its templates, for a tenth of the CPU (a hundred microseconds of every
    question sent, issue 17)."""
    language = get_language()
    skeletons = _receipt_skeletons.get(language)
    if skeletons is None:
        skeletons = _receipt_skeletons[language] = EmailSkeletons()
    zone = times.as_zone(question.patient.time_zone or settings.TIME_ZONE)
    return skeletons.render(
        RECEIPT_KIND,
        {"is_urgent": question.is_urgent},
        {
            "question.pk": str(question.pk),
            "question.title": question.title,
            "specialty": question.specialty.name,
            "due": times.format_time(question.due_at, times.LONG_DATE_TIME, zone, language),
            "url": question_url(question),
        },
    )


def _confirm_receipt(question: Question) -> None:
    """The patient's "we have your question" e-mail, in the outbox with the question."""
    patient = question.patient
    queue_notification(
        recipient=patient,
        to_email=patient.email,
        kind=RECEIPT_KIND,
        email=receipt_email(question),
        dedupe_key=f"{RECEIPT_KIND}:{question.pk}",
        question=question,
        key_is_new=True,  # the question was inserted just before
    )


@dataclass(frozen=True)
class Submission:
    question: Question
    is_new: bool  # False: this submission had already been saved (double click, replay)


def submit_question_once(*, patient, submission_token: uuid.UUID, **fields) -> Submission:
    """The ask form's submission, saved at most once however often it arrives.

    The token is unique per patient in the database, so of several parallel or
    replayed posts exactly one inserts; the others wait for it and get its
    question. A transient database error (connection lost, also one that died
    while idle: no health check runs first) is retried once on a fresh
    connection; should the first COMMIT have reached the database after all, the
    retry finds that question instead of making a second one.
    """

    def attempt() -> Submission:
        try:
            return Submission(submit_question(patient=patient, submission_token=submission_token, **fields), True)
        except IntegrityError:
            existing = Question.objects.filter(patient=patient, submission_token=submission_token).first()
            if existing is None:
                raise
            return Submission(existing, False)

    if not connection.in_atomic_block:
        # The submission is the connection's health check: Django's `SELECT 1` first
        # (CONN_HEALTH_CHECKS) would cost a round trip to learn what a dead connection's
        # first statement says anyway, and that failure is retried just below.
        connection.health_check_done = True
    try:
        return attempt()
    except TRANSIENT_DATABASE_ERRORS:
        if connection.in_atomic_block:
            raise  # inside a caller's transaction nothing can be retried
        logger.warning("Database error while saving a question; retrying once", exc_info=True)
        # A killed connection is dropped here; the next query opens a new one.
        connection.close_if_unusable_or_obsolete()
    return attempt()


# --- Claiming ---------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimResult:
    ok: bool
    holder: DoctorProfile | None
    not_yours: bool = False  # open, but outside the doctor's specialties (or they may not practise)

    @property
    def message(self) -> str:
        if self.ok:
            return "You have claimed this question."
        if self.not_yours:
            return NOT_YOURS
        if self.holder is None:
            return "This question is no longer open."
        return f"{self.holder.display_name} has already claimed this question."


def claim_question(question_id: int, doctor: DoctorProfile, now: datetime | None = None) -> ClaimResult:
    """Take an unclaimed open question. Exactly one of several racing doctors wins.

    Only a question the doctor may take (of their specialties, while they may
    practise), checked in the UPDATE itself. A thread the doctor answered in a
    specialty they have since left stays readable but cannot be taken again.
    """
    now = now or timezone.now()
    changed = (
        questions_doctor_may_take(doctor)
        .filter(
            Q(claimed_by__isnull=True) | Q(claimed_by=doctor),
            pk=question_id,
            status__in=OPEN_STATUSES,
        )
        .update(claimed_by=doctor, claimed_at=now)
    )
    if changed == 1:
        return ClaimResult(ok=True, holder=doctor)
    rows = list(Question.objects.filter(pk=question_id, status__in=OPEN_STATUSES).values_list("claimed_by", flat=True))
    if not rows:
        return ClaimResult(ok=False, holder=None)
    if rows[0] is None or rows[0] == doctor.pk:  # open and free (or theirs), yet not taken: not theirs to take
        return ClaimResult(ok=False, holder=None, not_yours=True)
    return ClaimResult(ok=False, holder=DoctorProfile.objects.filter(pk=rows[0]).first())


NOT_YOURS = "This question is not of your specialties, so you can no longer take or answer it."


def release_claim(question_id: int, doctor: DoctorProfile) -> bool:
    """Give a claimed question back to the queue. Only its holder can release it."""
    return Question.objects.filter(pk=question_id, claimed_by=doctor).update(claimed_by=None, claimed_at=None) == 1


class AssignmentRefused(Exception):
    """A question may only go to a verified, active doctor of its specialty (the
    promise on the ask form). The message is written for the staff member who tried."""


def assignment_refusal(question: Question, doctor: DoctorProfile) -> str:
    """Why `doctor` may not be handed `question`, or "" when they may."""
    if not doctor.may_practise:
        return f"{doctor.display_name} is not a verified, active doctor, so no question can be handed to them."
    if not doctor.specialties.filter(pk=question.specialty_id).exists():
        return (
            f"{doctor.display_name} is not a doctor of {question.specialty.name}: a question only goes to "
            "doctors of the specialty the patient chose."
        )
    return ""


def release_claims_doctor_may_not_hold(doctor: DoctorProfile) -> int:
    """Give back to the queue every open question `doctor` holds but may no longer take:
    all of them once they are unverified or deactivated, else those outside their
    specialties. The clocks are left as they are (the patient's guarantee runs on) and
    the specialty's doctors can claim them at once. Returns how many were released.

    Called by the signals in consultations.held_claims (a DoctorProfile or User saved, a
    doctor's specialties changed); a change made with QuerySet.update() sends no signal,
    so such code (the admin's verify/unverify actions) calls this itself. Answered
    questions keep their holder: the follow-up handover checks them (_post_follow_up).
    """
    held = Question.objects.filter(claimed_by=doctor, status__in=OPEN_STATUSES)
    if DoctorProfile.objects.verified().filter(pk=doctor.pk).exists():
        held = held.exclude(
            specialty__in=DoctorProfile.specialties.through.objects.filter(doctorprofile=doctor).values("specialty")
        )
    released = held.update(claimed_by=None, claimed_at=None)
    if released:
        logger.info("Released %s claim(s) doctor %s may no longer hold.", released, doctor.pk)
    return released


def eligible_doctors(specialty_ids) -> QuerySet[DoctorProfile]:
    """Verified, active doctors of every one of these specialties (whom questions of them may go to)."""
    doctors = DoctorProfile.objects.verified()
    for specialty_id in set(specialty_ids):
        doctors = doctors.filter(specialties=specialty_id)
    return doctors


@transaction.atomic
def reassign_question(question_id: int, doctor: DoctorProfile, now: datetime | None = None) -> bool:
    """Staff: hand an open question to another doctor of its specialty, whoever holds it now.

    Returns False when the question is not open any more. Raises AssignmentRefused
    when the doctor is not a verified doctor of the question's specialty: checked
    here, under the row's lock, so no view can hand a question outside its specialty.
    The doctor is told by e-mail (no patient name in it), so a reassigned late
    question does not wait for them to open their queue.
    """
    now = now or timezone.now()
    locked = Question.objects.select_for_update(of=("self",)).select_related("specialty")
    question = locked.filter(pk=question_id).first()
    if question is None or question.status not in OPEN_STATUSES:
        return False
    refusal = assignment_refusal(question, doctor)
    if refusal:
        raise AssignmentRefused(refusal)
    Question.objects.filter(pk=question_id).update(claimed_by=doctor, claimed_at=now)
    question = Question.objects.select_related("specialty", "patient").get(pk=question_id)
    queue_notification(
        recipient=doctor.user,
        to_email=doctor.user.email,
        kind="question_assigned",
        context={
            "question": question,
            "doctor": doctor,
            "patient_label": question.patient_label,
            "time_zone": doctor.user.time_zone,
            "url": settings.SITE_URL + reverse("doctor_admin:consultations_question_change", args=[question.pk]),
        },
        dedupe_key=f"question_assigned:{question.pk}:{doctor.pk}:{now.isoformat()}",
        question=question,
    )
    return True


@dataclass(frozen=True)
class SpecialtyChange:
    ok: bool
    message: str
    released: DoctorProfile | None = None


@transaction.atomic
def change_specialty(question_id: int, specialty, *, by, now: datetime | None = None) -> SpecialtyChange:
    """Staff: move a waiting question to another specialty (a patient who chose the wrong one).

    The patient's own words stay as they are; only the routing changes. A doctor
    holding the question who is not of the new specialty loses the claim, so it
    goes back to the new specialty's queue. The change is written to the admin's
    log (LogEntry) under the staff member's name.
    """
    from django.contrib.admin.models import CHANGE, LogEntry

    locked = Question.objects.select_for_update(of=("self",)).select_related("specialty", "claimed_by")
    question = locked.filter(pk=question_id).first()
    if question is None or question.status not in OPEN_STATUSES:
        return SpecialtyChange(False, "Only a question still waiting for a doctor can move to another specialty.")
    if question.specialty_id == specialty.pk:
        return SpecialtyChange(False, f"The question is already in {specialty.name}.")
    old_name, holder = question.specialty.name, question.claimed_by
    fields = {"specialty": specialty}
    released = None
    if holder is not None and not holder.specialties.filter(pk=specialty.pk).exists():
        fields.update(claimed_by=None, claimed_at=None)
        released = holder
    Question.objects.filter(pk=question.pk).update(**fields)
    message = f"Specialty changed from {old_name} to {specialty.name}."
    if released is not None:
        message += f" {released.display_name} is not of {specialty.name}: their claim was released."
    LogEntry.objects.log_actions(
        user_id=by.pk, queryset=[question], action_flag=CHANGE, change_message=message, single_object=True
    )
    return SpecialtyChange(True, message, released)


# --- The thread -------------------------------------------------------------------


@transaction.atomic
def post_answer(question: Question, doctor: DoctorProfile, body: str, now: datetime | None = None) -> Reply:
    """A doctor's answer: stops the clock, leaves the queue, notifies the patient."""
    now = now or timezone.now()
    question = Question.objects.select_for_update().get(pk=question.pk)
    reply = Reply.objects.create(
        question=question, author=doctor.user, doctor=doctor, kind=ReplyKind.ANSWER, body=body, created_at=now
    )
    fields = {
        **_stopped_clock_fields(),
        "status": QuestionStatus.ANSWERED,
        "claimed_by": doctor,
        "claimed_at": question.claimed_at or now,
    }
    if question.first_answered_at is None:
        fields.update(first_answered_at=now, answered_by=doctor)
        if question.clock_paused_at is not None:
            # Answered while waiting for the patient: the wait does not count against the guarantee.
            fields["due_at"] = question.due_at + max(now - question.clock_paused_at, timedelta(0))
    Question.objects.filter(pk=question.pk).update(**fields)
    question.refresh_from_db()
    queue_notification(
        recipient=question.patient,
        to_email=question.patient.email,
        kind="answer_posted",
        context={"question": question, "doctor": doctor, "url": question_url(question)},
        dedupe_key=f"answer_posted:{reply.pk}",
        question=question,
    )
    return reply


@transaction.atomic
def request_information(question: Question, doctor: DoctorProfile, body: str, now: datetime | None = None) -> Reply:
    """A doctor asks the patient for more: the clock pauses until the patient replies."""
    now = now or timezone.now()
    question = Question.objects.select_for_update().get(pk=question.pk)
    reply = Reply.objects.create(
        question=question, author=doctor.user, doctor=doctor, kind=ReplyKind.INFO_REQUEST, body=body, created_at=now
    )
    running = question.clock_due_at is not None
    Question.objects.filter(pk=question.pk).update(
        status=QuestionStatus.INFO_REQUESTED,
        # Only a running clock can pause; after an answer no clock runs until the patient writes.
        clock_paused_at=(question.clock_paused_at or now) if running else None,
        claimed_by=doctor,
        claimed_at=question.claimed_at or now,
    )
    question.refresh_from_db()
    queue_notification(
        recipient=question.patient,
        to_email=question.patient.email,
        kind="information_requested",
        context={"question": question, "doctor": doctor, "url": question_url(question)},
        dedupe_key=f"information_requested:{reply.pk}",
        question=question,
    )
    return reply


def post_follow_up(question: Question, patient, body: str, now: datetime | None = None, files=()) -> Reply:
    """A patient's message, with its checked `(file, content_type)` attachments. After an
    answer it starts a follow-up clock with the answering doctor; after a request for
    information it resumes the paused clock."""
    stored: list[str] = []
    try:
        with transaction.atomic():
            return _post_follow_up(question, patient, body, now or timezone.now(), files, stored)
    except BaseException:
        attachments.forget(stored)
        raise


def _post_follow_up(question: Question, patient, body: str, now: datetime, files, stored: list[str]) -> Reply:
    question = Question.objects.select_for_update().get(pk=question.pk)
    if question.status == QuestionStatus.CLOSED:
        raise ValueError("A closed question cannot be followed up.")
    reply = Reply.objects.create(question=question, author=patient, kind=ReplyKind.FOLLOW_UP, body=body, created_at=now)
    attachments.store(question, files, now, stored, reply=reply)
    was_info_request = question.status == QuestionStatus.INFO_REQUESTED
    if question.status == QuestionStatus.INFO_REQUESTED and question.clock_due_at is not None:
        fields = {"status": QuestionStatus.OPEN, "clock_paused_at": None}
        if question.clock_paused_at is not None:
            warn_at, due_at = sla.resumed_clock(
                question.clock_warn_at, question.clock_due_at, question.clock_paused_at, now
            )
            fields.update(clock_warn_at=warn_at, clock_due_at=due_at)
            if question.first_answered_at is None:
                fields["due_at"] = question.due_at + (due_at - question.clock_due_at)
        Question.objects.filter(pk=question.pk).update(**fields)
    elif question.status == QuestionStatus.ANSWERED or (
        question.status == QuestionStatus.INFO_REQUESTED and question.first_answered_at is not None
    ):
        # A follow-up after an answer (or a reply to a question asked after the answer):
        # the doctor who answered last (post_answer leaves them holding the claim)
        # owes a reply within a fresh window, if they may still be handed it (the rule
        # staff reassigning must pass); else it waits unclaimed in the specialty's queue.
        answerer = question.claimed_by or question.answered_by
        if answerer is not None and assignment_refusal(question, answerer):
            answerer = None
        Question.objects.filter(pk=question.pk).update(
            status=QuestionStatus.OPEN,
            claimed_by=answerer,
            **_clock_fields(now, question.is_urgent, is_follow_up=True),
        )
    else:
        return reply  # written while the question waits in the queue: no new work
    question.refresh_from_db()
    new_work.notify_patient_reply(question, answered=not was_info_request, now=now)
    return reply


def close_question(question: Question, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    return (
        Question.objects.filter(pk=question.pk)
        .exclude(status=QuestionStatus.CLOSED)
        .update(status=QuestionStatus.CLOSED, closed_at=now, **_stopped_clock_fields())
        == 1
    )


def rate_answer(question: Question, rating: int, comment: str = "", now: datetime | None = None) -> None:
    if question.first_answered_at is None:
        raise ValueError("Only an answered question can be rated.")
    Question.objects.filter(pk=question.pk).update(
        rating=rating, rating_comment=comment, rated_at=now or timezone.now()
    )


def log_access(user, question: Question, action: str, request=None, attachment: Attachment | None = None) -> None:
    AccessLog.objects.create(
        user=user,
        question=question,
        attachment=attachment,
        action=action,
        ip_address=(client_ip(request) or None) if request is not None else None,
    )


# --- The doctors' workbench -----------------------------------------------------------


@dataclass(frozen=True)
class ReplyResult:
    reply: Reply | None
    holder: DoctorProfile | None = None
    refusal: str = ""

    @property
    def ok(self) -> bool:
        return self.reply is not None


def reply_as_doctor(
    question_id: int,
    doctor: DoctorProfile,
    body: str,
    *,
    ask_for_information: bool = False,
    now: datetime | None = None,
) -> ReplyResult:
    """A doctor's answer (or request for more information) from the workbench.

    The doctor must hold the claim or take it now; the row stays locked from
    the claim to the reply, so nobody can claim or reassign in between. When
    another doctor holds it, or it is no longer open, nothing is written and
    the refusal says who holds it.
    """
    body = (body or "").strip()
    if not body:
        raise ValueError("A reply needs some text.")
    now = now or timezone.now()
    with transaction.atomic():
        locked = Question.objects.select_for_update().filter(pk=question_id).first()
        if locked is None:
            return ReplyResult(reply=None, refusal="This question no longer exists.")
        if not (locked.claimed_by_id == doctor.pk and locked.status in OPEN_STATUSES):
            claim = claim_question(question_id, doctor, now=now)
            if not claim.ok:
                return ReplyResult(reply=None, holder=claim.holder, refusal=claim.message)
            locked.refresh_from_db()
        elif not questions_doctor_may_take(doctor).filter(pk=question_id).exists():
            # A claim that outlived the doctor's specialty or verification (a change
            # that sent no signal): holding it is not enough to write to the patient.
            return ReplyResult(reply=None, refusal=NOT_YOURS)
        post = request_information if ask_for_information else post_answer
        return ReplyResult(reply=post(locked, doctor, body, now=now), holder=doctor)
