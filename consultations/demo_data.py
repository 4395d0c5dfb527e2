"""The demo's content, read from the data files in `consultations/demo_content/`:

- `specialties.toml`: one `[[specialty]]` each (slug, name, description), in the ask form's order;
- `people.toml`: the `[staff]` login, one `[[patient]]` and one `[[doctor]]` each, and the named
  weekly `[shifts]` a doctor's `shift` refers to;
- `questions.toml`: one `[[question]]` each, with the moment it demonstrates in `[question.plan]`
  (see consultations/demo_plans.py and the comment at the top of the file).

TOML because Python reads it without a new dependency (tomllib) and it writes long texts,
times of day and small tables plainly. Reading is strict: an unknown or missing key, a value
of the wrong type, or a reference to a specialty, patient or doctor that is not there stops
the seeding with the file and entry at fault, so nothing in the files is silently skipped.
"""

from __future__ import annotations

import tomllib
from dataclasses import MISSING, dataclass, fields
from datetime import time, timedelta
from functools import cache
from pathlib import Path
from typing import Any, get_type_hints

from django.utils.text import slugify

from consultations.demo_plans import PLANS, Plan
from consultations.red_flags import find_red_flags

CONTENT_DIR = Path(__file__).with_name("demo_content")
FILES = ("specialties.toml", "people.toml", "questions.toml")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DURATION_UNITS = ("days", "hours", "minutes", "seconds")

Schedule = tuple[tuple[tuple[int, ...], time, time], ...]


class DemoContentError(ValueError):
    """A demo data file does not say what the seeding needs; the message names the entry."""


@dataclass(frozen=True)
class DemoSpecialty:
    slug: str
    name: str
    description: str


@dataclass(frozen=True)
class DemoPatient:
    email: str
    full_name: str
    age: int
    sex: str
    time_zone: str


@dataclass(frozen=True)
class DemoStaff:
    email: str
    full_name: str


@dataclass(frozen=True)
class DemoDoctor:
    email: str
    full_name: str
    qualifications: str
    registration_number: str
    specialties: tuple[str, ...]
    bio: str
    # Weekly periods on duty (weekdays, start, end) in the doctor's zone, from its named shift.
    schedule: Schedule
    is_senior: bool = False
    is_verified: bool = True
    off_duty: bool = False

    @property
    def display_name(self) -> str:
        return f"Dr. {self.full_name}"

    @property
    def slug(self) -> str:
        return slugify(self.display_name)


@dataclass(frozen=True)
class DemoQuestion:
    patient: str
    specialty: str
    title: str
    description: str
    age: int
    sex: str
    plan: Plan
    medical_history: str = ""
    current_medication: str = ""

    @property
    def red_flags(self) -> list[str]:
        return find_red_flags(self.title, self.description, self.medical_history)


@dataclass(frozen=True)
class DemoContent:
    specialties: tuple[DemoSpecialty, ...]
    patients: tuple[DemoPatient, ...]
    staff: DemoStaff
    doctors: tuple[DemoDoctor, ...]
    questions: tuple[DemoQuestion, ...]


# --- Reading ------------------------------------------------------------------------


def read_file(name: str) -> dict[str, Any]:
    path = CONTENT_DIR / name
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise DemoContentError(f"{path}: {error}") from error


def _build(cls, values: dict[str, Any], where: str):
    """`cls(**values)`, after checking the keys and the plain types against its fields."""
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
    if unknown := sorted(set(values) - known):
        raise DemoContentError(f"{where}: unknown key(s) {', '.join(unknown)}")
    if missing := sorted(required - set(values)):
        raise DemoContentError(f"{where}: missing key(s) {', '.join(missing)}")
    for key, value in values.items():
        expected = hints[key]
        if expected in (str, int, bool) and type(value) is not expected:
            raise DemoContentError(f"{where}: {key} should be of type {expected.__name__}, not {value!r}")
        if expected is float and type(value) not in (int, float):
            raise DemoContentError(f"{where}: {key} should be a number, not {value!r}")
    return cls(**values)


def _entries(data: dict[str, Any], key: str, name: str) -> list[tuple[str, dict]]:
    entries = data.get(key)
    if not isinstance(entries, list) or not entries:
        raise DemoContentError(f"{CONTENT_DIR / name}: no [[{key}]] entries")
    return [(f"{name}, {key} #{number}", dict(entry)) for number, entry in enumerate(entries, start=1)]


def duration(value: Any, where: str) -> timedelta:
    """`{ days = 1, hours = 5, minutes = 20 }` as a timedelta."""
    if not isinstance(value, dict) or not value or set(value) - set(DURATION_UNITS):
        raise DemoContentError(f"{where}: a duration is a table of {', '.join(DURATION_UNITS)}, not {value!r}")
    if not all(type(amount) is int and amount >= 0 for amount in value.values()):
        raise DemoContentError(f"{where}: a duration's amounts are whole numbers, not {value!r}")
    return timedelta(**value)


