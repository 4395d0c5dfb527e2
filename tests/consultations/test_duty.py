"""Who is on duty (issue 14, "Who is on duty"): the one rule of consultations.duty, at
midnight, across the clock changes, in the doctor's own zone, and with the switch."""

from datetime import UTC, datetime, time, timedelta

import pytest

from consultations import duty
from consultations.models import DutyPeriod, Weekday
from tests.factories import DoctorFactory, SpecialtyFactory, UserFactory

pytestmark = pytest.mark.django_db


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def doctor_in(zone: str, *periods, is_active=True, **fields):
    doctor = DoctorFactory(user=UserFactory(time_zone=zone, is_active=is_active), **fields)
    for weekday, start, end in periods:
        DutyPeriod.objects.create(doctor=doctor, weekday=weekday, start=start, end=end)
    return doctor


def test_a_period_crossing_midnight_ends_the_next_morning():
    # Sunday 22:00 to 06:00, in UTC: it runs into Monday.
    doctor = doctor_in("UTC", (Weekday.SUNDAY, time(22), time(6)))
    sunday, monday = utc(2026, 1, 4), utc(2026, 1, 5)
    assert not duty.is_on_duty(doctor, sunday.replace(hour=21, minute=59))
    assert duty.is_on_duty(doctor, sunday.replace(hour=22))
    assert duty.is_on_duty(doctor, monday.replace(hour=0))
    assert duty.is_on_duty(doctor, monday.replace(hour=5, minute=59))
    assert not duty.is_on_duty(doctor, monday.replace(hour=6))
    # Monday night is not on the schedule.
    assert not duty.is_on_duty(doctor, monday.replace(hour=22))


def test_an_end_equal_to_the_start_is_a_whole_day():
    doctor = doctor_in("UTC", (Weekday.MONDAY, time(0), time(0)))
    assert duty.is_on_duty(doctor, utc(2026, 1, 5, 0, 0))
    assert duty.is_on_duty(doctor, utc(2026, 1, 5, 23, 59))
    assert not duty.is_on_duty(doctor, utc(2026, 1, 6, 0, 0))


def test_hours_are_read_in_the_doctors_own_zone():
    # 09:00-17:00 in New York is 14:00-22:00 UTC in winter, 13:00-21:00 UTC in summer.
    doctor = doctor_in("America/New_York", (Weekday.MONDAY, time(9), time(17)))
    assert not duty.is_on_duty(doctor, utc(2026, 1, 5, 13, 59))
    assert duty.is_on_duty(doctor, utc(2026, 1, 5, 14, 0))
    assert not duty.is_on_duty(doctor, utc(2026, 1, 5, 22, 0))
    assert duty.is_on_duty(doctor, utc(2026, 7, 6, 13, 0))
    assert not duty.is_on_duty(doctor, utc(2026, 7, 6, 21, 0))


def test_a_night_when_the_clocks_spring_forward_is_an_hour_shorter():
    # Warsaw, Saturday 28 March 2026, 22:00 CET (21:00 UTC) to Sunday 06:00 CEST (04:00 UTC).
    doctor = doctor_in("Europe/Warsaw", (Weekday.SATURDAY, time(22), time(6)))
    start, end = utc(2026, 3, 28, 20, 0), utc(2026, 3, 29, 12, 0)
    assert duty.duty_intervals(doctor, start, end) == [(utc(2026, 3, 28, 21, 0), utc(2026, 3, 29, 4, 0))]
    assert duty.is_on_duty(doctor, utc(2026, 3, 29, 3, 59))
    assert not duty.is_on_duty(doctor, utc(2026, 3, 29, 4, 0))


def test_a_night_when_the_clocks_fall_back_is_an_hour_longer():
    # Warsaw, Saturday 24 October 2026, 22:00 CEST (20:00 UTC) to Sunday 06:00 CET (05:00 UTC).
    doctor = doctor_in("Europe/Warsaw", (Weekday.SATURDAY, time(22), time(6)))
    start, end = utc(2026, 10, 24, 12, 0), utc(2026, 10, 25, 12, 0)
    assert duty.duty_intervals(doctor, start, end) == [(utc(2026, 10, 24, 20, 0), utc(2026, 10, 25, 5, 0))]
    assert duty.is_on_duty(doctor, utc(2026, 10, 25, 4, 59))
    assert not duty.is_on_duty(doctor, utc(2026, 10, 25, 5, 0))


def test_a_start_in_the_skipped_hour_is_read_with_the_offset_before_the_jump():
    # 02:30 does not exist in Warsaw on 29 March 2026; read as CET it is 01:30 UTC (03:30 CEST).
    doctor = doctor_in("Europe/Warsaw", (Weekday.SUNDAY, time(2, 30), time(8)))
    intervals = duty.duty_intervals(doctor, utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 12, 0))
    assert intervals == [(utc(2026, 3, 29, 1, 30), utc(2026, 3, 29, 6, 0))]


