"""Breach credits: what a patient is told and owed when their answer guarantee is broken.

The SLA sweep calls `record_breaches` for the questions its breach transition
has just changed, inside the same transaction as the breach escalation
(consultations.sweep.escalate_batch). So one breach gives exactly one ledger
row and one apology e-mail: the sweep's conditional UPDATE lets only one sweep
apply a breach, and both the ledger row (`breach_credit_once_per_clock`) and
the outbox row (its dedupe key) are unique per question and clock as a second
guard. A follow-up's clock is a new clock with its own due time: if it breaches
too, the patient gets a second apology and a second credit.

`minutes_late` is fixed when the breach is recorded (normally under a minute
late, later after an outage). How late the answer finally came is read from
the thread (`BreachCredit.final_minutes_late`), so the ledger is written once and never
edited.
"""

import math
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Min, OuterRef, Subquery

from consultations import links
from consultations.email_skeletons import EmailSkeletons
from consultations.models import (
    CREDIT_PATIENT_TEXT,
    BreachCredit,
    CreditKind,
    Question,
    QuestionStatus,
    Reply,
    ReplyKind,
    SweepRun,
)
from consultations.notifications import OutgoingEmail
from portal import times
from portal.database import insert_rows

APOLOGY_KIND = "breach_apology"
QUESTION_PAGE = "consultations:question_detail"  # Question.get_absolute_url


def credit_kind() -> str:
    """The kind new breaches earn (settings.SLA_BREACH_CREDIT)."""
    return CreditKind(settings.SLA_BREACH_CREDIT).value


def patient_text(kind: str) -> str:
    """The credit in the patient's words; "" when the breach earns none."""
    return CREDIT_PATIENT_TEXT.get(kind, "")


def minutes_between(due_at: datetime, moment: datetime) -> int:
    """Whole minutes late, rounded up: a breach is at least one minute late."""
    return max(1, math.ceil((moment - due_at).total_seconds() / 60))


def record_breaches(questions: list[Question], now: datetime, run: SweepRun | None) -> list[OutgoingEmail]:
    """Write the ledger rows of these just-breached questions (one INSERT) and return their
    apology e-mails for the caller to queue in the same transaction.

    The questions need `patient` loaded (email, is_active, time_zone) and their
    `clock_due_at` as it was when they breached.
    """
    kind = credit_kind()
    # A clock that already has its credit (its breach was recorded before, and the
    # question's breach mark was later cleared by hand) gets no second one and no
    # second apology, and must not fail the escalation: skip it. The sweep holds
    # these questions' rows locked, so nothing adds one meanwhile.
    recorded = set(
        BreachCredit.objects.filter(question_id__in=[question.pk for question in questions]).values_list(
            "question_id", "clock_due_at"
        )
    )
    questions = [question for question in questions if (question.pk, question.clock_due_at) not in recorded]
    rows = [
        {
            "patient_id": question.patient_id,
            "question_id": question.pk,
            "is_follow_up": question.is_follow_up,
            "clock_due_at": question.clock_due_at,
            "breached_at": now,
            "minutes_late": minutes_between(question.clock_due_at, now),
            "kind": kind,
            "sweep_id": run.pk if run is not None else None,
        }
        for question in questions
    ]
    # A COPY on PostgreSQL (bulk_create's arrays cost the sweep more to send).
    insert_rows(BreachCredit, rows)
    skeletons = EmailSkeletons()
    question_path = links.url_for_any_id(QUESTION_PAGE)  # reversed once, not per apology
    return [
        apology_email(question, kind, skeletons, url=settings.SITE_URL + question_path(question.pk))
        for question in questions
        if _reachable(question)
    ]


def _reachable(question: Question) -> bool:
    patient = question.patient
    return bool(patient.is_active and patient.email)


