"""The dashboard's lists: breached and at-risk questions, those likely to breach, the latest
escalations; each row with its links and the doctors it may be reassigned to."""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from consultations import forecast as forecast_model
from consultations import links, sla
from consultations.dashboard import clock
from consultations.dashboard.db import open_questions
from consultations.dashboard.formatting import LocalTime, format_duration
from consultations.models import DoctorProfile, Escalation, Question

LIST_LIMIT = 25
ESCALATION_LIMIT = 20

# Only what a list row shows: patients appear as "Patient #CODE", so neither
# their names nor their questions' text are loaded.
_ROW_FIELDS = (
    "pk",
    "is_urgent",
    "is_follow_up",
    "clock_due_at",
    "claimed_at",
    "specialty__name",
    "patient__patient_code",
    "claimed_by__display_name",
)


# --- Links ------------------------------------------------------------------------------
# Dozens of links per page: consultations.links reverses each pattern once.


def question_admin_urls() -> Callable[[int], str]:
    """A function from a question id to its change page in the staff admin."""
    return links.question_admin_urls("admin")


def question_admin_url(question_id: int) -> str:
    """The question's change page in the staff admin."""
    return question_admin_urls()(question_id)


def _reassign_urls() -> Callable[[int], str]:
    return links.url_for_any_id("staff:sla_reassign")


# --- Rows -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DoctorChoice:
    pk: int
    name: str


@dataclass(frozen=True)
class ReassignOption:
    value: str
    label: str
    selected: bool


@dataclass
class AttentionItem:
    """An at-risk or breached question, with the doctors it may be reassigned to."""

    question: Question
    seconds_left: float
    doctors: list[DoctorChoice]
    admin_url: str = ""
    reassign_url: str = ""
    # Set when reassigning this question was refused: shown next to its field, the choice kept.
    error: str = ""
    selected: str = ""

    @property
    def time_display(self) -> str:
        suffix = "over" if clock.is_over(self.seconds_left) else "left"
        return f"{format_duration(self.seconds_left)} {suffix}"

    @cached_property
    def due(self) -> LocalTime:
        return LocalTime(self.question.clock_due_at)

    @property
    def options(self) -> list[ReassignOption]:
        holder = self.question.claimed_by_id
        return [
            ReassignOption(
                value=str(doctor.pk),
                label=f"{doctor.name} (holds it now)" if doctor.pk == holder else doctor.name,
                selected=bool(self.error) and self.selected == str(doctor.pk),
            )
            for doctor in self.doctors
        ]


@dataclass
class ForecastItem(AttentionItem):
    """A question forecast to breach within the hour: its row, why, and when it would be answered."""

    forecast: forecast_model.Forecast | None = None

    @cached_property
    def expected(self) -> LocalTime | None:
        expected_at = self.forecast.expected_at if self.forecast else None
        return LocalTime(expected_at) if expected_at else None


def reassign_choices(specialty_ids) -> dict[int, list[DoctorChoice]]:
    """Verified, active doctors of each specialty, in one query over the M2M table."""
    through = DoctorProfile.specialties.through
    choices = defaultdict(list)
    for specialty_id, doctor_id, name in (
        through.objects.filter(
            specialty_id__in=set(specialty_ids),
            doctorprofile__is_verified=True,
            doctorprofile__user__is_active=True,
        )
        .order_by("doctorprofile__display_name", "doctorprofile_id")
        .values_list("specialty_id", "doctorprofile_id", "doctorprofile__display_name")
    ):
        choices[specialty_id].append(DoctorChoice(pk=doctor_id, name=name))
    return choices


def _row_questions(pks) -> list[Question]:
    """The questions `pks` (ids or a query of ids) with what their rows show, soonest due first."""
    return list(
        Question.objects.filter(pk__in=pks)
        .select_related("specialty", "patient", "claimed_by")
        .only(*_ROW_FIELDS)
        .order_by("clock_due_at", "pk")
    )


def _items(item_class, questions, now, choices, **extra_by_pk) -> list:
    """One row per question: time to due, reassign choices and links; `extra_by_pk` maps a field
    of `item_class` to its value per question id."""
    admin_url, reassign_url = question_admin_urls(), _reassign_urls()
    return [
        item_class(
            question=q,
            seconds_left=(q.clock_due_at - now).total_seconds(),
            doctors=choices.get(q.specialty_id, []),
            admin_url=admin_url(q.pk),
            reassign_url=reassign_url(q.pk),
            **{name: values[q.pk] for name, values in extra_by_pk.items()},
        )
        for q in questions
    ]


# --- The lists --------------------------------------------------------------------------


def _attention_questions(state: str, now: datetime, limit: int) -> list[Question]:
    # The most urgent ids first, then the joins for those rows only: joining the
    # patient, specialty and doctor of every late question before keeping 25
    # costs three lookups per late question (a thousand in a bad hour).
    most_urgent = open_questions().filter(clock.state_q(state, now)).order_by("clock_due_at", "pk").values("pk")[:limit]
    return _row_questions(most_urgent)


def attention_lists(now: datetime, limit: int = LIST_LIMIT) -> dict[str, list[AttentionItem]]:
    """{"breached": [...], "at_risk": [...]}: most overdue / closest to due first."""
    questions = {state: _attention_questions(state, now, limit) for state in (sla.BREACHED, sla.AT_RISK)}
    choices = reassign_choices(q.specialty_id for items in questions.values() for q in items)
    return {state: _items(AttentionItem, items, now, choices) for state, items in questions.items()}


def likely_to_breach(now: datetime, limit: int = LIST_LIMIT) -> tuple[list[ForecastItem], int]:
    """The questions forecast to breach in the next hour (consultations.forecast), soonest
    due first, as reassignable rows, and how many there are. Seven queries in all, whatever
    the number of open questions."""
    likely = forecast_model.likely_to_breach(forecast_model.open_forecast(now), now)
    shown = {item.question_id: item for item in likely[:limit]}
    questions = _row_questions(list(shown)) if shown else []
    choices = reassign_choices(q.specialty_id for q in questions) if questions else {}
    return _items(ForecastItem, questions, now, choices, forecast=shown), len(likely)


def mark_reassign_error(lists: dict[str, list[AttentionItem]], question_id: int, selected: str, message: str) -> None:
    """Show a refused reassign next to its question's field, with the doctor that was chosen."""
    for items in lists.values():
        for item in items:
            if item.question.pk == question_id:
                item.error, item.selected = message, selected


@dataclass(frozen=True)
class EscalationItem:
    escalation: Escalation
    admin_url: str

    @cached_property
    def created(self) -> LocalTime:
        return LocalTime(self.escalation.created_at)


def latest_escalations(limit: int = ESCALATION_LIMIT) -> list[EscalationItem]:
    """The most recent escalations of any level, newest first, with who was told."""
    admin_url = question_admin_urls()
    return [
        EscalationItem(escalation, admin_url(escalation.question_id))
        for escalation in Escalation.objects.select_related("question__specialty", "question__patient")
        .only(
            "pk",
            "level",
            "is_follow_up",
            "created_at",
            "clock_due_at",
            "recipients",
            "question__id",
            "question__specialty__name",
            "question__patient__patient_code",
        )
        .order_by("-created_at", "-pk")[:limit]
    ]
