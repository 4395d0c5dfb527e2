"""What each demo question demonstrates: the plans `consultations/demo_content/questions.toml`
names (`kind = "waiting"`, ...), turned into the question's fields and thread at the moment
it is seeded. The durations come from the data; the rules that place a question in an SLA
state whatever SLA_ANSWER_HOURS and SLA_WARN_FRACTION say live here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

from consultations import sla
from consultations.models import Question, QuestionStatus, ReplyKind


def _elapsed(state: str, phase: float, window: timedelta) -> timedelta:
    """How long ago a clock must have started to sit `phase` (0..1) of the way
    through the band of `state`, whatever the configured window and warning fraction."""
    warn = settings.SLA_WARN_FRACTION
    low, high = {sla.ON_TRACK: (0.0, warn), sla.AT_RISK: (warn, 1.0), sla.BREACHED: (1.0, 1.5)}[state]
    return window * (low + (high - low) * phase)


def _running_clock(started_at: datetime, due_at: datetime) -> dict:
    return {
        "clock_started_at": started_at,
        "clock_due_at": due_at,
        "clock_warn_at": sla.warn_at_for(started_at, due_at),
        "clock_paused_at": None,
    }


_NO_CLOCK = {"clock_started_at": None, "clock_due_at": None, "clock_warn_at": None, "clock_paused_at": None}
# Left empty for a running clock so that the real sweep escalates it.
_NOT_ESCALATED = {
    "warned_at": None,
    "breached_at": None,
    "lead_escalated_at": None,
    "sweep_error": "",
    "sweep_retry_at": None,
}


# How long after a due time the demo's history says the sweep recorded the breach.
SWEEP_LAG = timedelta(seconds=30)


def _unanswered(status: str, submitted_at: datetime, due_at: datetime, claimed_at, **marks) -> dict:
    """A first question waiting for its answer on a running clock; `marks` are what the sweep recorded."""
    return {
        "status": status,
        "submitted_at": submitted_at,
        "due_at": due_at,
        **_running_clock(submitted_at, due_at),
        "is_follow_up": False,
        **_NOT_ESCALATED,
        "claimed_at": claimed_at,
        **marks,
    }


@dataclass(frozen=True)
class PlannedReply:
    kind: str
    doctor_email: str | None  # None: the patient wrote it
    body: str
    created_at: datetime


@dataclass(frozen=True)
class Waiting:
    """Open, unanswered, `phase` of the way through the `state` band of its window."""

    state: str
    phase: float
    claimed_by: str | None = None
    repeats = False

    @property
    def status(self) -> str:
        return QuestionStatus.OPEN

    @property
    def claimant(self) -> str | None:
        return self.claimed_by

    def fields(self, now: datetime, is_urgent: bool) -> dict:
        elapsed = _elapsed(self.state, self.phase, sla.answer_window(is_urgent))
        submitted_at = now - elapsed
        due_at = sla.due_at_for(submitted_at, is_urgent)
        claimed_at = submitted_at + min(elapsed / 3, timedelta(minutes=20)) if self.claimed_by else None
        return _unanswered(self.status, submitted_at, due_at, claimed_at)

    def replies(self, now: datetime, is_urgent: bool) -> list[PlannedReply]:
        return []

    def drifted(self, question: Question, now: datetime) -> bool:
        return sla.sla_state(question, now) != self.state


@dataclass(frozen=True)
class BreachingSoon:
    """Unclaimed and on track when seeded, at risk `warn_in` later, breached `due_in` later.

    Demo only: its clock is a short window (a few minutes instead of
    SLA_ANSWER_HOURS) chosen so that the warning point falls at `warn_in` with
    the configured SLA_WARN_FRACTION. Once it has reached its warning point, the
    next seeding starts it again (or, if someone worked on it, adds a fresh one).
    """

    warn_in: timedelta
    due_in: timedelta
    claimant = None
    repeats = True

    @property
    def status(self) -> str:
        return QuestionStatus.OPEN

    def fields(self, now: datetime, is_urgent: bool) -> dict:
        due_at = now + self.due_in
        window = (self.due_in - self.warn_in) / (1 - settings.SLA_WARN_FRACTION)
        submitted_at = due_at - window
        return _unanswered(self.status, submitted_at, due_at, None)

    def replies(self, now: datetime, is_urgent: bool) -> list[PlannedReply]:
        return []

    def drifted(self, question: Question, now: datetime) -> bool:
        return question.warned_at is not None or question.clock_warn_at is None or now >= question.clock_warn_at


@dataclass(frozen=True)
class AlreadyBreached:
    """Open, unclaimed, its guaranteed time `due_ago` ago, and the sweep has been: warned,
    breached (a senior doctor alerted), the breach credit recorded. It stays in this
    state (the sweep adds the lead escalation one window after the due time)."""

    due_ago: timedelta
    claimant = None
    repeats = False

    @property
    def status(self) -> str:
        return QuestionStatus.OPEN

    def fields(self, now: datetime, is_urgent: bool) -> dict:
        due_at = now - self.due_ago
        submitted_at = due_at - sla.answer_window(is_urgent)
        warned_at = sla.warn_at_for(submitted_at, due_at)
        return _unanswered(self.status, submitted_at, due_at, None, warned_at=warned_at, breached_at=due_at + SWEEP_LAG)

    def replies(self, now: datetime, is_urgent: bool) -> list[PlannedReply]:
        return []

    def drifted(self, question: Question, now: datetime) -> bool:
        return False  # a breach, once recorded, stays recorded


@dataclass(frozen=True)
class InfoRequested:
    """The doctor asked the patient for more; the clock is paused until the patient replies."""

    doctor: str
    submitted_ago: timedelta
    asked_after: timedelta
    body: str
    repeats = False

    @property
    def status(self) -> str:
        return QuestionStatus.INFO_REQUESTED

    @property
    def claimant(self) -> str:
        return self.doctor

    def fields(self, now: datetime, is_urgent: bool) -> dict:
        submitted_at = now - self.submitted_ago
        due_at = sla.due_at_for(submitted_at, is_urgent)
        asked_at = submitted_at + self.asked_after
        claimed_at = asked_at - min(self.asked_after / 2, timedelta(minutes=15))
        return _unanswered(self.status, submitted_at, due_at, claimed_at, clock_paused_at=asked_at)

    def replies(self, now: datetime, is_urgent: bool) -> list[PlannedReply]:
        asked_at = now - self.submitted_ago + self.asked_after
        return [PlannedReply(ReplyKind.INFO_REQUEST, self.doctor, self.body, asked_at)]

    def drifted(self, question: Question, now: datetime) -> bool:
        return False  # a paused clock stands still


@dataclass(frozen=True)
class Answered:
    """Answered `answered_after` the submission (met or missed). With a
    `follow_up`, the patient has since written back and a follow-up clock runs
    in the answering doctor's queue."""

    doctor: str
    submitted_ago: timedelta
    answered_after: timedelta
    body: str
    rating: int | None = None
    rating_comment: str = ""
    closed: bool = False
    follow_up: str = ""
    repeats = False

    @property
    def status(self) -> str:
        if self.follow_up:
            return QuestionStatus.OPEN
        return QuestionStatus.CLOSED if self.closed else QuestionStatus.ANSWERED

    @property
    def claimant(self) -> str:
        return self.doctor

    def _follow_up_at(self, now: datetime, is_urgent: bool) -> datetime:
        return now - _elapsed(sla.ON_TRACK, 0.3, sla.answer_window(is_urgent))

    def fields(self, now: datetime, is_urgent: bool) -> dict:
        submitted_at = now - self.submitted_ago
        due_at = sla.due_at_for(submitted_at, is_urgent)
        warn_at = sla.warn_at_for(submitted_at, due_at)
        answered_at = submitted_at + self.answered_after
        values = {
            "status": self.status,
            "submitted_at": submitted_at,
            "due_at": due_at,
            **_NO_CLOCK,
            "is_follow_up": False,
            **_NOT_ESCALATED,
            # The first clock's history: the sweep would have marked these.
            "warned_at": warn_at if answered_at >= warn_at else None,
            "breached_at": due_at if answered_at > due_at else None,
            "first_answered_at": answered_at,
            "claimed_at": answered_at - min(self.answered_after / 2, timedelta(minutes=25)),
            "rating": self.rating,
            "rating_comment": self.rating_comment,
            "rated_at": answered_at + timedelta(hours=2) if self.rating else None,
            "closed_at": answered_at + timedelta(hours=3) if self.closed else None,
        }
        if self.follow_up:
            follow_up_at = self._follow_up_at(now, is_urgent)
            values.update(
                **_running_clock(follow_up_at, sla.due_at_for(follow_up_at, is_urgent)),
                **_NOT_ESCALATED,
                is_follow_up=True,
            )
        return values

    def replies(self, now: datetime, is_urgent: bool) -> list[PlannedReply]:
        answered_at = now - self.submitted_ago + self.answered_after
        thread = [PlannedReply(ReplyKind.ANSWER, self.doctor, self.body, answered_at)]
        if self.follow_up:
            thread.append(PlannedReply(ReplyKind.FOLLOW_UP, None, self.follow_up, self._follow_up_at(now, is_urgent)))
        return thread

    def drifted(self, question: Question, now: datetime) -> bool:
        # Only the follow-up clock moves; a first answer's met/missed never changes.
        return bool(self.follow_up) and sla.sla_state(question, now) != sla.ON_TRACK


PLANS = {
    "waiting": Waiting,
    "breaching_soon": BreachingSoon,
    "already_breached": AlreadyBreached,
    "info_requested": InfoRequested,
    "answered": Answered,
}
Plan = Waiting | BreachingSoon | AlreadyBreached | InfoRequested | Answered