def apology_email(
    question: Question, kind: str, skeletons: EmailSkeletons | None = None, url: str | None = None
) -> OutgoingEmail:
    """The patient's apology for the breach of the question's clock (its `is_follow_up` and
    `clock_due_at`, as the credit records them): what happened, who was alerted, what
    they can do, what they are owed (`kind`, the credit's).

    Neither subject nor body quotes the question: only its number (the patient
    reads their own words behind the login). A batch's apologies share `skeletons`
    (the templates are rendered once per kind of credit and clock) and give the
    question page's `url` from a pattern reversed once.
    """
    patient = question.patient
    zone = times.as_zone(patient.time_zone or settings.TIME_ZONE)
    skeletons = skeletons or EmailSkeletons()
    subject, body = skeletons.render(
        APOLOGY_KIND,
        {"is_follow_up": question.is_follow_up, "credit_text": patient_text(kind)},
        {
            "question.pk": str(question.pk),
            "due_time": times.format_time(question.clock_due_at, "H:i", zone, skeletons.language),
            "due": times.format_time(question.clock_due_at, times.LONG_DATE_TIME, zone, skeletons.language),
            "url": url or settings.SITE_URL + question.get_absolute_url(),
        },
    )
    return OutgoingEmail(
        to_email=patient.email,
        kind=APOLOGY_KIND,
        subject=subject,
        body=body,
        # Per question and breach (its clock's due time): a second breach of a new clock is a new e-mail.
        dedupe_key=f"{APOLOGY_KIND}:{question.pk}:{question.clock_due_at.isoformat()}",
        recipient_id=patient.pk,
        question_id=question.pk,
    )


def answered_at_subquery():
    """The first doctor's answer after each credit's breach: the answer that stopped that clock."""
    return Subquery(
        Reply.objects.filter(
            question_id=OuterRef("question_id"), kind=ReplyKind.ANSWER, created_at__gte=OuterRef("breached_at")
        )
        .values("question_id")
        .annotate(first=Min("created_at"))
        .values("first")[:1]
    )


def with_answer(credits):
    """Credits annotated with `answered_at` (None while unanswered)."""
    return credits.annotate(answered_at=answered_at_subquery())


# --- What the patient's pages say ------------------------------------------------------


@dataclass(frozen=True)
class Overdue:
    """A running clock whose guaranteed time has passed, as the patient's page tells it."""

    due_at: datetime
    is_follow_up: bool
    # When the sweep recorded the breach and alerted a senior doctor; None until it has.
    alerted_at: datetime | None
    # This breach's ledger row, once recorded.
    credit: BreachCredit | None = None


def overdue(question: Question, now: datetime, credits=()) -> Overdue | None:
    """The failed promise of `question`'s running clock, or None while it is kept (or no clock runs).

    A clock paused for the patient's reply is not overdue: the wait is not the doctors'.
    `credits` are the question's ledger rows; the one written with this breach is attached.
    """
    if question.status != QuestionStatus.OPEN or question.clock_due_at is None or question.clock_paused_at is not None:
        return None
    if question.breached_at is None and question.clock_due_at >= now:
        return None
    credit = None
    if question.breached_at is not None:
        credit = next((c for c in credits if c.breached_at == question.breached_at), None)
    return Overdue(question.clock_due_at, question.is_follow_up, question.breached_at, credit)


def for_question(question: Question) -> list[BreachCredit]:
    return list(with_answer(question.breach_credits.all()))


def for_patient(patient, limit: int = 50) -> list[BreachCredit]:
    """The patient's latest credits, newest first, with their question's number and title."""
    return list(with_answer(patient.breach_credits.select_related("question").only(*PATIENT_LIST_FIELDS))[:limit])


PATIENT_LIST_FIELDS = (
    "question__title",
    "is_follow_up",
    "clock_due_at",
    "breached_at",
    "minutes_late",
    "kind",
    "patient_id",
)


def upcoming(question: Question, now: datetime) -> Overdue | None:
    """What the page will say if the guaranteed time passes while the patient has it open:
    rendered hidden, revealed by portal/countdown.js when the countdown reaches zero."""
    if question.status != QuestionStatus.OPEN or question.clock_due_at is None or question.clock_paused_at is not None:
        return None
    if overdue(question, now) is not None:
        return None
    return Overdue(question.clock_due_at, question.is_follow_up, None)
