"""Breaches seen coming (issue 14): will each open question be answered in time?

The method (docs/forecast.md says it for a clinic manager): every open question
whose clock runs is put in one line, in the queue's own order (urgent first, then
due time, then number). Going down the line, each question is given to the doctor
of its specialty who would finish it soonest, counting only the hours that doctor
is on duty (consultations.duty, the portal's one rule) and the recent pace: the
median minutes from a doctor claiming a question to answering it, over the last 7
days. The answer is expected when that doctor finishes it; the question will
breach when that is after its due time, or when no doctor of its specialty is on
duty in the coming week.

Why from the claim, not from arrival: arrival to answer includes the time spent
waiting in the queue, which the forecast adds itself from the queue ahead; counting
it twice would make every busy day look twice as slow. An answer given without a
claim records its claim at the answer (zero minutes) and tells nothing of the
work, so it is left out.

`forecast` is pure (plain data in, plain data out) and is what the bench replays;
`open_forecast` reads the data for it in a fixed number of queries, whatever the
number of open questions.
"""

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Aggregate, Count, F, FloatField
from django.utils import timezone

from consultations import duty
from consultations.models import DoctorProfile, Question, QuestionStatus
from portal.times import format_time

# The pace used while there is too little history to measure one.
DEFAULT_MINUTES_PER_ANSWER = 20.0
MIN_PACE_SAMPLES = 5
PACE_DAYS = 7
# How far ahead doctors' duty is read: a week and a day meets every weekly period.
HORIZON = duty.HORIZON

Interval = tuple[datetime, datetime]


@dataclass(frozen=True)
class Waiting:
    """An open question as the forecast sees it: no patient data at all."""

    pk: int
    specialty_id: int
    is_urgent: bool
    due_at: datetime


@dataclass(frozen=True)
class Doctor:
    pk: int
    specialty_ids: frozenset[int]
    intervals: tuple[Interval, ...]  # on duty, from now, merged and sorted


@dataclass(frozen=True)
class Forecast:
    question_id: int
    due_at: datetime
    expected_at: datetime | None  # None: nobody of its specialty on duty in the horizon
    will_breach: bool
    reason: str
    ahead: int  # questions of the same specialty before it in the queue


def queue_order(question: Waiting) -> tuple:
    """The doctors' queue order: urgent first, then due time (then number, to be stable)."""
    return (not question.is_urgent, question.due_at, question.pk)


def merge(intervals: Iterable[Interval]) -> tuple[Interval, ...]:
    merged: list[list[datetime]] = []
    for begins, ends in sorted(intervals):
        if merged and begins <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], ends)
        else:
            merged.append([begins, ends])
    return tuple((begins, ends) for begins, ends in merged)


def finish_time(intervals: tuple[Interval, ...], start: datetime, minutes: float) -> datetime | None:
    """When `minutes` of on-duty work begun no earlier than `start` are done; None if
    the doctor's duty in the horizon runs out first. Work stops off duty and resumes
    at the next period."""
    left = timedelta(minutes=minutes)
    for begins, ends in intervals:
        if ends <= start:
            continue
        begins = max(begins, start)
        if ends - begins >= left:
            return begins + left
        left -= ends - begins
        start = ends
    return None


def _at(moment: datetime, now: datetime) -> str:
    """A time in the active zone: "14:00 CET" today, "Mon 7 Dec, 14:00 CET" later."""
    same_day = timezone.localtime(moment).date() == timezone.localtime(now).date()
    return format_time(moment, "H:i" if same_day else "D j M, H:i")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def forecast(
    questions: Iterable[Waiting], doctors: Iterable[Doctor], minutes_per_answer: float, now: datetime
) -> dict[int, Forecast]:
    """Question id -> its forecast. Doctors take the line in queue order; each question
    goes to the doctor of its specialty who would finish it first."""
    doctors = list(doctors)
    free_at = {doctor.pk: now for doctor in doctors}
    by_specialty: dict[int, list[Doctor]] = {}
    for doctor in doctors:
        for specialty_id in doctor.specialty_ids:
            by_specialty.setdefault(specialty_id, []).append(doctor)
    ahead: dict[int, int] = {}
    cover: dict[int, tuple[int, str]] = {}  # specialty -> (doctors on duty now, when next on)
    pace = f"~{minutes_per_answer:.0f} min each"
    result = {}
    for question in sorted(questions, key=queue_order):
        team = by_specialty.get(question.specialty_id, [])
        queued = ahead.get(question.specialty_id, 0)
        ahead[question.specialty_id] = queued + 1
        best_doctor, best = None, None
        for doctor in team:
            done = finish_time(doctor.intervals, free_at[doctor.pk], minutes_per_answer)
            if done is not None and (best is None or done < best):
                best_doctor, best = doctor, done
        if best_doctor is not None:
            free_at[best_doctor.pk] = best
        if question.specialty_id not in cover:  # once per specialty: who is on duty now, and when next
            on_now = sum(1 for doctor in team if any(b <= now < e for b, e in doctor.intervals))
            first_on = min((doctor.intervals[0][0] for doctor in team if doctor.intervals), default=None)
            cover[question.specialty_id] = (on_now, _at(first_on, now) if first_on and not on_now else "")
        on_now, next_on = cover[question.specialty_id]
        queue = f"{_plural(queued, 'question')} ahead"
        if on_now:
            reason = f"{queue}, {_plural(on_now, 'doctor')} on duty at {pace}"
        elif next_on:
            reason = f"nobody on duty until {next_on}, then {queue} at {pace}"
        else:
            reason = "nobody of this specialty on duty in the coming week"
        result[question.pk] = Forecast(
            question_id=question.pk,
            due_at=question.due_at,
            expected_at=best,
            will_breach=best is None or best > question.due_at,
            reason=reason,
            ahead=queued,
        )
    return result


