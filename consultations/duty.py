"""Who is on duty: the one rule, and what the portal does with it.

A doctor is on duty at an instant when all of these hold:

1. they are verified and their account is active;
2. they have not switched themselves off duty (`off_duty`): off always wins,
   whatever the schedule says, until they switch on again;
3. and either they switched themselves on outside their schedule and that switch
   has not run out (`on_duty_until` is later), or the instant falls in one of
   their weekly `DutyPeriod`s, read in their own time zone (their account's).

A period is wall-clock time in that zone: 22:00-06:00 on Friday ends on Saturday
at 06:00 and lasts 7 or 9 real hours on the nights the clocks change. A doctor
with no schedule is on duty only while switched on. Switching on inside the
schedule simply follows the schedule; outside it, it lasts DUTY_SWITCH_ON_HOURS,
so a forgotten switch cannot promise patients a doctor all night.

Every question here ("on duty now?", "who is on duty?", "will anyone be, before
the due time?", "when next?") is answered from `duty_intervals`, so they cannot
disagree.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, Prefetch, QuerySet
from django.urls import reverse
from django.utils import timezone

from consultations import sla
from consultations.models import DoctorProfile, DutyPeriod, Question, QuestionStatus, Specialty
from consultations.notifications import queue_notification
from portal.times import LONG_DATE_TIME, format_time

Interval = tuple[datetime, datetime]


def _zone(doctor: DoctorProfile) -> ZoneInfo:
    try:
        return ZoneInfo(doctor.user.time_zone or settings.TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(settings.TIME_ZONE)


def _local(day: date, at: time, zone: ZoneInfo) -> datetime:
    """A wall-clock time on a day in `zone`, in UTC. A time the clocks skip (02:30 when
    they spring forward) is read with the offset before the jump (so 03:30 summer
    time); a time they repeat is the first of the two (PEP 495, fold=0)."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(ZoneInfo("UTC"))


def scheduled_intervals(
    periods: Iterable[DutyPeriod], zone: ZoneInfo, start: datetime, end: datetime
) -> list[Interval]:
    """The weekly periods' occurrences that overlap [start, end), in UTC, clipped to it."""
    periods = list(periods)
    if not periods or end <= start:
        return []
    found = []
    # From the day before (a period from last night may still run) to the last day.
    day = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date()
    while day <= last:
        for period in periods:
            if period.weekday != day.weekday():
                continue
            begins = _local(day, period.start, zone)
            ends = _local(day + timedelta(days=1) if period.end <= period.start else day, period.end, zone)
            # A period wholly inside the skipped hour lasts no time at all.
            if begins < ends and begins < end and ends > start:
                found.append((max(begins, start), min(ends, end)))
        day += timedelta(days=1)
    return sorted(found)


def duty_intervals(doctor: DoctorProfile, start: datetime, end: datetime) -> list[Interval]:
    """When `doctor` is on duty within [start, end): the rule of this module's docstring.

    Reads `doctor.user` and `doctor.duty_periods.all()` (prefetch them for many doctors)."""
    if not doctor.may_practise or doctor.off_duty:
        return []
    intervals = scheduled_intervals(doctor.duty_periods.all(), _zone(doctor), start, end)
    if doctor.on_duty_until is not None and doctor.on_duty_until > start:
        intervals.append((start, min(doctor.on_duty_until, end)))
    return sorted(intervals)


def is_on_duty(doctor: DoctorProfile, at: datetime) -> bool:
    return bool(duty_intervals(doctor, at, at + timedelta(microseconds=1)))


def _candidates(specialty=None) -> QuerySet[DoctorProfile]:
    """Doctors who could be on duty (the rest of the rule needs their zone and periods)."""
    doctors = DoctorProfile.objects.verified().filter(off_duty=False)
    if specialty is not None:
        doctors = doctors.filter(specialties=specialty)
    return doctors.select_related("user").prefetch_related(
        Prefetch("duty_periods", queryset=DutyPeriod.objects.order_by())
    )


