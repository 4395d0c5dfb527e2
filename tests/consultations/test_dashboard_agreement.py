"""The dashboard's two implementations agree, and both follow the SLA rules, on the same data.

Where a figure has a PostgreSQL query and a portable one (the period's answer counts and
percentiles, the 30-day trend, the likely-to-breach forecast's pace), production runs the
first and local SQLite runs the second. Here both run on the same questions: on PostgreSQL (CI) both, compared with
each other and with the rules of `consultations.sla` applied in Python row by row; on
SQLite the portable one against the rules. The questions sit at and either side of
every boundary the figures draw: an answer given exactly at the due time, a
microsecond and a second before and after it, open questions falling due exactly
now, the period's first and last instants, paused clocks, urgent questions,
follow-ups whose new clock runs after a first answer, an answer whose doctor is no
longer on record; and a month of a clinic's ordinary traffic.
"""

import random
import statistics
import zoneinfo
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import factory
import pytest
from django.db import connection
from django.utils import timezone

from consultations import dashboard, forecast, sla
from consultations.models import Question, QuestionStatus
from portal.models import User
from tests.factories import WARN_FRACTION, QuestionFactory, UserFactory, answer_window

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
US, S, H = timedelta(microseconds=1), timedelta(seconds=1), timedelta(hours=1)
# Before, at and after a boundary instant.
NEAR = (-S, -US, timedelta(0), US, S)
ZONES = [UTC, zoneinfo.ZoneInfo("America/Santiago"), zoneinfo.ZoneInfo("Asia/Kolkata")]


def both_implementations():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's implementation needs PostgreSQL (CI runs these)")


def implementation(using):
    """`using` as a test parameter: PostgreSQL's only on PostgreSQL, the portable one anywhere."""
    if using == dashboard.POSTGRESQL:
        both_implementations()
    return using


# --- The data ---------------------------------------------------------------------------------


def one_patient():
    return User.objects.filter(email="agreement.patient@example.com").first() or UserFactory(
        email="agreement.patient@example.com"
    )


class AgreementQuestionFactory(QuestionFactory):
    """Questions of one patient: a month of traffic without a new account per question."""

    patient = factory.LazyFunction(one_patient)


def answered(specialty, doctor, due, after_due, *, is_urgent=False, **fields):
    """A question whose first answer came `after_due` after its due time (negative: before)."""
    submitted = due - answer_window(is_urgent)
    answered_after = due - submitted + after_due
    return AgreementQuestionFactory(
        specialty=specialty,
        is_urgent=is_urgent,
        submitted_at=submitted,
        answered_after=answered_after,
        answered_by=doctor,
        claimed_by=doctor,
        # Claimed a third of the way: the forecast's pace is the time from claim to answer.
        claimed_at=submitted + answered_after / 3,
        **fields,
    )


def waiting(specialty, due, *, is_urgent=False, **fields):
    """An open question owed its first answer, its clock running towards `due`."""
    return AgreementQuestionFactory(
        specialty=specialty, is_urgent=is_urgent, submitted_at=due - answer_window(is_urgent), **fields
    )


def paused(specialty, due, *, is_urgent=False):
    """The doctor asked the patient for more: the clock stopped an hour before `due`."""
    return waiting(specialty, due, is_urgent=is_urgent, status=QuestionStatus.INFO_REQUESTED, clock_paused_at=due - H)


def follow_up(specialty, doctor, due, after_due, follow_up_due, *, is_urgent=False):
    """Answered (`after_due` after `due`), then the patient followed up: a new clock runs to `follow_up_due`."""
    window = answer_window(is_urgent)
    return answered(
        specialty,
        doctor,
        due,
        after_due,
        is_urgent=is_urgent,
        status=QuestionStatus.OPEN,
        is_follow_up=True,
        clock_started_at=follow_up_due - window,
        clock_warn_at=follow_up_due - window + window * WARN_FRACTION,
        clock_due_at=follow_up_due,
    )


def boundaries(specialty, other_specialty, doctor, other_doctor):
    """Every figure's boundaries, for normal and urgent questions, in both specialties."""
    day_start = NOW - timedelta(hours=24)
    for is_urgent, where, who in [(False, specialty, doctor), (True, other_specialty, other_doctor)]:
        for near in NEAR:
            # Answered exactly at, just before and just after the due time (within / late).
            answered(where, who, NOW - 3 * H, near, is_urgent=is_urgent)
            # Open, falling due around now (past due only strictly after), and around the
            # start of the 24-hour period (counted from its first instant).
            waiting(where, NOW + near, is_urgent=is_urgent)
            waiting(where, day_start + near, is_urgent=is_urgent)
            # First answers around the period's first and last instants.
            answered(where, who, day_start - 2 * H, near + 2 * H, is_urgent=is_urgent)
            answered(where, who, NOW + H, near - H, is_urgent=is_urgent)
            # Paused around now: the patient owes a reply, so never open past due.
            paused(where, NOW + near, is_urgent=is_urgent)
            # Follow-ups: first answered on time or late, the follow-up's clock due around now.
            follow_up(where, who, NOW - 6 * H, near, NOW + near, is_urgent=is_urgent)
    # A first answer whose doctor is no longer on record: in the totals, in no doctor's row.
    answered(specialty, None, NOW - 2 * H, timedelta(0))