def _plan(values: Any, where: str) -> Plan:
    where = f"{where}, plan"
    if not isinstance(values, dict) or values.get("kind") not in PLANS:
        raise DemoContentError(f"{where}: kind must be one of {', '.join(PLANS)}")
    values = dict(values)
    cls = PLANS[values.pop("kind")]
    hints = get_type_hints(cls)
    for key, value in values.items():
        if hints.get(key) is timedelta:
            values[key] = duration(value, f"{where}, {key}")
    return _build(cls, values, where)


def _shifts(data: dict[str, Any]) -> dict[str, Schedule]:
    shifts = {}
    for name, periods in data.get("shifts", {}).items():
        where = f"people.toml, shift {name}"
        schedule = []
        for period in periods:
            days, start, end = period.get("weekdays"), period.get("start"), period.get("end")
            if set(period) != {"weekdays", "start", "end"} or not isinstance(start, time) or not isinstance(end, time):
                raise DemoContentError(f"{where}: a period is {{ weekdays = [...], start = 08:00:00, end = ... }}")
            if not days or not set(days) <= set(WEEKDAYS):
                raise DemoContentError(f"{where}: weekdays are among {', '.join(WEEKDAYS)}")
            schedule.append((tuple(WEEKDAYS.index(day) for day in days), start, end))
        shifts[name] = tuple(schedule)
    return shifts


def _doctor(values: dict[str, Any], shifts: dict[str, Schedule], where: str) -> DemoDoctor:
    shift = values.pop("shift", None)
    if shift not in shifts:
        raise DemoContentError(f"{where}: shift must be one of {', '.join(shifts)}, not {shift!r}")
    specialties = values.get("specialties")
    if not isinstance(specialties, list) or not specialties:
        raise DemoContentError(f"{where}: specialties is a list of specialty slugs")
    return _build(DemoDoctor, {**values, "specialties": tuple(specialties), "schedule": shifts[shift]}, where)


def _question(values: dict[str, Any], where: str) -> DemoQuestion:
    plan = _plan(values.pop("plan", None), where)
    return _build(DemoQuestion, {**values, "plan": plan}, where)


# --- Checking the references between the files ---------------------------------------


def _unique(keys: list, what: str) -> None:
    seen = set()
    for key in keys:
        if key in seen:
            raise DemoContentError(f"two demo {what} share {key!r}")
        seen.add(key)


def _check_references(content: DemoContent) -> None:
    specialties = {s.slug for s in content.specialties}
    patients = {p.email for p in content.patients}
    doctors = {d.email for d in content.doctors}
    _unique([s.slug for s in content.specialties], "specialties")
    _unique([p.email for p in content.patients] + [d.email for d in content.doctors] + [content.staff.email], "people")
    _unique([(q.patient, q.title) for q in content.questions], "questions (patient, title)")
    for doctor in content.doctors:
        if unknown := set(doctor.specialties) - specialties:
            raise DemoContentError(f"doctor {doctor.email}: unknown specialties {sorted(unknown)}")
    for question in content.questions:
        where = f"question {question.title!r}"
        if question.patient not in patients:
            raise DemoContentError(f"{where}: {question.patient} is not a demo patient")
        if question.specialty not in specialties:
            raise DemoContentError(f"{where}: unknown specialty {question.specialty}")
        for email in {getattr(question.plan, "doctor", None), question.plan.claimant} - {None}:
            if email not in doctors:
                raise DemoContentError(f"{where}: {email} is not a demo doctor")


@cache
def load() -> DemoContent:
    """Everything in the data files, read and checked once per process."""
    people = read_file("people.toml")
    shifts = _shifts(people)
    staff = people.get("staff")
    if not isinstance(staff, dict):
        raise DemoContentError("people.toml: no [staff] table")
    content = DemoContent(
        specialties=tuple(_build(DemoSpecialty, v, w) for w, v in _entries(read_file(FILES[0]), "specialty", FILES[0])),
        patients=tuple(_build(DemoPatient, v, w) for w, v in _entries(people, "patient", FILES[1])),
        staff=_build(DemoStaff, dict(staff), "people.toml, staff"),
        doctors=tuple(_doctor(v, shifts, w) for w, v in _entries(people, "doctor", FILES[1])),
        questions=tuple(_question(v, w) for w, v in _entries(read_file(FILES[2]), "question", FILES[2])),
    )
    if unknown := set(people) - {"staff", "shifts", "patient", "doctor"}:
        raise DemoContentError(f"people.toml: unknown table(s) {sorted(unknown)}")
    _check_references(content)
    return content