def on_duty_list(specialty, at: datetime) -> list[DoctorProfile]:
    """The doctors of `specialty` on duty at `at` (None: of any specialty), by id, their
    `user` loaded: the candidates' query (and their periods') is the only one."""
    return sorted((doctor for doctor in _candidates(specialty) if is_on_duty(doctor, at)), key=lambda d: d.pk)


def doctors_on_duty(specialty, at: datetime) -> QuerySet[DoctorProfile]:
    """The doctors of `specialty` on duty at `at` (None: of any specialty), as a queryset."""
    return DoctorProfile.objects.filter(pk__in=[doctor.pk for doctor in on_duty_list(specialty, at)])


def on_duty_counts_by_specialty(at: datetime) -> dict[int, int]:
    """Specialty id -> how many of its doctors are on duty at `at` (every specialty listed)."""
    counts = dict.fromkeys(Specialty.objects.values_list("pk", flat=True), 0)
    on_duty = [doctor.pk for doctor in _candidates() if is_on_duty(doctor, at)]
    links = DoctorProfile.specialties.through.objects.filter(doctorprofile_id__in=on_duty)
    for specialty_id in links.values_list("specialty_id", flat=True):
        counts[specialty_id] = counts.get(specialty_id, 0) + 1
    return counts


# A week and a day: long enough to meet every weekly period.
HORIZON = timedelta(days=8)


def _anyone(doctors: Iterable[DoctorProfile], start: datetime, end: datetime) -> bool:
    return any(duty_intervals(doctor, start, end) for doctor in doctors)


def _first_start(doctors: Iterable[DoctorProfile], after: datetime) -> datetime | None:
    starts = [intervals[0][0] for doctor in doctors if (intervals := duty_intervals(doctor, after, after + HORIZON))]
    return min(starts, default=None)


def will_anyone_be_on_duty(specialty, start: datetime, end: datetime) -> bool:
    """True when some doctor of `specialty` is on duty at some moment in [start, end)."""
    return _anyone(_candidates(specialty), start, end)


def next_on_duty_at(specialty, after: datetime) -> datetime | None:
    """The first moment from `after` when a doctor of `specialty` is on duty (`after`
    itself if one is now); None if nobody is within the coming week."""
    return _first_start(_candidates(specialty), after)


@dataclass(frozen=True)
class Cover:
    """A specialty nobody will be on duty for before a new question's due time."""

    specialty: Specialty
    due_at: datetime
    next_on_duty: datetime | None  # when a doctor of it is next on duty, if this week
    fallback: Specialty | None  # the specialty to offer instead: someone is on duty in time


# What the rule of this module's docstring reads of a doctor and their account: the ask
# form's notes load every candidate on every showing, and need nothing else of them.
RULE_FIELDS = ("is_verified", "off_duty", "on_duty_until", "user", "user__is_active", "user__time_zone")


def specialties_without_cover(now: datetime) -> list[Cover]:
    """Every specialty where a question asked now would find no doctor on duty before
    its due time (the normal window: urgency is only known from the text), with the
    honest alternatives: the fallback specialty (DUTY_FALLBACK_SPECIALTY) if someone is
    on duty there in time, and when the specialty's next doctor comes on duty."""
    return roster_at(now).covers


@dataclass(frozen=True)
class Roster:
    """What the ask form and a new question need of the duty rule at an instant, and
    until when the passing of time alone cannot change it (`unchanged_until`)."""

    covers: list[Cover]
    # Specialty id -> the ids of its doctors on duty at that instant (only specialties with one).
    doctors_on_duty: dict[int, tuple[int, ...]]
    until: datetime
    specialties: list[Specialty]  # every specialty, in their order (the ask form's choices)


