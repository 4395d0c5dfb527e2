"""Helpers for the SLA engine's tests: questions with clocks at chosen times, in bulk when needed."""

from datetime import datetime, timedelta

from django.contrib.auth.models import Group

from consultations import sla
from consultations.models import Question, QuestionStatus
from tests.factories import QuestionFactory, UserFactory


def staff_group(*users):
    group, _ = Group.objects.get_or_create(name="SLA staff")
    group.user_set.add(*users)
    return group


def sla_staff_member(email="sla.staff@example.com"):
    user = UserFactory(email=email, full_name="Sam Slastaff", is_staff=True)
    staff_group(user)
    return user


def question_started(started_at: datetime, specialty, *, is_urgent=False, **fields) -> Question:
    """An open question whose clock started at `started_at`."""
    return QuestionFactory(submitted_at=started_at, specialty=specialty, is_urgent=is_urgent, **fields)


def breached_by(now: datetime, specialty, *, late=timedelta(minutes=1), **fields) -> Question:
    """A question whose due time passed `late` before `now`."""
    return question_started(now - late - sla.answer_window(fields.get("is_urgent", False)), specialty, **fields)


def unsaved_questions(count: int, *, specialty, patient, started_at: datetime, answered: bool = False, **fields):
    """Question rows for bulk_create: open with a running clock, or answered within the guarantee."""
    clock = sla.new_clock(started_at)
    rows = []
    for number in range(count):
        row = Question(
            patient=patient,
            specialty=specialty,
            title=f"Bulk question {number}",
            description="A description long enough to be realistic about a skin problem.",
            age=40,
            sex="female",
            submitted_at=started_at,
            due_at=clock.due_at,
            **fields,
        )
        if answered:
            row.status = QuestionStatus.ANSWERED
            row.first_answered_at = started_at + timedelta(hours=1)
        else:
            row.clock_started_at = clock.started_at
            row.clock_warn_at = clock.warn_at
            row.clock_due_at = clock.due_at
        rows.append(row)
    return rows
