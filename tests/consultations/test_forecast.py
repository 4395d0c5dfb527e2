"""Breaches seen coming (issue 14, "Breaches seen coming"; acceptance: the forecast on
hand-built queues). The pure `forecast` on exact queues, and `open_forecast` reading
the data in a fixed number of queries."""

from datetime import UTC, datetime, time, timedelta

import pytest
from django.test.utils import override_settings
from django.utils import timezone

from consultations import forecast
from consultations.forecast import Doctor, Waiting
from consultations.models import DutyPeriod, Weekday
from tests.factories import DoctorFactory, QuestionFactory, SpecialtyFactory, UserFactory

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday, 09:00 UTC
SKIN, HEART = 1, 2


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def doctor(pk, *specialties, start=NOW, end=NOW + timedelta(hours=8)):
    return Doctor(pk=pk, specialty_ids=frozenset(specialties), intervals=((start, end),))


def ten_questions(specialty=SKIN):
    # Asked one a minute from 08:50: the same order as their due times.
    return [
        Waiting(pk=n, specialty_id=specialty, is_urgent=False, due_at=NOW + timedelta(hours=4) + minutes(n))
        for n in range(10)
    ]


@pytest.fixture(autouse=True)
def _utc():
    with override_settings(TIME_ZONE="UTC"), timezone.override("UTC"):
        yield


def test_an_empty_queue_forecasts_nothing():
    assert forecast.forecast([], [doctor(1, SKIN)], 25, NOW) == {}
    assert forecast.likely_to_breach({}, NOW) == []


def test_one_doctor_with_ten_questions_answers_nine_in_time_and_the_tenth_late():
    result = forecast.forecast(ten_questions(), [doctor(1, SKIN)], 25, NOW)
    expected = [NOW + minutes(25 * (n + 1)) for n in range(10)]
    assert [result[n].expected_at for n in range(10)] == expected
    # The tenth is done at 13:10, due at 13:09: the only breach.
    assert [result[n].will_breach for n in range(10)] == [False] * 9 + [True]
    assert [result[n].ahead for n in range(10)] == list(range(10))
    assert result[9].reason == "9 questions ahead, 1 doctor on duty at ~25 min each"
    assert result[0].reason == "0 questions ahead, 1 doctor on duty at ~25 min each"


def test_an_urgent_question_goes_first_whatever_its_due_time():
    urgent = Waiting(pk=99, specialty_id=SKIN, is_urgent=True, due_at=NOW + timedelta(hours=5))
    result = forecast.forecast([*ten_questions(), urgent], [doctor(1, SKIN)], 25, NOW)
    assert result[99].expected_at == NOW + minutes(25)
    assert result[99].ahead == 0
    # Everyone else moves one place back: now the ninth and the tenth are late.
    assert [result[n].will_breach for n in range(10)] == [False] * 8 + [True, True]


def test_a_specialty_with_nobody_on_duty_until_after_the_due_time_breaches():
    # The only skin doctor starts at 14:00; the question is due at 13:00.
    late = doctor(1, SKIN, start=NOW.replace(hour=14), end=NOW.replace(hour=18))
    question = Waiting(pk=1, specialty_id=SKIN, is_urgent=False, due_at=NOW.replace(hour=13))
    result = forecast.forecast([question], [late, doctor(2, HEART)], 25, NOW)[1]
    assert result.expected_at == NOW.replace(hour=14, minute=25)
    assert result.will_breach is True
    assert result.reason == "nobody on duty until 14:00 UTC, then 0 questions ahead at ~25 min each"


def test_a_specialty_with_no_doctor_in_the_coming_week_has_no_expected_time():
    question = Waiting(pk=1, specialty_id=SKIN, is_urgent=False, due_at=NOW + timedelta(hours=4))
    result = forecast.forecast([question], [doctor(2, HEART)], 25, NOW)[1]
    assert (result.expected_at, result.will_breach) == (None, True)
    assert result.reason == "nobody of this specialty on duty in the coming week"


def test_a_doctor_who_goes_off_duty_finishes_at_the_next_period():
    # On 09:00-09:10 and again 10:00-12:00: 25 minutes of work end at 10:15.
    split = Doctor(
        pk=1,
        specialty_ids=frozenset({SKIN}),
        intervals=((NOW, NOW + minutes(10)), (NOW + minutes(60), NOW + minutes(180))),
    )
    question = Waiting(pk=1, specialty_id=SKIN, is_urgent=False, due_at=NOW + minutes(70))
    result = forecast.forecast([question], [split], 25, NOW)[1]
    assert result.expected_at == NOW + minutes(75)
    assert result.will_breach is True