def roster_at(now: datetime) -> Roster:
    """Every candidate doctor, their periods, their specialties and every specialty, in four
    queries whatever their number, through the rule of this module's docstring."""
    due_at = sla.due_at_for(now)
    doctors = {doctor.pk: doctor for doctor in _candidates().only(*RULE_FIELDS)}
    links = DoctorProfile.specialties.through.objects.filter(doctorprofile_id__in=doctors)
    by_specialty: dict[int, list[DoctorProfile]] = {}
    for doctor_id, specialty_id in links.values_list("doctorprofile_id", "specialty_id"):
        by_specialty.setdefault(specialty_id, []).append(doctors[doctor_id])
    # One query for every specialty, the fallback among them (shown on every ask form).
    specialties = list(Specialty.objects.all())
    fallback = next((s for s in specialties if s.slug == settings.DUTY_FALLBACK_SPECIALTY), None)
    if fallback is not None and not _anyone(by_specialty.get(fallback.pk, []), now, due_at):
        fallback = None
    uncovered = []
    for specialty in specialties:
        if _anyone(by_specialty.get(specialty.pk, []), now, due_at):
            continue
        uncovered.append(
            Cover(
                specialty=specialty,
                due_at=due_at,
                next_on_duty=_first_start(by_specialty.get(specialty.pk, []), now),
                fallback=fallback if fallback is not None and fallback.pk != specialty.pk else None,
            )
        )
    instant = now + timedelta(microseconds=1)
    doctors_on_duty = {
        pk: ids
        for pk, doctors_of in by_specialty.items()
        if (ids := tuple(sorted(doctor.pk for doctor in doctors_of if _anyone([doctor], now, instant))))
    }
    until = unchanged_until(doctors.values(), now, due_at - now, now + COVER_LOOKAHEAD_CAP)
    return Roster(covers=uncovered, doctors_on_duty=doctors_on_duty, until=until, specialties=specialties)


# However far away the next change is, the cover is recomputed after this long.
COVER_LOOKAHEAD_CAP = timedelta(hours=1)


def unchanged_until(doctors: Iterable[DoctorProfile], now: datetime, window: timedelta, cap: datetime) -> datetime:
    """The first instant after `now` at which the passing of time alone may change what
    `specialties_without_cover` says about these doctors (`cap` if none comes before it).

    Its answer looks at [now, now + window) ("anyone on duty before the due time?") and
    at [now, now + HORIZON) ("first start this week"): it can only change when one of
    the doctors' duty boundaries (a start or an end) leaves such a range at its start
    (the boundary passes) or enters it at its end (boundary - window, boundary - HORIZON)."""
    end = now + window + HORIZON
    first = cap
    for doctor in doctors:
        for interval in duty_intervals(doctor, now, end):
            for boundary in interval:
                if not now < boundary < end:
                    continue  # the range's own edges (clipped intervals) are not boundaries
                for moment in (boundary, boundary - window, boundary - HORIZON):
                    if now <= moment < first:
                        first = moment
    return first


# --- The doctor's switch -------------------------------------------------------------


def _roster_changed() -> None:
    from consultations import cover_cache  # it reads this module's rule

    cover_cache.forget()  # update() sends no signal


def switch_on_duty(doctor: DoctorProfile, now: datetime | None = None) -> None:
    """On duty again: inside the schedule that is the schedule; outside it, for
    DUTY_SWITCH_ON_HOURS."""
    now = now or timezone.now()
    doctor.off_duty = False
    doctor.on_duty_until = None
    if not is_on_duty(doctor, now):
        doctor.on_duty_until = now + timedelta(hours=settings.DUTY_SWITCH_ON_HOURS)
    DoctorProfile.objects.filter(pk=doctor.pk).update(off_duty=False, on_duty_until=doctor.on_duty_until)
    _roster_changed()


def switch_off_duty(doctor: DoctorProfile) -> None:
    doctor.off_duty, doctor.on_duty_until = True, None
    DoctorProfile.objects.filter(pk=doctor.pk).update(off_duty=True, on_duty_until=None)
    _roster_changed()


# --- What the workbench shows ---------------------------------------------------------


def _current_end(intervals: list[Interval], now: datetime) -> datetime | None:
    """The end of the run of (overlapping or touching) intervals holding `now`."""
    end = None
    for begins, ends in intervals:
        if begins <= (end or now) and ends > (end or now):
            end = ends
    return end


