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
the thread (`final_minutes_late`), so the ledger is written once and never
edited.
"""

import math
from datetime import datetime

from django.conf import settings
from django.db.models import Min, OuterRef, Subquery

from consultations.models import BreachCredit, CreditKind, Question, Reply, ReplyKind, SweepRun
from consultations.notifications import OutgoingEmail, render_email
from portal import times

APOLOGY_KIND = "breach_apology"

# What the patient reads about each kind: "We have recorded {text} for you."
PATIENT_TEXT = {
    CreditKind.REFUND: "a refund of this question's fee",
    CreditKind.FREE_QUESTION: "a free question",
    CreditKind.NONE: "",
}


def credit_kind() -> str:
    """The kind new breaches earn (settings.SLA_BREACH_CREDIT)."""
    return CreditKind(settings.SLA_BREACH_CREDIT).value


def patient_text(kind: str) -> str:
    """The credit in the patient's words; "" when the breach earns none."""
    return PATIENT_TEXT.get(kind, "")


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
    credits = [
        BreachCredit(
            patient_id=question.patient_id,
            question_id=question.pk,
            is_follow_up=question.is_follow_up,
            clock_due_at=question.clock_due_at,
            breached_at=now,
            minutes_late=minutes_between(question.clock_due_at, now),
            kind=kind,
            sweep=run,
        )
        for question in questions
    ]
    BreachCredit.objects.bulk_create(credits)
    return [
        apology_email(question, credit)
        for question, credit in zip(questions, credits, strict=True)
        if _reachable(question)
    ]


def _reachable(question: Question) -> bool:
    patient = question.patient
    return bool(patient.is_active and patient.email)


def apology_email(question: Question, credit: BreachCredit) -> OutgoingEmail:
    """The patient's apology: what happened, who was alerted, what they can do, what they are owed.

    Neither subject nor body quotes the question: only its number (the patient
    reads their own words behind the login).
    """
    patient = question.patient
    zone = times.as_zone(patient.time_zone or settings.TIME_ZONE)
    subject, body = render_email(
        APOLOGY_KIND,
        {
            "question": question,
            "is_follow_up": credit.is_follow_up,
            "due_time": times.format_time(credit.clock_due_at, "H:i", zone),
            "due": times.format_time(credit.clock_due_at, times.LONG_DATE_TIME, zone),
            "credit_text": patient_text(credit.kind),
            "url": settings.SITE_URL + question.get_absolute_url(),
        },
    )
    return OutgoingEmail(
        to_email=patient.email,
        kind=APOLOGY_KIND,
        subject=subject,
        body=body,
        # Per question and breach (its clock's due time): a second breach of a new clock is a new e-mail.
        dedupe_key=f"{APOLOGY_KIND}:{question.pk}:{credit.clock_due_at.isoformat()}",
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


def final_minutes_late(credit: BreachCredit) -> int | None:
    """How late the answer finally came, for a credit from `with_answer`; None while unanswered.

    Counted from the guaranteed time that passed; time the clock spent paused
    waiting for the patient afterwards is included.
    """
    answered_at = getattr(credit, "answered_at", None)
    if answered_at is None:
        return None
    return minutes_between(credit.clock_due_at, answered_at)