def clinic_month(specialty, other_specialty, doctor, other_doctor):
    """A month of ordinary traffic: answer times in whole minutes (ties), urgent questions,
    some left open, paused or followed up; the same every run."""
    rng = random.Random(16)
    for _ in range(160):
        where, who = rng.choice([(specialty, doctor), (other_specialty, other_doctor)])
        is_urgent = rng.random() < 0.15
        window = answer_window(is_urgent)
        due = NOW - timedelta(minutes=rng.randrange(-3 * 60, 31 * 24 * 60)) + window
        # Most answered well before the due time, some late by up to three hours.
        latest = 3 * 60 if rng.random() < 0.15 else -10
        after_due = timedelta(minutes=rng.randrange(-window.seconds // 60 + 5, latest))
        kind = rng.random()
        if kind < 0.12 or due + after_due > NOW:
            waiting(where, due, is_urgent=is_urgent)
        elif kind < 0.2:
            paused(where, due, is_urgent=is_urgent)
        elif kind < 0.3 and due + after_due + 2 * H < NOW:
            follow_up(where, who, due, after_due, due + after_due + 2 * H + window, is_urgent=is_urgent)
        else:
            answered(where, who if rng.random() < 0.9 else None, due, after_due, is_urgent=is_urgent)


def no_questions(*people):
    pass


SCENARIOS = {"boundaries": boundaries, "clinic_month": clinic_month, "no_questions": no_questions}


@pytest.fixture(params=list(SCENARIOS))
def scenario(request, specialty, other_specialty, doctor, other_doctor):
    SCENARIOS[request.param](specialty, other_specialty, doctor, other_doctor)
    return request.param


# --- The rules in Python, row by row -------------------------------------------------------------


def on_time(question) -> bool:
    return sla.answered_state(question.first_answered_at, question.due_at) == sla.MET


def past_due(question, now) -> bool:
    """Waiting for a doctor with no first answer, its first-answer clock breached at `now`."""
    warn_at = question.submitted_at + (question.due_at - question.submitted_at) * WARN_FRACTION
    return (
        question.status == QuestionStatus.OPEN
        and question.first_answered_at is None
        and sla.clock_state(warn_at, question.due_at, now) == sla.BREACHED
    )


def percentiles(seconds: list[float]) -> tuple[float | None, float | None]:
    """Median and 90th percentile with linear interpolation (PostgreSQL's percentile_cont)."""
    if not seconds:
        return None, None
    if len(seconds) == 1:
        return seconds[0], seconds[0]
    return statistics.median(seconds), statistics.quantiles(seconds, n=10, method="inclusive")[8]


def expected_period(period) -> dict:
    """{(scope, pk): (received, answered, within, answered_late, open_past_due, median, p90)} for every
    scope with something to count; doctors' rows count answers only (None for the others)."""
    counts, seconds = {}, {}
    for question in Question.objects.all():
        answered_in = bool(question.first_answered_at and period.start <= question.first_answered_at <= period.end)
        question_counts = (
            period.start <= question.submitted_at <= period.end,
            answered_in,
            answered_in and on_time(question),
            answered_in and not on_time(question),
            question.due_at >= period.start and past_due(question, period.end),
        )
        scopes = [("all", None), ("specialty", question.specialty_id)]
        if question.answered_by_id is not None:
            scopes.append(("doctor", question.answered_by_id))
        for scope in scopes:
            row = counts.setdefault(scope, [0] * 5)
            row[:] = [total + int(count) for total, count in zip(row, question_counts, strict=True)]
            if answered_in:
                seconds.setdefault(scope, []).append(
                    (question.first_answered_at - question.submitted_at).total_seconds()
                )
    expected = {}
    for scope, row in counts.items():
        if scope[0] == "doctor":
            row[0] = row[4] = None
        if any(row):
            expected[scope] = (*row, *percentiles(sorted(seconds.get(scope, []))))
    return expected


def reported(report) -> dict:
    """The report in `expected_period`'s shape."""
    figures = {}
    for row in [report.total, *report.specialties, *report.doctors]:
        counts = (row.received, row.answered, row.within, row.answered_late, row.open_past_due)
        if row.scope == "doctor":
            counts = (None, *counts[1:4], None)
        if any(counts):
            figures[row.scope, row.pk] = (*counts, row.median_seconds, row.p90_seconds)
    return figures


def expected_trend(now, tz) -> dict:
    """{local date: [received, answered, within, open_past_due]} for the trend's days."""
    today = timezone.localtime(now, tz).date()
    days = {today - timedelta(days=n): [0, 0, 0, 0] for n in range(dashboard.TREND_DAYS)}

    def day(moment):
        return days.get(timezone.localtime(moment, tz).date()) if moment and moment <= now else None

    for question in Question.objects.all():
        if (row := day(question.submitted_at)) is not None:
            row[0] += 1
        if (row := day(question.first_answered_at)) is not None:
            row[1] += 1
            row[2] += on_time(question)
        if past_due(question, now) and (row := day(question.due_at)) is not None:
            row[3] += 1
    return days


# --- PostgreSQL's and the portable queries agree ---------------------------------------------------


@pytest.mark.parametrize("period_key", list(dashboard.PERIODS))
def test_period_report_is_the_same_by_both_implementations(scenario, period_key):
    both_implementations()
    period = dashboard.period_for(period_key, NOW)

    by_postgresql = dashboard.period_report(period, using=dashboard.POSTGRESQL)
    portable = dashboard.period_report(period, using=dashboard.PORTABLE)

    assert asdict(by_postgresql) == asdict(portable)
    assert dashboard.period_report_rows(by_postgresql) == dashboard.period_report_rows(portable)


@pytest.mark.parametrize("tz", ZONES, ids=str)
def test_trend_is_the_same_by_both_implementations(scenario, tz):
    both_implementations()

    by_postgresql = dashboard.daily_trend(NOW, tz, using=dashboard.POSTGRESQL)
    portable = dashboard.daily_trend(NOW, tz, using=dashboard.PORTABLE)

    assert [asdict(day) for day in by_postgresql] == [asdict(day) for day in portable]


def test_forecast_pace_is_the_same_by_both_implementations(scenario):
    both_implementations()

    by_postgresql = forecast.minutes_per_answer(NOW, forecast.postgresql_pace)
    portable = forecast.minutes_per_answer(NOW, forecast.portable_pace)

    # One median of seconds divided by 60, the other of minutes: equal up to rounding.
    assert by_postgresql == pytest.approx(portable, rel=1e-12)
    if scenario != "no_questions":  # the week's answers decide it, not the default
        assert by_postgresql != forecast.DEFAULT_MINUTES_PER_ANSWER


# --- Each follows the SLA rules, applied row by row in Python ---------------------------------------


@pytest.mark.parametrize("using", dashboard.IMPLEMENTATIONS)
@pytest.mark.parametrize("period_key", list(dashboard.PERIODS))
def test_period_report_follows_the_sla_rules(scenario, period_key, using):
    period = dashboard.period_for(period_key, NOW)

    report = dashboard.period_report(period, using=implementation(using))

    expected, figures = expected_period(period), reported(report)
    assert figures.keys() == expected.keys()
    for scope, row in figures.items():
        assert row[:5] == expected[scope][:5], scope
        assert row[5:] == pytest.approx(expected[scope][5:], rel=1e-12), scope


@pytest.mark.parametrize("using", dashboard.IMPLEMENTATIONS)
@pytest.mark.parametrize("tz", ZONES, ids=str)
def test_trend_follows_the_sla_rules(scenario, tz, using):
    days = dashboard.daily_trend(NOW, tz, using=implementation(using))

    assert {day.day: [day.received, day.answered, day.within, day.open_past_due] for day in days} == expected_trend(
        NOW, tz
    )


# --- The boundaries, spelled out -------------------------------------------------------------------


@pytest.mark.parametrize("using", dashboard.IMPLEMENTATIONS)
def test_an_answer_exactly_at_the_due_time_is_within_the_guarantee(specialty, doctor, using):
    for near in NEAR:
        answered(specialty, doctor, NOW - 3 * H, near)
        answered(specialty, doctor, NOW - 3 * H, near, is_urgent=True)

    total = dashboard.period_report(dashboard.period_for("24h", NOW), using=implementation(using)).total
    (today,) = (day for day in dashboard.daily_trend(NOW, UTC, using=using) if day.day == NOW.date())

    # -1 s, -1 µs and 0 are on time; +1 µs and +1 s late, for normal and urgent questions alike.
    assert (total.answered, total.within, total.answered_late) == (10, 6, 4)
    assert (today.answered, today.within) == (10, 6)


@pytest.mark.parametrize("using", dashboard.IMPLEMENTATIONS)
def test_an_open_question_is_past_due_only_after_its_due_time(specialty, using):
    for near in NEAR:
        waiting(specialty, NOW + near)
        paused(specialty, NOW + near)

    total = dashboard.period_report(dashboard.period_for("24h", NOW), using=implementation(using)).total
    (today,) = (day for day in dashboard.daily_trend(NOW, UTC, using=using) if day.day == NOW.date())

    # Due 1 s and 1 µs ago: past due. Due now or later: not yet. Paused: never (the patient owes a reply).
    assert total.open_past_due == today.open_past_due == 2
    assert dashboard.now_figures(NOW).breached == 2
