"""Demo data for `make run`: specialties, doctors, patients, staff and questions
in every state of the 4-hour guarantee, all written for this portal.

The content is data: `consultations/demo_content/*.toml`, read by
`consultations.demo_data`; what each question demonstrates is placed in time by
`consultations.demo_plans`. This module writes it to the database:
`seed_consultations(now)`, which `portal.demo.seed_demo` (behind `manage.py
seed_demo`) calls before the articles app seeds its articles with our doctors.
It is idempotent:
- people, specialties and the staff group are found by natural key (e-mail,
  slug, name) and created when missing; what exists is left as it is, so edits
  made in the admin survive a restart;
- a demo question is found by patient + title. Its times are relative to the
  moment it is seeded, so a question nobody has touched (same status, same
  claim, no new replies) whose SLA state has drifted away from the one it
  demonstrates (an "on track" example seeded yesterday is breached by now) is
  moved back to it. A question someone has worked on has "moved on" and is
  never reset.
- one question breaches on purpose a few minutes after seeding (plan
  "breaching_soon"), so every `make run` shows the sweep warn and escalate
  (and, since issue 14, apologise to the patient and record their credit);
- one open question has already breached and been swept ("already_breached"):
  its patient's page shows the apology notice and the credit at once. Late
  answers carry the credit the sweep would have recorded for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.utils import timezone

from consultations import cover_cache, credits, sla
from consultations.access import MEDICAL_RECORD_PERMISSION, clinical_staff_group
from consultations.demo_data import DemoContent, DemoContentError, DemoDoctor, DemoQuestion, load
from consultations.demo_plans import SWEEP_LAG, AlreadyBreached, Answered, BreachingSoon
from consultations.models import (
    BreachCredit,
    DoctorProfile,
    DutyPeriod,
    Escalation,
    EscalationLevel,
    Question,
    Reply,
    Specialty,
)

# The published demo logins, printed by `make run`; people.toml must hold them.
DEMO_PASSWORD = "portal-demo"  # noqa: S105
PATIENT_EMAIL = "patient@example.com"
DOCTOR_EMAIL = "doctor@example.com"
STAFF_EMAIL = "staff@example.com"


def content() -> DemoContent:
    """The demo content, checked to contain the published logins."""
    data = load()
    if PATIENT_EMAIL not in {p.email for p in data.patients}:
        raise DemoContentError(f"people.toml: no [[patient]] {PATIENT_EMAIL}")
    if DOCTOR_EMAIL not in {d.email for d in data.doctors if d.is_verified}:
        raise DemoContentError(f"people.toml: no verified [[doctor]] {DOCTOR_EMAIL}")
    if data.staff.email != STAFF_EMAIL:
        raise DemoContentError(f"people.toml: the [staff] login must be {STAFF_EMAIL}")
    return data


@dataclass
class SeedResult:
    created: dict[str, int] = field(default_factory=dict)
    questions_created: int = 0
    questions_refreshed: int = 0
    questions_kept: int = 0
    breaching_soon: Question | None = None
    articles: int = 0
    # Verified doctors by specialty slug, in the order of people.toml (the first writes its articles).
    doctors_by_specialty: dict[str, list[DoctorProfile]] = field(default_factory=dict)

    def count(self, what: str) -> None:
        self.created[what] = self.created.get(what, 0) + 1


def seed_specialties(result: SeedResult, data: DemoContent) -> dict[str, Specialty]:
    specialties = {}
    for order, spec in enumerate(data.specialties, start=1):
        specialty, created = Specialty.objects.get_or_create(
            slug=spec.slug, defaults={"name": spec.name, "description": spec.description, "sort_order": order * 10}
        )
        if created:
            result.count("specialties")
        specialties[spec.slug] = specialty
    return specialties


def _user(result: SeedResult, email: str, **defaults):
    user, created = get_user_model().objects.get_or_create(email=email, defaults=defaults)
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
        result.count("users")
    return user


def seed_patients(result: SeedResult, data: DemoContent) -> dict:
    return {
        p.email: _user(result, p.email, full_name=p.full_name, age=p.age, sex=p.sex, time_zone=p.time_zone)
        for p in data.patients
    }


def seed_doctors(result: SeedResult, specialties: dict[str, Specialty], data: DemoContent) -> dict:
    doctors = {}
    for spec in data.doctors:
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
    for spec in data.doctors:
        if spec.is_verified:
            for slug in spec.specialties:
                result.doctors_by_specialty.setdefault(slug, []).append(doctors[spec.email])
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
    cover_cache.forget()  # bulk_create and update() send no signal
    result.count("duty schedules")


def seed_staff(result: SeedResult, data: DemoContent):
    """The operations team's login: a superuser, in the SLA staff group so that
    group's permissions (and its breach e-mails) are shown working, and in the
    clinical staff group: reading patients' records is granted explicitly, never
    by staff status (the SLA group does not carry it)."""
    staff = _user(result, data.staff.email, full_name=data.staff.full_name, is_staff=True, is_superuser=True)
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


def seed_questions(result, data, patients, specialties, doctors, staff_emails, now) -> None:
    for spec in data.questions:
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


def seed_consultations(now: datetime | None = None) -> SeedResult:
    """Create (or bring back) the people and the questions in one transaction."""
    now = now or timezone.now()
    data = content()
    result = SeedResult()
    with transaction.atomic():
        specialties = seed_specialties(result, data)
        patients = seed_patients(result, data)
        doctors = seed_doctors(result, specialties, data)
        staff = seed_staff(result, data)
        seed_questions(result, data, patients, specialties, doctors, [staff.email], now)
    return result


# --- Reporting ---------------------------------------------------------------------


def demo_questions():
    emails = [p.email for p in content().patients]
    return Question.objects.filter(patient__email__in=emails).select_related("specialty")


def state_counts(now: datetime) -> dict[str, int]:
    """How many demo questions are in each SLA state at `now`."""
    counts: dict[str, int] = {}
    for question in demo_questions():
        state = sla.sla_state(question, now)
        counts[state] = counts.get(state, 0) + 1
    return counts
