"""Demo data for `make run`: specialties, doctors, patients, staff and questions
in every state of the 4-hour guarantee, all written for this portal.

`seed_demo(now)` is what `manage.py seed_demo` calls. It is idempotent:
- people, specialties and the staff group are found by natural key (e-mail,
  slug, name) and created when missing; what exists is left as it is, so edits
  made in the admin survive a restart;
- a demo question is found by patient + title. Its times are relative to the
  moment it is seeded, so a question nobody has touched (same status, same
  claim, no new replies) whose SLA state has drifted away from the one it
  demonstrates (an "on track" example seeded yesterday is breached by now) is
  moved back to it. A question someone has worked on has "moved on" and is
  never reset.
- one question breaches on purpose a few minutes after seeding (see
  `BreachingSoon`), so every `make run` shows the sweep warn and escalate
  (and, since issue 14, apologise to the patient and record their credit);
- one open question has already breached and been swept (`AlreadyBreached`):
  its patient's page shows the apology notice and the credit at once. Late
  answers carry the credit the sweep would have recorded for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from articles.demo import seed_articles
from consultations import credits, sla
from consultations.access import MEDICAL_RECORD_PERMISSION, clinical_staff_group
from consultations.models import (
    BreachCredit,
    DoctorProfile,
    DutyPeriod,
    Escalation,
    EscalationLevel,
    Question,
    QuestionStatus,
    Reply,
    ReplyKind,
    Specialty,
)
from consultations.red_flags import find_red_flags

DEMO_PASSWORD = "portal-demo"  # noqa: S105 - the published demo logins, printed by `make run`

PATIENT_EMAIL = "patient@example.com"
DOCTOR_EMAIL = "doctor@example.com"
STAFF_EMAIL = "staff@example.com"

# --- Specialties ------------------------------------------------------------------

SPECIALTIES = [
    (
        "general-medicine",
        "General Medicine",
        "Everyday health worries in adults: infections, tiredness, blood pressure, test results, "
        "and knowing when something needs to be seen in person.",
    ),
    (
        "dermatology",
        "Dermatology",
        "Skin, hair and nails: rashes, acne, eczema, moles that have changed, and reactions to products or medicines.",
    ),
    (
        "plastic-surgery",
        "Plastic Surgery",
        "Reconstructive and cosmetic procedures: what to expect, recovery, scars, "
        "and whether a procedure is right for you.",
    ),
    (
        "orthopedics",
        "Orthopedics",
        "Bones, joints and muscles: sprains, back and knee pain, sports injuries and getting moving after a fracture.",
    ),
    (
        "psychiatry",
        "Psychiatry",
        "Mood, anxiety, sleep and stress: a confidential first conversation about your mental health and treatment.",
    ),
    (
        "pediatrics",
        "Pediatrics",
        "Babies, children and teenagers: fevers, rashes, feeding, growth and development questions from parents.",
    ),
    (
        "gynecology",
        "Gynecology",
        "Periods, contraception, pregnancy planning, menopause and intimate health, discussed plainly and privately.",
    ),
    (
        "cardiology",
        "Cardiology",
        "Heart and circulation: palpitations, blood pressure, cholesterol, and making sense of heart test results.",
    ),
]

# --- People ----------------------------------------------------------------------


@dataclass(frozen=True)
class DemoPatient:
    email: str
    full_name: str
    age: int
    sex: str
    time_zone: str


PATIENTS = [
    DemoPatient(PATIENT_EMAIL, "Julia Nowak", 34, "female", "Europe/Warsaw"),
    DemoPatient("daniel.reyes@example.com", "Daniel Reyes", 47, "male", "America/New_York"),
    DemoPatient("priya.shah@example.com", "Priya Shah", 31, "female", "Europe/London"),
]


@dataclass(frozen=True)
class DemoDoctor:
    email: str
    full_name: str
    qualifications: str
    registration_number: str
    specialties: tuple[str, ...]
    bio: str
    is_senior: bool = False
    is_verified: bool = True
    # Weekly periods on duty (weekdays, start, end) in the doctor's zone, and the switch.
    schedule: tuple[tuple[tuple[int, ...], time, time], ...] = ()
    off_duty: bool = False

    @property
    def display_name(self) -> str:
        return f"Dr. {self.full_name}"

    @property
    def slug(self) -> str:
        return slugify(self.display_name)


EVERY_DAY = (0, 1, 2, 3, 4, 5, 6)
WEEKDAYS = (0, 1, 2, 3, 4)
# General Medicine is covered around the clock (a day doctor and a night doctor whose
# shift crosses midnight), so the ask form always has somewhere to send a patient.
# Cardiology has nobody on duty: both its verified doctors have switched off.
DAY_SHIFT = ((EVERY_DAY, time(7), time(19)),)
NIGHT_SHIFT = ((EVERY_DAY, time(19), time(7)),)
OFFICE_HOURS = ((WEEKDAYS, time(8), time(16)),)
WEEKENDS = (((5, 6), time(9), time(17)),)

DOCTORS = [
    DemoDoctor(
        DOCTOR_EMAIL,
        "Nora Whitfield",
        "MD, specialist in family medicine; diploma in practical dermatology",
        "MED-2011-40718",
        ("general-medicine", "dermatology"),
        "Nora has worked in family practice for twelve years and runs a weekly skin clinic. She likes to explain "
        "the reason behind every recommendation and is always clear about when a problem needs to be seen in "
        "person.",
        schedule=DAY_SHIFT,
    ),
    DemoDoctor(
        "tomasz.wren@example.com",
        "Tomasz Wren",
        "MD, PhD, specialist in internal medicine and cardiology",
        "MED-2003-11592",
        ("general-medicine", "cardiology"),
        "Tomasz leads the general medicine team. He spent fifteen years on hospital medical wards, where he "
        "developed a special interest in high blood pressure and heart rhythm problems.",
        is_senior=True,
        schedule=OFFICE_HOURS,
        off_duty=True,
    ),
    DemoDoctor(
        "amara.okafor@example.com",
        "Amara Okafor",
        "MD, specialist in dermatology and dermatologic surgery",
        "MED-2006-27364",
        ("dermatology", "plastic-surgery"),
        "Amara treats skin conditions of every kind and performs skin surgery, from mole removal to scar "
        "revision. Patients value her unhurried explanations and practical skin-care plans.",
        is_senior=True,
        schedule=OFFICE_HOURS,
    ),
    DemoDoctor(
        "lucas.moreau@example.com",
        "Lucas Moreau",
        "MD, specialist in orthopedics and traumatology",
        "MED-2012-55021",
        ("orthopedics",),
        "Lucas looks after sports injuries and joint pain. A keen amateur cyclist, he focuses on getting people "
        "moving again safely, with exercises they can start at home.",
        schedule=((WEEKDAYS + (5,), time(10), time(18)),),
    ),
    DemoDoctor(
        "ines.carvalho@example.com",
        "Inês Carvalho",
        "MD, specialist in psychiatry; accredited cognitive behavioural therapist",
        "MED-2010-38840",
        ("psychiatry",),
        "Inês works with adults living with anxiety, low mood and sleep problems. She believes a first question "
        "deserves a thoughtful, non-judgemental answer and a clear next step.",
        schedule=NIGHT_SHIFT,
    ),
    DemoDoctor(
        "samuel.adeyemi@example.com",
        "Samuel Adeyemi",
        "MD, specialist in pediatrics",
        "MED-2014-61207",
        ("pediatrics", "general-medicine"),
        "Samuel has cared for children from newborns to teenagers in hospital and community clinics. Parents "
        "appreciate his calm advice on fevers, rashes and feeding, and his honesty about when a child should be "
        "seen the same day.",
        schedule=NIGHT_SHIFT,
    ),
    DemoDoctor(
        "hanna.berg@example.com",
        "Hanna Berg",
        "MD, specialist in obstetrics and gynecology",
        "MED-2009-20455",
        ("gynecology",),
        "Hanna has spent her career in women's health, from contraception and cycle problems to pregnancy "
        "planning and menopause. She answers frankly and without embarrassment.",
        schedule=OFFICE_HOURS,
    ),
    # The editorial board's second specialists: every article is reviewed by a doctor of
    # its own specialty (articles.demo), so each specialty with articles has two. They
    # answer questions too, at the weekend; the cardiologist is on leave, so Cardiology
    # still has nobody on duty.
    DemoDoctor(
        "elena.vasquez@example.com",
        "Elena Vasquez",
        "MD, specialist in plastic, reconstructive and aesthetic surgery",
        "MED-2008-31276",
        ("plastic-surgery",),
        "Elena operates on eyelids, breasts and scars after injury or cancer surgery. She sits on the editorial "
        "board for plastic surgery and makes sure every article is frank about risks and recovery times.",
        schedule=WEEKENDS,
    ),
    DemoDoctor(
        "jonas.lindqvist@example.com",
        "Jonas Lindqvist",
        "MD, specialist in orthopedic surgery and sports medicine",
        "MED-2007-44910",
        ("orthopedics",),
        "Jonas treats back, knee and ankle problems in runners and desk workers alike. He reviews the "
        "orthopedics articles and checks that every exercise in them is safe to start at home.",
        schedule=WEEKENDS,
    ),
    DemoDoctor(
        "maya.rosen@example.com",
        "Maya Rosen",
        "MD, specialist in psychiatry; specialist in sleep medicine",
        "MED-2005-19833",
        ("psychiatry",),
        "Maya runs a sleep clinic and sees adults with depression and anxiety. She reviews the mental health "
        "articles with an eye on clear, stigma-free language and on when to seek help urgently.",
        schedule=WEEKENDS,
    ),
    DemoDoctor(
        "clara.dubois@example.com",
        "Clara Dubois",
        "MD, specialist in pediatrics and pediatric infectious diseases",
        "MED-2010-52148",
        ("pediatrics",),
        "Clara has looked after sick children on hospital wards and in emergency departments. She reviews the "
        "articles for parents and checks every dose and every warning sign against current guidance.",
        schedule=WEEKENDS,
    ),
    DemoDoctor(
        "leila.haddad@example.com",
        "Leila Haddad",
        "MD, specialist in obstetrics and gynecology",
        "MED-2012-27605",
        ("gynecology",),
        "Leila works in a hospital gynecology clinic with a special interest in endometriosis and period pain. "
        "She reviews the women's health articles.",
        schedule=WEEKENDS,
    ),
    DemoDoctor(
        "rafael.costa@example.com",
        "Rafael Costa",
        "MD, specialist in cardiology; fellow in heart rhythm disorders",
        "MED-2004-16342",
        ("cardiology",),
        "Rafael looks after people with high blood pressure and heart rhythm problems, and reviews the "
        "cardiology articles. He is on research leave this term and answers no questions until he is back.",
        schedule=OFFICE_HOURS,
        off_duty=True,
    ),
    DemoDoctor(
        "piotr.zielinski@example.com",
        "Piotr Zieliński",
        "MD, specialist in cardiology",
        "MED-2016-70381",
        ("cardiology",),
        "Piotr joins the cardiology team as soon as his registration has been checked.",
        is_verified=False,
        schedule=OFFICE_HOURS,
    ),
]

STAFF_NAME = "Sam Ortega"

# --- What each demo question demonstrates -------------------------------------------


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
    phase: float = 0.5
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
        return {
            "status": self.status,
            "submitted_at": submitted_at,
            "due_at": due_at,
            **_running_clock(submitted_at, due_at),
            "is_follow_up": False,
            **_NOT_ESCALATED,
            "claimed_at": submitted_at + min(elapsed / 3, timedelta(minutes=20)) if self.claimed_by else None,
        }

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

    warn_in: timedelta = timedelta(minutes=1)
    due_in: timedelta = timedelta(minutes=3)
    claimant = None
    repeats = True

    @property
    def status(self) -> str:
        return QuestionStatus.OPEN

    def fields(self, now: datetime, is_urgent: bool) -> dict:
        due_at = now + self.due_in
        window = (self.due_in - self.warn_in) / (1 - settings.SLA_WARN_FRACTION)
        submitted_at = due_at - window
        return {
            "status": self.status,
            "submitted_at": submitted_at,
            "due_at": due_at,
            **_running_clock(submitted_at, due_at),
            "is_follow_up": False,
            **_NOT_ESCALATED,
            "claimed_at": None,
        }

    def replies(self, now: datetime, is_urgent: bool) -> list[PlannedReply]:
        return []

    def drifted(self, question: Question, now: datetime) -> bool:
        return question.warned_at is not None or question.clock_warn_at is None or now >= question.clock_warn_at


@dataclass(frozen=True)
class AlreadyBreached:
    """Open, unclaimed, its guaranteed time `late` ago, and the sweep has been: warned,
    breached (a senior doctor alerted), the breach credit recorded. It stays in this
    state (the sweep adds the lead escalation one window after the due time)."""

    late: timedelta = timedelta(minutes=40)
    claimant = None
    repeats = False

    @property
    def status(self) -> str:
        return QuestionStatus.OPEN

    def fields(self, now: datetime, is_urgent: bool) -> dict:
        due_at = now - self.late
        submitted_at = due_at - sla.answer_window(is_urgent)
        return {
            "status": self.status,
            "submitted_at": submitted_at,
            "due_at": due_at,
            **_running_clock(submitted_at, due_at),
            "is_follow_up": False,
            **_NOT_ESCALATED,
            "warned_at": sla.warn_at_for(submitted_at, due_at),
            "breached_at": due_at + SWEEP_LAG,
            "claimed_at": None,
        }

    def replies(self, now: datetime, is_urgent: bool) -> list[PlannedReply]:
        return []

    def drifted(self, question: Question, now: datetime) -> bool:
        return False  # a breach, once recorded, stays recorded


# How long after a due time the demo's history says the sweep recorded the breach.
SWEEP_LAG = timedelta(seconds=30)


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
        return {
            "status": self.status,
            "submitted_at": submitted_at,
            "due_at": due_at,
            **_running_clock(submitted_at, due_at),
            "clock_paused_at": asked_at,
            "is_follow_up": False,
            **_NOT_ESCALATED,
            "claimed_at": asked_at - min(self.asked_after / 2, timedelta(minutes=15)),
        }

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


@dataclass(frozen=True)
class DemoQuestion:
    patient: str
    specialty: str
    title: str
    description: str
    age: int
    sex: str
    plan: Waiting | BreachingSoon | AlreadyBreached | InfoRequested | Answered
    medical_history: str = ""
    current_medication: str = ""

    @property
    def red_flags(self) -> list[str]:
        return find_red_flags(self.title, self.description, self.medical_history)


DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
DANIEL = "daniel.reyes@example.com"
PRIYA = "priya.shah@example.com"

QUESTIONS = [
    # --- Already breached and swept: the patient's page shows the apology and the credit (issue 14).
    DemoQuestion(
        PATIENT_EMAIL,
        "orthopedics",
        "Stiff shoulder that will not lift above my head",
        "For about a month my left shoulder has been stiff and aches at night, especially when I lie on it. I can "
        "no longer lift my arm above my head to reach the top shelf or dry my hair. I did not injure it. Is this a "
        "frozen shoulder, and should I rest it or keep moving it?",
        34,
        "female",
        AlreadyBreached(),
        current_medication="Ibuprofen now and then for the ache.",
    ),
    # --- The demo doctor's queue (General Medicine and Dermatology) ----------------
    DemoQuestion(
        PATIENT_EMAIL,
        "dermatology",
        "Itchy ring-shaped patch on my forearm",
        "About ten days ago I noticed a round, slightly raised patch on the inside of my left forearm. It is about "
        "2 cm across, redder at the edge and paler in the middle, and it itches most in the evening. It has grown "
        "a little since I first saw it. We adopted a kitten last month. A moisturiser made no difference. Could "
        "this be ringworm, and is there something I can use at home?",
        34,
        "female",
        Waiting(sla.ON_TRACK, 0.3),
        medical_history="Mild hay fever in spring.",
        current_medication="Cetirizine 10 mg when needed.",
    ),
    DemoQuestion(
        DANIEL,
        "general-medicine",
        "Tired all the time for the last two months",
        "Since early autumn I have felt drained most days, even after eight hours of sleep. I started a new job "
        "with a longer commute, so stress may be part of it, but I also feel colder than the people around me and "
        "my skin has become dry. I have put on about three kilos without eating more. Which blood tests would be "
        "sensible to ask for, and is there anything I can do in the meantime?",
        47,
        "male",
        Waiting(sla.ON_TRACK, 0.6, claimed_by=DOCTOR_EMAIL),
        medical_history="Appendix removed at 19. Otherwise well.",
        current_medication="None.",
    ),
    DemoQuestion(
        PRIYA,
        "general-medicine",
        "Sore throat and swollen glands for five days",
        "My throat has been sore for five days and the glands under my jaw are tender and swollen. I had a "
        "temperature of 38.2 °C on the first two days; it is normal now. Swallowing is uncomfortable but I can eat "
        "and drink. No cough. I have a work trip next week and would like to know whether this needs antibiotics "
        "or will settle on its own.",
        31,
        "female",
        Waiting(sla.AT_RISK, 0.3),
    ),
    DemoQuestion(
        DANIEL,
        "dermatology",
        "A mole on my back looks different",
        "My partner noticed that a mole below my right shoulder blade looks darker than it used to and has an "
        "uneven edge on one side. It is roughly 7 mm across. It does not hurt, itch or bleed. I have a lot of "
        "moles and was badly sunburnt a few times as a teenager. How soon should I have it looked at, and what "
        "will the doctor check?",
        47,
        "male",
        Waiting(sla.AT_RISK, 0.6, claimed_by=DOCTOR_EMAIL),
    ),
    DemoQuestion(
        PRIYA,
        "dermatology",
        "Hand eczema flaring despite steroid cream",
        "I have had eczema on my hands since I started working as a nurse two years ago. Over the past three weeks "
        "it has become much worse: the skin on my fingers is cracked and weepy, and it stings when I use hand "
        "sanitiser. I have used hydrocortisone 1% twice a day for two weeks with little change. What else can I "
        "try, and is it all right to keep working?",
        31,
        "female",
        Waiting(sla.BREACHED, 0.5),
        medical_history="Eczema as a child. Asthma, well controlled.",
        current_medication="Hydrocortisone 1% cream; salbutamol inhaler when needed.",
    ),
    DemoQuestion(
        PATIENT_EMAIL,
        "general-medicine",
        "My father's blood pressure is higher at home",
        "My father is 68 and was told at his last check-up that his blood pressure was a little high. He has been "
        "measuring it at home for two weeks: most morning readings are around 150/95 and evening ones about "
        "140/90. He feels well, has no headaches and walks the dog every day. Are these numbers worth acting on "
        "before his next appointment in two months, and how should he measure to get reliable readings?",
        68,
        "male",
        Waiting(sla.BREACHED, 0.2, claimed_by=DOCTOR_EMAIL),
        medical_history="Type 2 diabetes diagnosed last year, managed with diet.",
        current_medication="None.",
    ),
    DemoQuestion(
        DANIEL,
        "general-medicine",
        "Tightness in my chest when I climb the stairs",
        "For the past week I have had chest pain when I walk up the two flights of stairs to my flat: a tight, "
        "heavy feeling in the middle of my chest that spreads into my left arm. It goes after a few minutes of "
        "rest. This morning it came on while I was sitting at my desk. I smoke about ten cigarettes a day. "
        "Should I be worried?",
        47,
        "male",
        Waiting(sla.AT_RISK, 0.4),
        current_medication="None.",
    ),
    DemoQuestion(
        PRIYA,
        "general-medicine",
        "Earache since swimming at the weekend",
        "My right ear started aching two days after I went swimming at the weekend. It hurts when I touch the "
        "outer ear or pull on the lobe, it feels blocked, and there is a little clear discharge. No fever. I have "
        "a club swimming gala on Saturday. What can I do to help it settle, and should I stay out of the pool?",
        31,
        "female",
        BreachingSoon(),
    ),
    DemoQuestion(
        PATIENT_EMAIL,
        "general-medicine",
        "Afternoon headaches after working at the computer",
        "For about a month I have had a dull headache across my forehead most afternoons, usually after several "
        "hours at the computer. Paracetamol helps, but I am now taking it four or five days a week and would "
        "rather not. My eyes often feel tired too. Could this be my screen, my posture, or something else?",
        34,
        "female",
        InfoRequested(
            DOCTOR_EMAIL,
            submitted_ago=2 * HOUR,
            asked_after=40 * MINUTE,
            body="Thank you for describing this so clearly. Before I answer, a few questions that will help me "
            "give you useful advice:\n\n"
            "- How much water and coffee or tea do you drink on a typical working day?\n"
            "- Do the headaches also come on at weekends or on holiday?\n"
            "- When did you last have an eye test, and do you wear glasses for the screen?\n"
            "- Have you noticed any change in your vision, or anything that makes the headache suddenly much "
            "stronger, such as bending, coughing or lying down?\n\n"
            "Reply here whenever you are ready; your question stays with me.",
        ),
    ),
    DemoQuestion(
        PATIENT_EMAIL,
        "dermatology",
        "Red, flaky patches at the sides of my nose",
        "For a few weeks I have had red, slightly greasy, flaky skin at the sides of my nose and between my "
        "eyebrows. It gets worse when I am stressed or when it is cold outside. Moisturiser makes it look better "
        "for an hour, then it flakes again. What could it be, and what can I use?",
        34,
        "female",
        Answered(
            DOCTOR_EMAIL,
            submitted_ago=DAY + 5 * HOUR,
            answered_after=95 * MINUTE,
            body="Thank you for the detailed description, it helps a lot. Red, slightly greasy, flaky skin at the "
            "sides of the nose and between the eyebrows that flares with stress and cold weather is very typical "
            "of seborrhoeic dermatitis. It is common, harmless and not contagious, and it tends to come and go "
            "rather than disappear for good.\n\n"
            "What usually helps:\n\n"
            "- Wash the area once a day with a gentle, fragrance-free cleanser, without scrubbing.\n"
            "- An anti-yeast cream such as ketoconazole 2%, applied thinly once or twice a day for two to four "
            "weeks, settles most flares. Your pharmacist can tell you what is available where you live.\n"
            "- Once it has cleared, using the cream once a week helps keep it away.\n\n"
            "Please see a doctor in person if your eyelids become sore or swollen, if it has not improved after "
            "four weeks of treatment, or if the skin becomes painful, crusted or weepy. I hope it settles quickly.",
            follow_up="Thank you, the cream has already helped a lot around my nose. I have now noticed similar "
            "flaky patches on my scalp near the hairline and behind my ears. Can I use the same cream there, or is "
            "there something better for the scalp?",
        ),
    ),
    # --- Open questions in the other specialties ------------------------------------
    DemoQuestion(
        PRIYA,
        "pediatrics",
        "Rash on my daughter's cheeks after a cold",
        "My daughter is four. She had a runny nose and a slight temperature last week and was back to her usual "
        "self after three days. Yesterday both cheeks went bright red, as if she had been slapped, and today there "
        "is a lacy pink rash on her arms. She is eating, playing and sleeping normally. Is this contagious, and "
        "should she stay home from nursery?",
        4,
        "female",
        Waiting(sla.ON_TRACK, 0.5),
    ),
    DemoQuestion(
        DANIEL,
        "orthopedics",
        "Shoulder pain when I lift my arm above my head",
        "For about six weeks my right shoulder has ached when I reach up to a high shelf or put on a jacket. The "
        "pain is on the outside of the upper arm and it wakes me if I lie on that side. I can still lift the arm "
        "fully, it just hurts between shoulder and head height. I started painting the house two months ago. "
        "What is likely going on, and which exercises are safe?",
        47,
        "male",
        Waiting(sla.BREACHED, 0.7),
    ),
    DemoQuestion(
        PATIENT_EMAIL,
        "psychiatry",
        "Feeling on edge before every work meeting",
        "Over the last few months I have become very anxious before meetings at work: my heart races, my hands "
        "shake and I rehearse what I will say for hours beforehand. Afterwards I go over everything I said. It is "
        "starting to affect my sleep. I am otherwise coping, seeing friends and enjoying weekends. Is this "
        "something that therapy can help with, and where would I start?",
        34,
        "female",
        Waiting(sla.AT_RISK, 0.5, claimed_by="ines.carvalho@example.com"),
    ),
    DemoQuestion(
        PRIYA,
        "gynecology",
        "Irregular periods since I stopped breastfeeding",
        "I stopped breastfeeding my son four months ago. My periods came back but they are irregular: the gap "
        "between them has been 24, 41 and 33 days. They are not heavy or painful. We might try for a second child "
        "next year. Is this normal after breastfeeding, and when should I have it checked?",
        31,
        "female",
        Waiting(sla.ON_TRACK, 0.2),
    ),
    DemoQuestion(
        DANIEL,
        "cardiology",
        "My cholesterol result came back high",
        "A routine blood test showed total cholesterol of 6.8 mmol/L and LDL of 4.6. My doctor mentioned "
        "tablets, but I would prefer to try changing my diet first. My father needed a heart bypass at 61. How "
        "much difference can diet and exercise make, and how long should I try before deciding on medication?",
        47,
        "male",
        Waiting(sla.AT_RISK, 0.7),
    ),
    DemoQuestion(
        PATIENT_EMAIL,
        "plastic-surgery",
        "Options for a raised scar on my shoulder",
        "I had a cyst removed from my left shoulder a year ago. The scar is now raised, pink and about 3 cm long, "
        "and it catches on my bra strap. Silicone sheets helped a little. What are the options for making it "
        "flatter and less noticeable, and is there a risk it comes back bigger if it is operated on?",
        34,
        "female",
        Waiting(sla.ON_TRACK, 0.8),
    ),
    # --- Answered questions: the guarantee met and missed ------------------------
    DemoQuestion(
        PATIENT_EMAIL,
        "general-medicine",
        "Flu vaccine while breastfeeding",
        "I am breastfeeding my seven-month-old and my employer is offering flu vaccinations next week. Is it safe "
        "for me to have the vaccine, and could it affect my baby?",
        34,
        "female",
        Answered(
            DOCTOR_EMAIL,
            submitted_ago=2 * DAY + 3 * HOUR,
            answered_after=70 * MINUTE,
            body="Yes, it is safe to have the flu vaccine while you are breastfeeding, and it is a good idea. The "
            "injected flu vaccine contains no live virus, so it cannot give you or your baby flu. Breastfeeding "
            "can simply carry on as usual, before and after the injection.\n\n"
            "There is a bonus: the antibodies your body makes can pass into your milk and may give your baby some "
            "extra protection over the winter.\n\n"
            "You may have a sore arm or feel a little tired for a day or two; that is normal and passes on its "
            "own. Your baby can have their own flu vaccine later, according to the schedule where you live. I hope "
            "the two of you stay well this winter.",
            rating=5,
            rating_comment="Clear and reassuring, thank you. I booked my appointment straight away.",
        ),
    ),
    DemoQuestion(
        DANIEL,
        "general-medicine",
        "Cough still hanging on three weeks after a cold",
        "I had a bad cold three weeks ago. The runny nose has gone but I still have a dry, tickly cough, worse at "
        "night and when I talk a lot. I feel fine otherwise and have no temperature. How long can this last, and "
        "when should I worry?",
        47,
        "male",
        Answered(
            "tomasz.wren@example.com",
            submitted_ago=3 * DAY + 2 * HOUR,
            answered_after=5 * HOUR + 20 * MINUTE,
            body="I am sorry this has dragged on, and I apologise that our answer reached you later than we "
            "promised. A dry, tickly cough that outlasts a cold by several weeks is very common: the airways stay "
            "sensitive for a while after a viral infection, and a post-viral cough can last up to eight weeks "
            "while everything else has recovered.\n\n"
            "Things that often help: honey in warm water or tea, sucking lozenges, sipping water when you talk a "
            "lot, and raising your head a little at night. Because you smoke, this is also a good moment to cut "
            "down or stop; your pharmacist can help with that.\n\n"
            "Please see a doctor in person if the cough is still there after eight weeks in total, if you cough up "
            "blood, lose weight without trying, develop a fever, or become breathless. Otherwise I expect it to "
            "fade over the coming weeks.",
        ),
    ),
    DemoQuestion(
        DANIEL,
        "cardiology",
        "Occasional skipped heartbeats in the evening",
        "A few evenings a week, when I am sitting on the sofa, I feel a thud in my chest, as if my heart skipped a "
        "beat and then caught up. It lasts a second. I do not feel dizzy or faint. I drink three or four coffees a "
        "day. Is this dangerous?",
        47,
        "male",
        Answered(
            "tomasz.wren@example.com",
            submitted_ago=6 * DAY + 4 * HOUR,
            answered_after=2 * HOUR + 10 * MINUTE,
            body="What you describe sounds like ectopic beats: an extra beat comes a little early, the heart pauses "
            "for a moment, and the next beat feels stronger, which is the thud you notice. They are very common, "
            "are felt most when we are resting quietly in the evening, and in a healthy heart they are harmless.\n\n"
            "Caffeine, alcohol, tiredness and stress all make them more frequent. Try cutting down to one or two "
            "coffees a day for a few weeks and see whether you notice a difference.\n\n"
            "Because you are 47 and smoke, I would still suggest a routine check with your own doctor: a blood "
            "pressure reading, an ECG and basic blood tests. Seek help urgently if the palpitations last more than "
            "a few minutes, or come with dizziness, fainting or pain.",
            rating=4,
            rating_comment="Helpful. I have cut down on coffee and it is already better.",
            closed=True,
        ),
    ),
    DemoQuestion(
        PRIYA,
        "pediatrics",
        "Temperature after my son's vaccinations",
        "My son is 14 months old and had his routine vaccinations yesterday. Last night his temperature went up to "
        "38.3 °C and he was grizzly, but he is feeding well and has wet nappies. The injection site on his thigh "
        "is a little red. Is this normal, and can I give him paracetamol?",
        1,
        "male",
        Answered(
            "samuel.adeyemi@example.com",
            submitted_ago=9 * DAY,
            answered_after=50 * MINUTE,
            body="This is a very normal reaction, and you are doing all the right things by keeping an eye on him. "
            "A mild temperature, grizzliness and a small red patch where the injection went in are common in the "
            "day or two after vaccinations. They show his immune system is responding.\n\n"
            "You can give paracetamol at the dose for his age printed on the pack if he seems uncomfortable. Keep "
            "offering drinks, dress him in light clothes, and let him rest.\n\n"
            "Please contact a doctor the same day if his temperature reaches 39 °C or more, if he becomes floppy, "
            "unusually sleepy or hard to wake, refuses feeds, has far fewer wet nappies, or develops a rash that "
            "does not fade when you press a glass against it. Otherwise expect him to be back to himself within "
            "a day or two.",
            rating=5,
            rating_comment="So reassuring at 2 in the morning. Thank you, doctor!",
        ),
    ),
    DemoQuestion(
        PATIENT_EMAIL,
        "gynecology",
        "Spotting between periods since starting the pill",
        "I started a combined contraceptive pill seven weeks ago. Since then I have had light spotting on and off "
        "between periods. I take it at the same time every day and have not missed any. Should I change pills?",
        34,
        "female",
        Answered(
            "hanna.berg@example.com",
            submitted_ago=12 * DAY + 6 * HOUR,
            answered_after=HOUR + 45 * MINUTE,
            body="Light spotting in the first few months of a new pill is one of its most common side effects, "
            "and it usually settles by itself as your body adjusts, typically within three cycles. Taking it at "
            "the same time every day, as you are, is exactly right.\n\n"
            "I would suggest staying on this pill for at least three months before deciding to change. If the "
            "spotting continues after that, a pill with a different balance of hormones often helps.\n\n"
            "Please book a check with your doctor if the bleeding becomes heavy, happens after sex, comes with "
            "pelvic pain or unusual discharge, or if you might be pregnant. It is also worth making sure your "
            "cervical screening is up to date.",
        ),
    ),
    DemoQuestion(
        DANIEL,
        "orthopedics",
        "Knee pain since I started running",
        "I took up running two months ago and now run 5 km three times a week. For the last two weeks I have had "
        "an ache around the front of my right kneecap, worse going downstairs and after sitting through a film. "
        "There is no swelling. Do I need to stop running?",
        47,
        "male",
        Answered(
            "lucas.moreau@example.com",
            submitted_ago=20 * DAY,
            answered_after=4 * HOUR + 35 * MINUTE,
            body="Thank you for your patience, and I am sorry our answer took longer than our promised four hours. "
            "An ache around the kneecap that is worse on stairs and after sitting for a long time is typical of "
            "patellofemoral pain, sometimes called runner's knee. It is very common when mileage goes up quickly, "
            "and it responds well to the right exercises.\n\n"
            "You do not need to stop completely. Cut back to a distance that causes no more than mild discomfort "
            "during and after the run, run on flat ground, and build up by no more than about ten percent a "
            "week. Strengthening the thigh and hip muscles helps most: wall sits, step-ups and side-lying leg "
            "raises, most days.\n\n"
            "See a physiotherapist or doctor if the knee swells, locks or gives way, or if it is not improving "
            "after six weeks of this plan.",
            rating=4,
            rating_comment="Good exercises. The answer was a bit late but worth it.",
        ),
    ),
    DemoQuestion(
        PRIYA,
        "psychiatry",
        "Trouble falling asleep since I changed shifts",
        "I moved from day shifts to a rotating pattern two months ago. On the nights I can sleep, I lie awake for "
        "two hours or more, and I feel foggy at work. I do not want to rely on sleeping tablets. What can I do?",
        31,
        "female",
        Answered(
            "ines.carvalho@example.com",
            submitted_ago=15 * DAY + 2 * HOUR,
            answered_after=2 * HOUR + 30 * MINUTE,
            body="Rotating shifts are genuinely hard on sleep, so please do not blame yourself. Your body clock "
            "is being asked to move faster than it can. The good news is that there is a lot you can do without "
            "tablets.\n\n"
            "- Protect your sleep window: the same wind-down routine before every sleep, whatever the time.\n"
            "- Make the bedroom dark and cool; blackout blinds and an eye mask help after night shifts.\n"
            "- Bright light at the start of a shift, sunglasses on the way home after nights.\n"
            "- No caffeine in the six hours before you plan to sleep.\n"
            "- If you have been awake for about 20 minutes, get up, do something calm in dim light, and go back "
            "when sleepy.\n\n"
            "If your sleep has not improved in a month, a short course of cognitive behavioural therapy for "
            "insomnia works well, also for shift workers. Talk to your doctor sooner if low mood starts to creep "
            "in.",
            closed=True,
        ),
    ),
    DemoQuestion(
        PRIYA,
        "plastic-surgery",
        "Recovery after upper eyelid surgery",
        "My mother is 58 and is booked for upper eyelid surgery because her lids are starting to hang over her "
        "eyelashes. She lives alone. How long will she need help at home, and when will she be able to read and "
        "drive again?",
        58,
        "female",
        Answered(
            "amara.okafor@example.com",
            submitted_ago=25 * DAY,
            answered_after=HOUR + 20 * MINUTE,
            body="It is kind of you to plan ahead for her. Upper eyelid surgery is usually done under local "
            "anaesthetic as a day case, and recovery is fairly gentle.\n\n"
            "- First two days: swelling and bruising are at their peak. Cold compresses and sleeping propped up "
            "help. It is worth having someone with her for the first night and ideally the next day.\n"
            "- Reading and screens: short periods from the second or third day, as comfort allows; the eyes may "
            "feel dry or tired.\n"
            "- Stitches usually come out after five to seven days.\n"
            "- Driving: once her vision is clear, she can close her eyes fully and she no longer needs pain "
            "relief, usually after one to two weeks. Her surgeon will confirm.\n\n"
            "She should contact the clinic urgently if she has increasing pain, bleeding that does not stop with "
            "gentle pressure, or any change in her vision.",
            rating=5,
        ),
    ),
]

# --- Seeding -----------------------------------------------------------------------


@dataclass
class SeedResult:
    created: dict[str, int] = field(default_factory=dict)
    questions_created: int = 0
    questions_refreshed: int = 0
    questions_kept: int = 0
    breaching_soon: Question | None = None
    articles: int = 0

    def count(self, what: str) -> None:
        self.created[what] = self.created.get(what, 0) + 1


def seed_specialties(result: SeedResult) -> dict[str, Specialty]:
    specialties = {}
    for order, (slug, name, description) in enumerate(SPECIALTIES, start=1):
        specialty, created = Specialty.objects.get_or_create(
            slug=slug, defaults={"name": name, "description": description, "sort_order": order * 10}
        )
        if created:
            result.count("specialties")
        specialties[slug] = specialty
    return specialties


def _user(result: SeedResult, email: str, **defaults):
    user, created = get_user_model().objects.get_or_create(email=email, defaults=defaults)
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
        result.count("users")
    return user


def seed_patients(result: SeedResult) -> dict:
    return {
        p.email: _user(result, p.email, full_name=p.full_name, age=p.age, sex=p.sex, time_zone=p.time_zone)
        for p in PATIENTS
    }


def seed_doctors(result: SeedResult, specialties: dict[str, Specialty]) -> dict[str, DoctorProfile]:
    doctors = {}
    for spec in DOCTORS:
        user = _user(result, spec.email, full_name=spec.full_name)
        profile, created = DoctorProfile.objects.get_or_create(
            user=user,
            defaults={
                "display_name": spec.display_name,
                "slug": spec.slug,
                "qualifications": spec.qualifications,
                "registration_number": spec.registration_number,
                "bio": spec.bio,
                "is_verified": spec.is_verified,
                "is_senior": spec.is_senior,
            },
        )
        if created:
            profile.specialties.set([specialties[slug] for slug in spec.specialties])
            result.count("doctors")
        _seed_duty(result, profile, spec)
        doctors[spec.email] = profile
    return doctors


def _seed_duty(result: SeedResult, profile: DoctorProfile, spec: DemoDoctor) -> None:
    """The doctor's weekly schedule and switch, once: a doctor with any period (seeded
    or entered by staff) is left as it is."""
    if not spec.schedule or profile.duty_periods.exists():
        return
    DutyPeriod.objects.bulk_create(
        DutyPeriod(doctor=profile, weekday=weekday, start=start, end=end)
        for weekdays, start, end in spec.schedule
        for weekday in weekdays
    )
    if spec.off_duty:
        DoctorProfile.objects.filter(pk=profile.pk).update(off_duty=True)
    result.count("duty schedules")


def seed_staff(result: SeedResult):
    """The operations team's login: a superuser, in the SLA staff group so that
    group's permissions (and its breach e-mails) are shown working, and in the
    clinical staff group: reading patients' records is granted explicitly, never
    by staff status (the SLA group does not carry it)."""
    staff = _user(result, STAFF_EMAIL, full_name=STAFF_NAME, is_staff=True, is_superuser=True)
    group, created = Group.objects.get_or_create(name=settings.SLA_STAFF_GROUP)
    if created:
        result.count("groups")
    missing = (
        Permission.objects.filter(content_type__app_label__in=("consultations", "articles"))
        .exclude(group=group)
        .exclude(codename=MEDICAL_RECORD_PERMISSION.partition(".")[2])
    )
    group.permissions.add(*missing)
    staff.groups.add(group, clinical_staff_group())
    return staff


def _untouched(question: Question, spec: DemoQuestion, doctors: dict[str, DoctorProfile], now: datetime) -> bool:
    """Still exactly as seeded: nobody answered, claimed, released or wrote."""
    claimant = doctors[spec.plan.claimant] if spec.plan.claimant else None
    planned_replies = len(spec.plan.replies(now, question.is_urgent))
    return (
        question.status == spec.plan.status
        and question.claimed_by_id == (claimant.pk if claimant else None)
        and question.replies.count() == planned_replies
    )


def _history_escalations(question: Question, spec: DemoQuestion, doctors: dict, staff_emails: list[str]) -> None:
    """What the sweep recorded while a first answer was late (answered and already-breached demo questions)."""
    if isinstance(spec.plan, AlreadyBreached):
        _history_breach(question, spec, doctors, staff_emails)
        return
    if not isinstance(spec.plan, Answered):
        return
    warn_at = sla.warn_at_for(question.submitted_at, question.due_at)
    if question.first_answered_at >= warn_at:
        Escalation.objects.get_or_create(
            question=question,
            level=EscalationLevel.AT_RISK,
            clock_due_at=question.due_at,
            defaults={"created_at": warn_at, "recipients": [spec.plan.doctor]},
        )
    if question.first_answered_at > question.due_at:
        seniors = [d.user.email for d in doctors.values() if d.is_senior and spec.specialty in _slugs(d)]
        Escalation.objects.get_or_create(
            question=question,
            level=EscalationLevel.BREACHED,
            clock_due_at=question.due_at,
            defaults={"created_at": question.due_at, "recipients": sorted(set(staff_emails + seniors))},
        )
        _history_credit(question, question.due_at)


def _history_breach(question: Question, spec: DemoQuestion, doctors: dict, staff_emails: list[str]) -> None:
    """An open question the sweep has already warned about and breached: its escalations and credit."""
    specialty_doctors = [d.user.email for d in doctors.values() if d.is_verified and spec.specialty in _slugs(d)]
    seniors = [d.user.email for d in doctors.values() if d.is_senior and spec.specialty in _slugs(d)]
    Escalation.objects.get_or_create(
        question=question,
        level=EscalationLevel.AT_RISK,
        clock_due_at=question.clock_due_at,
        defaults={"created_at": question.warned_at, "recipients": sorted(specialty_doctors)},
    )
    Escalation.objects.get_or_create(
        question=question,
        level=EscalationLevel.BREACHED,
        clock_due_at=question.clock_due_at,
        defaults={"created_at": question.breached_at, "recipients": sorted(set(staff_emails + seniors))},
    )
    _history_credit(question, question.clock_due_at)


def _history_credit(question: Question, due_at: datetime) -> None:
    """The breach credit the sweep would have recorded (consultations.credits)."""
    breached_at = question.breached_at or due_at + SWEEP_LAG
    BreachCredit.objects.get_or_create(
        question=question,
        clock_due_at=due_at,
        defaults={
            "patient_id": question.patient_id,
            "breached_at": breached_at,
            "minutes_late": credits.minutes_between(due_at, breached_at),
            "kind": credits.credit_kind(),
        },
    )


def _slugs(doctor: DoctorProfile) -> set[str]:
    return {s.slug for s in doctor.specialties.all()}


def _write_replies(question, spec, doctors, patient, now, is_urgent) -> None:
    for planned in spec.plan.replies(now, is_urgent):
        doctor = doctors[planned.doctor_email] if planned.doctor_email else None
        Reply.objects.create(
            question=question,
            author=doctor.user if doctor else patient,
            doctor=doctor,
            kind=planned.kind,
            body=planned.body,
            created_at=planned.created_at,
        )


def _create_question(spec, patient, specialties, doctors, staff_emails, now) -> Question:
    red_flags = spec.red_flags
    is_urgent = bool(red_flags)
    claimant = doctors[spec.plan.claimant] if spec.plan.claimant else None
    answered_by = doctors[spec.plan.doctor] if isinstance(spec.plan, Answered) else None
    question = Question.objects.create(
        patient=patient,
        specialty=specialties[spec.specialty],
        title=spec.title,
        description=spec.description,
        age=spec.age,
        sex=spec.sex,
        medical_history=spec.medical_history,
        current_medication=spec.current_medication,
        is_urgent=is_urgent,
        red_flags=red_flags,
        claimed_by=claimant,
        answered_by=answered_by,
        **spec.plan.fields(now, is_urgent),
    )
    _write_replies(question, spec, doctors, patient, now, is_urgent)
    _history_escalations(question, spec, doctors, staff_emails)
    return question


def _refresh_question(question: Question, spec: DemoQuestion, now: datetime) -> None:
    """Move an untouched demo question back to the moment it demonstrates."""
    Question.objects.filter(pk=question.pk).update(**spec.plan.fields(now, question.is_urgent), updated_at=now)
    planned = spec.plan.replies(now, question.is_urgent)
    for reply, plan in zip(question.replies.order_by("created_at", "pk"), planned, strict=True):
        Reply.objects.filter(pk=reply.pk).update(created_at=plan.created_at)
    question.refresh_from_db()


def seed_questions(result, patients, specialties, doctors, staff_emails, now) -> None:
    for spec in QUESTIONS:
        patient = patients[spec.patient]
        existing = list(Question.objects.filter(patient=patient, title=spec.title).order_by("-submitted_at"))
        untouched = next((q for q in existing if _untouched(q, spec, doctors, now)), None)
        if untouched is None and existing and not spec.plan.repeats:
            result.questions_kept += 1  # someone worked on it: it has moved on
            question = existing[0]
        elif untouched is None:
            question = _create_question(spec, patient, specialties, doctors, staff_emails, now)
            result.questions_created += 1
        elif spec.plan.drifted(untouched, now):
            _refresh_question(untouched, spec, now)
            question = untouched
            result.questions_refreshed += 1
        else:
            question = untouched
        if isinstance(spec.plan, BreachingSoon):
            result.breaching_soon = question


def _seed_articles(doctors: dict[str, DoctorProfile], now: datetime) -> int:
    """The articles app writes the articles; it gets our verified doctors by
    specialty, in the order of DOCTORS (the first of a specialty is its author)."""
    by_specialty: dict[str, list[DoctorProfile]] = {}
    for spec in DOCTORS:
        if spec.is_verified:
            for slug in spec.specialties:
                by_specialty.setdefault(slug, []).append(doctors[spec.email])
    return seed_articles(by_specialty, now)


def seed_demo(now: datetime | None = None) -> SeedResult:
    """Create (or bring back) the whole demo in one transaction."""
    now = now or timezone.now()
    result = SeedResult()
    with transaction.atomic():
        specialties = seed_specialties(result)
        patients = seed_patients(result)
        doctors = seed_doctors(result, specialties)
        staff = seed_staff(result)
        seed_questions(result, patients, specialties, doctors, [staff.email], now)
        result.articles = _seed_articles(doctors, now)
    return result


# --- Reporting ---------------------------------------------------------------------


def demo_questions():
    emails = [p.email for p in PATIENTS]
    return Question.objects.filter(patient__email__in=emails).select_related("specialty")


def state_counts(now: datetime) -> dict[str, int]:
    """How many demo questions are in each SLA state at `now`."""
    counts: dict[str, int] = {}
    for question in demo_questions():
        state = sla.sla_state(question, now)
        counts[state] = counts.get(state, 0) + 1
    return counts