def test_off_wins_over_the_schedule():
    doctor = doctor_in("UTC", (Weekday.MONDAY, time(0), time(0)), off_duty=True)
    assert not duty.is_on_duty(doctor, utc(2026, 1, 5, 12, 0))
    assert duty.duty_intervals(doctor, utc(2026, 1, 1), utc(2026, 1, 20)) == []


@pytest.mark.parametrize("fields", [{"is_verified": False}, {"is_active": False}])
def test_only_verified_active_doctors_are_ever_on_duty(fields):
    doctor = doctor_in("UTC", (Weekday.MONDAY, time(0), time(0)), **fields)
    assert not duty.is_on_duty(doctor, utc(2026, 1, 5, 12, 0))


def test_without_a_schedule_a_doctor_is_on_duty_only_when_switched_on(settings):
    settings.DUTY_SWITCH_ON_HOURS = 8
    doctor = doctor_in("UTC")
    now = utc(2026, 1, 5, 20, 0)
    assert not duty.is_on_duty(doctor, now)
    duty.switch_on_duty(doctor, now)
    doctor.refresh_from_db()
    assert doctor.on_duty_until == now + timedelta(hours=8)
    assert duty.is_on_duty(doctor, now + timedelta(hours=7, minutes=59))
    assert not duty.is_on_duty(doctor, now + timedelta(hours=8))


def test_switching_on_inside_the_schedule_follows_the_schedule():
    doctor = doctor_in("UTC", (Weekday.MONDAY, time(8), time(16)), off_duty=True)
    now = utc(2026, 1, 5, 10, 0)
    duty.switch_on_duty(doctor, now)
    doctor.refresh_from_db()
    assert (doctor.off_duty, doctor.on_duty_until) == (False, None)
    assert duty.is_on_duty(doctor, now)
    assert not duty.is_on_duty(doctor, utc(2026, 1, 5, 16, 0))


def test_switching_off_ends_a_switch_on():
    doctor = doctor_in("UTC", on_duty_until=utc(2026, 1, 6))
    duty.switch_off_duty(doctor)
    doctor.refresh_from_db()
    assert (doctor.off_duty, doctor.on_duty_until) == (True, None)
    assert not duty.is_on_duty(doctor, utc(2026, 1, 5, 12, 0))


def test_who_is_on_duty_per_specialty():
    derm, cardio = SpecialtyFactory(slug="derm"), SpecialtyFactory(slug="cardio")
    now = utc(2026, 1, 5, 10, 0)  # a Monday
    on = doctor_in("UTC", (Weekday.MONDAY, time(8), time(16)), specialties=[derm])
    doctor_in("UTC", (Weekday.MONDAY, time(8), time(16)), specialties=[derm], off_duty=True)
    doctor_in("UTC", (Weekday.TUESDAY, time(8), time(16)), specialties=[derm, cardio])
    assert list(duty.doctors_on_duty(derm, now)) == [on]
    assert not duty.doctors_on_duty(cardio, now).exists()
    assert duty.on_duty_counts_by_specialty(now) == {derm.pk: 1, cardio.pk: 0}


def test_will_anyone_be_on_duty_looks_across_the_whole_window():
    cardio = SpecialtyFactory(slug="cardio")
    doctor_in("UTC", (Weekday.TUESDAY, time(8), time(16)), specialties=[cardio])
    monday_evening = utc(2026, 1, 5, 18, 0)
    assert not duty.will_anyone_be_on_duty(cardio, monday_evening, monday_evening + timedelta(hours=4))
    # A window reaching Tuesday 08:00 meets the doctor's shift.
    assert duty.will_anyone_be_on_duty(cardio, monday_evening, utc(2026, 1, 6, 8, 1))
    assert duty.next_on_duty_at(cardio, monday_evening) == utc(2026, 1, 6, 8, 0)
    assert duty.next_on_duty_at(cardio, utc(2026, 1, 6, 9, 0)) == utc(2026, 1, 6, 9, 0)


def test_nobody_scheduled_this_week_has_no_next_time():
    lonely = SpecialtyFactory(slug="lonely")
    assert duty.next_on_duty_at(lonely, utc(2026, 1, 5)) is None


def test_a_period_wholly_in_the_skipped_hour_is_never_on_duty():
    # 02:00-03:00 on the Warsaw night the clocks jump from 02:00 to 03:00 lasts no time.
    cardio = SpecialtyFactory(slug="cardio")
    doctor = doctor_in("Europe/Warsaw", (Weekday.SUNDAY, time(2), time(3)), specialties=[cardio])
    start, end = utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 3, 0)
    assert duty.duty_intervals(doctor, start, end) == []
    assert not duty.will_anyone_be_on_duty(cardio, start, end)