# --- Reading the data: a fixed number of queries ---------------------------------------


class _MedianSpan(Aggregate):
    """PostgreSQL: the median of (first expression - second), in seconds."""

    template = "PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM (%(expressions)s)))"
    arg_joiner = " - "
    output_field = FloatField()


def postgresql_pace(answers) -> tuple[int, float]:
    """PostgreSQL: how many `answers`, and their median minutes from claim to answer, by one
    aggregate (the week's answers are not loaded)."""
    # COUNT(*), not COUNT(id): the answers' index holds every column read, not the id.
    found = answers.aggregate(count=Count("*"), median=_MedianSpan("first_answered_at", "claimed_at"))
    return found["count"], (found["median"] or 0) / 60


def portable_pace(answers) -> tuple[int, float]:
    """Any database (SQLite has no percentile_cont): the spans read and their median taken here."""
    spans = [(a - c).total_seconds() / 60 for c, a in answers.values_list("claimed_at", "first_answered_at")]
    return len(spans), statistics.median(spans) if spans else 0


def minutes_per_answer(now: datetime, pace=None) -> float:
    """The median minutes from claim to first answer over the last PACE_DAYS days
    (DEFAULT_MINUTES_PER_ANSWER with fewer than MIN_PACE_SAMPLES answers). One query, by
    `pace`: `postgresql_pace` on PostgreSQL, `portable_pace` elsewhere, the same figure
    (tests/consultations/test_dashboard_agreement.py runs both on PostgreSQL)."""
    if pace is None:
        pace = postgresql_pace if connection.vendor == "postgresql" else portable_pace
    answers = Question.objects.filter(
        first_answered_at__gte=now - timedelta(days=PACE_DAYS),
        first_answered_at__lte=now,
        claimed_at__isnull=False,
        claimed_at__lt=F("first_answered_at"),
    ).order_by()
    count, median = pace(answers)
    return DEFAULT_MINUTES_PER_ANSWER if count < MIN_PACE_SAMPLES else median


def waiting_questions() -> list[Waiting]:
    """Every question owed an answer whose clock runs (not paused for the patient). One query."""
    return [
        Waiting(pk=pk, specialty_id=specialty_id, is_urgent=is_urgent, due_at=due_at)
        for pk, specialty_id, is_urgent, due_at in Question.objects.filter(
            status=QuestionStatus.OPEN, clock_due_at__isnull=False, clock_paused_at__isnull=True
        )
        .order_by()
        .values_list("pk", "specialty_id", "is_urgent", "clock_due_at")
    ]


def duty_doctors(now: datetime) -> list[Doctor]:
    """Every doctor who could be on duty in the horizon, with their intervals. Three queries."""
    doctors: Iterable[DoctorProfile] = duty._candidates().prefetch_related("specialties")
    found = []
    for doctor in doctors:
        intervals = merge(duty.duty_intervals(doctor, now, now + HORIZON))
        if intervals:
            found.append(
                Doctor(
                    pk=doctor.pk,
                    specialty_ids=frozenset(s.pk for s in doctor.specialties.all()),
                    intervals=intervals,
                )
            )
    return found


def open_forecast(now: datetime) -> dict[int, Forecast]:
    """The forecast for every open question at `now`, in five queries."""
    return forecast(waiting_questions(), duty_doctors(now), minutes_per_answer(now), now)


def likely_to_breach(forecasts: dict[int, Forecast], now: datetime, within: timedelta = timedelta(hours=1)) -> list:
    """The forecasts of questions not yet late but due within `within` that will breach, soonest due first."""
    return sorted(
        (f for f in forecasts.values() if f.will_breach and now <= f.due_at <= now + within),
        key=lambda f: (f.due_at, f.question_id),
    )