def describe_duty(doctor: DoctorProfile, now: datetime) -> str:
    """The doctor's own duty state in words, with times in their zone."""
    zone = doctor.user.time_zone
    if doctor.off_duty:
        return "You switched yourself off duty, so you get no e-mails about new work."
    intervals = duty_intervals(doctor, now, now + timedelta(days=8))
    until = _current_end(intervals, now)
    if until is not None:
        how = "switched on" if doctor.on_duty_until and doctor.on_duty_until > now else "by your schedule"
        return f"You are on duty ({how}) until {format_time(until, LONG_DATE_TIME, zone)}."
    if intervals:
        return f"You are off duty by your schedule; next on duty {format_time(intervals[0][0], LONG_DATE_TIME, zone)}."
    return "You are off duty: you have no schedule, so you are on duty only when you switch on."


def workbench_summary(doctor: DoctorProfile | None, now: datetime) -> dict:
    """The queue's duty panel: doctors on duty per specialty (the doctor's own, or all
    for staff) and, for a doctor, their state, switch and weekly schedule."""
    counts = on_duty_counts_by_specialty(now)
    specialties = doctor.specialties.all() if doctor is not None else Specialty.objects.all()
    summary = {"specialties": [(specialty.name, counts.get(specialty.pk, 0)) for specialty in specialties]}
    if doctor is not None:
        doctor = _candidates().filter(pk=doctor.pk).first() or doctor
        summary.update(
            on_duty=is_on_duty(doctor, now),
            text=describe_duty(doctor, now),
            periods=[str(period) for period in DutyPeriod.objects.filter(doctor=doctor)],
            zone=str(_zone(doctor)),
        )
    return summary


# --- Telling staff when a specialty is left uncovered -----------------------------------


def staff_to_alert() -> list:
    return list(
        get_user_model()
        .objects.filter(groups__name=settings.SLA_STAFF_GROUP, is_active=True)
        .exclude(email="")
        .distinct()
        .order_by("pk")
    )


def alert_uncovered_specialties(now: datetime | None = None) -> list[int]:
    """One alert to the SLA staff group per gap in a specialty's cover, once questions
    wait in it: the first check that finds open questions and no doctor on duty sets
    `uncovered_since` with a conditional UPDATE, so concurrent checks alert once; the
    gap ends when a doctor of it is on duty again. Returns the specialties alerted now."""
    now = now or timezone.now()
    waiting = dict(
        Question.objects.filter(status=QuestionStatus.OPEN)
        .order_by()
        .values("specialty_id")
        .annotate(open_count=Count("pk"))
        .values_list("specialty_id", "open_count")
    )
    counts = on_duty_counts_by_specialty(now)
    alerted = []
    for specialty in Specialty.objects.order_by("pk"):
        if counts.get(specialty.pk, 0) > 0:
            if specialty.uncovered_since is not None:
                Specialty.objects.filter(pk=specialty.pk).update(uncovered_since=None)  # the gap is over
            continue
        if not waiting.get(specialty.pk):
            continue  # nobody on duty, but nobody waits either (yet)
        with transaction.atomic():
            if Specialty.objects.filter(pk=specialty.pk, uncovered_since__isnull=True).update(uncovered_since=now) != 1:
                continue  # this gap was already alerted
            next_at = next_on_duty_at(specialty, now)
            for user in staff_to_alert():
                queue_notification(
                    recipient=user,
                    to_email=user.email,
                    kind="no_one_on_duty",
                    context={
                        "specialty": specialty.name,
                        "open_count": waiting[specialty.pk],
                        "next_on_duty": format_time(next_at, LONG_DATE_TIME, user.time_zone) if next_at else "",
                        "url": settings.SITE_URL + reverse("staff:sla_dashboard"),
                    },
                    dedupe_key=f"no_one_on_duty:{specialty.pk}:{now.isoformat()}:{user.pk}",
                )
        alerted.append(specialty.pk)
    return alerted