def test_two_doctors_share_the_line_and_a_doctor_of_two_specialties_is_not_counted_twice():
    both = doctor(1, SKIN, HEART)
    questions = [
        Waiting(pk=1, specialty_id=SKIN, is_urgent=False, due_at=NOW + minutes(30)),
        Waiting(pk=2, specialty_id=HEART, is_urgent=False, due_at=NOW + minutes(40)),
    ]
    result = forecast.forecast(questions, [both], 25, NOW)
    assert (result[1].expected_at, result[2].expected_at) == (NOW + minutes(25), NOW + minutes(50))
    assert (result[1].will_breach, result[2].will_breach) == (False, True)
    # A second heart doctor takes the heart question at once.
    result = forecast.forecast(questions, [both, doctor(2, HEART)], 25, NOW)
    assert result[2].expected_at == NOW + minutes(25)
    assert result[2].reason == "0 questions ahead, 2 doctors on duty at ~25 min each"


def test_likely_to_breach_lists_only_those_due_within_the_hour_not_already_late():
    results = {
        1: forecast.Forecast(1, NOW + minutes(30), None, True, "", 0),
        2: forecast.Forecast(2, NOW + minutes(90), None, True, "", 0),  # due later
        3: forecast.Forecast(3, NOW + minutes(20), NOW, False, "", 0),  # in time
        4: forecast.Forecast(4, NOW - minutes(5), None, True, "", 0),  # already breached
        5: forecast.Forecast(5, NOW + minutes(10), None, True, "", 0),
    }
    assert [f.question_id for f in forecast.likely_to_breach(results, NOW)] == [5, 1]


# --- From the database -----------------------------------------------------------------


def scheduled_doctor(specialty, start: time, end: time):
    doctor = DoctorFactory(user=UserFactory(time_zone="UTC"), specialties=[specialty])
    DutyPeriod.objects.create(doctor=doctor, weekday=Weekday.MONDAY, start=start, end=end)
    return doctor


@pytest.mark.django_db
def test_the_pace_is_the_median_from_claim_to_first_answer_over_seven_days():
    specialty = SpecialtyFactory()
    assert forecast.minutes_per_answer(NOW) == forecast.DEFAULT_MINUTES_PER_ANSWER
    for taken in (10, 20, 30, 40, 50):
        QuestionFactory(
            specialty=specialty,
            submitted_at=NOW - timedelta(hours=5),
            answered_after=timedelta(hours=2),
            claimed_at=NOW - timedelta(hours=3) - minutes(taken),
        )
    # Older than 7 days, or answered without a claim (claim = answer): not counted.
    QuestionFactory(
        specialty=specialty,
        submitted_at=NOW - timedelta(days=9),
        answered_after=minutes(300),
        claimed_at=NOW - timedelta(days=9),
    )
    unclaimed = QuestionFactory(specialty=specialty, submitted_at=NOW - timedelta(hours=2), answered_after=minutes(60))
    unclaimed.claimed_at = unclaimed.first_answered_at
    unclaimed.save()
    assert forecast.minutes_per_answer(NOW) == 30


@pytest.mark.django_db
def test_open_forecast_reads_the_data_in_a_fixed_number_of_queries(django_assert_num_queries):
    skin, heart = SpecialtyFactory(), SpecialtyFactory()
    scheduled_doctor(skin, time(8), time(17))
    scheduled_doctor(heart, time(14), time(18))
    QuestionFactory(specialty=skin, submitted_at=NOW - timedelta(hours=1))
    with django_assert_num_queries(5):
        one = forecast.open_forecast(NOW)
    for _ in range(6):
        QuestionFactory(specialty=skin, submitted_at=NOW - timedelta(hours=1))
    heart_question = QuestionFactory(specialty=heart, submitted_at=NOW - timedelta(hours=1))
    paused = QuestionFactory(specialty=skin, submitted_at=NOW - timedelta(hours=1), clock_paused_at=NOW)
    with django_assert_num_queries(5):
        many = forecast.open_forecast(NOW)
    assert len(one) == 1 and len(many) == 8 and paused.pk not in many
    # Heart's doctor starts at 14:00; the question is due at 12:00.
    assert many[heart_question.pk].will_breach
    assert many[heart_question.pk].reason.startswith("nobody on duty until 14:00")
