"""The dashboard's figures on known data, at a fixed `now`: exact counts, shares and percentiles."""

import zoneinfo
from datetime import UTC, date, datetime, timedelta

import pytest

from consultations import dashboard, sla
from consultations.models import Escalation, EscalationLevel, QuestionStatus, SweepRun
from tests.factories import QuestionFactory, SpecialtyFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.fixture(autouse=True)
def _sla_settings(settings):
    settings.SLA_ANSWER_HOURS = 4
    settings.SLA_URGENT_ANSWER_HOURS = 1
    settings.SLA_WARN_FRACTION = 0.75
    settings.SLA_SWEEP_SECONDS = 30


def answered(specialty, doctor, submitted_ago, after):
    return QuestionFactory(
        specialty=specialty,
        submitted_at=NOW - submitted_ago,
        answered_after=after,
        answered_by=doctor,
        claimed_by=doctor,
    )


def waiting(specialty, submitted_ago, **fields):
    return QuestionFactory(specialty=specialty, submitted_at=NOW - submitted_ago, **fields)


@pytest.fixture
def clinic(specialty, other_specialty, doctor, other_doctor, senior_doctor, unverified_doctor):
    """A day at the clinic, seen at NOW (2025-03-10 12:00 UTC), with a 4-hour guarantee.

    Dermatology (doctor): six answers in the last 24 h after 1, 2, 3, 3.5, 5 and 6
    hours (the last two late), one question unanswered 2 h past due, one at risk,
    one on track. Cardiology (other doctor): five answers after 2 (received 25 h
    ago), 0.5, 1, 1.5 and 2 hours, one question 1 h past due that the
    other doctor has claimed, and one paused waiting for the patient.
    Long ago: one question received and answered 40 h ago.
    """
    q = {}
    for name, ago, after in [
        ("d1", 20 * H, 1 * H),
        ("d2", 19 * H, 2 * H),
        ("d3", 18 * H, 3 * H),
        ("d4", 17 * H, 3.5 * H),
        ("d5", 16 * H, 5 * H),
        ("d6", 15 * H, 6 * H),
    ]:
        q[name] = answered(specialty, doctor, ago, after)
    q["d7_past_due"] = waiting(specialty, 6 * H)
    q["d8_at_risk"] = waiting(specialty, 3.5 * H, claimed_by=doctor, claimed_at=NOW - H)
    q["d9_on_track"] = waiting(specialty, 1 * H)
    for name, ago, after in [
        ("c0", 25 * H, 2 * H),
        ("c1", 10 * H, 0.5 * H),
        ("c2", 9 * H, 1 * H),
        ("c3", 8 * H, 1.5 * H),
        ("c4", 7 * H, 2 * H),
    ]:
        q[name] = answered(other_specialty, other_doctor, ago, after)
    q["c6_past_due"] = waiting(other_specialty, 5 * H, claimed_by=other_doctor, claimed_at=NOW - 4 * H)
    # Asked the patient for more 4 h ago: its due time has passed, but the clock is paused.
    q["c7_paused"] = waiting(
        other_specialty,
        5 * H,
        status=QuestionStatus.INFO_REQUESTED,
        clock_paused_at=NOW - 4 * H,
        claimed_by=other_doctor,
        claimed_at=NOW - 4 * H,
    )
    q["old"] = answered(specialty, doctor, 40 * H, 1 * H)

    for question, level, ago in [
        (q["d5"], EscalationLevel.BREACHED, 12 * H),
        (q["d7_past_due"], EscalationLevel.BREACHED, 2 * H),
        (q["c6_past_due"], EscalationLevel.AT_RISK, 2 * H),
        (q["c6_past_due"], EscalationLevel.BREACHED, 1 * H),
        (q["old"], EscalationLevel.AT_RISK, 38 * H),
    ]:
        Escalation.objects.create(
            question=question,
            level=level,
            clock_due_at=question.due_at,
            created_at=NOW - ago,
            recipients=["sla.staff@example.com"],
        )
    return q


def report(key="24h"):
    return dashboard.period_report(dashboard.period_for(key, NOW))


def test_period_totals_count_late_answers_and_open_past_due_as_breaches(clinic):
    total = report().total
    assert total.received == 15  # c0 and the old question were received before the window
    assert total.answered == 11
    assert total.within == 9
    assert total.answered_late == 2
    assert total.open_past_due == 2  # the paused question is not counted: the patient owes a reply
    assert total.breaches == 4
    assert total.compliance == 9 / 13
    assert total.escalations == 4
    assert total.breach_escalations == 3


def test_median_and_90th_percentile_time_to_first_answer_are_exact(clinic):
    total = report().total
    # Sorted answer times in hours: 0.5 1 1 1.5 2 2 2 3 3.5 5 6
    assert total.median_seconds == 2 * 3600
    assert total.p90_seconds == 5 * 3600


def test_per_specialty_figures(clinic, specialty, other_specialty):
    rows = {row.pk: row for row in report().specialties}
    derm, cardio = rows[specialty.pk], rows[other_specialty.pk]

    assert (derm.received, derm.answered, derm.within, derm.answered_late, derm.open_past_due) == (9, 6, 4, 2, 1)
    assert derm.compliance == 4 / 7
    assert derm.median_seconds == 3.25 * 3600  # between 3 h and 3.5 h
    assert derm.p90_seconds == 5.5 * 3600  # between 5 h and 6 h
    assert (derm.escalations, derm.breach_escalations) == (2, 2)

    assert (cardio.received, cardio.answered, cardio.within, cardio.answered_late, cardio.open_past_due) == (
        6,
        5,
        5,
        0,
        1,
    )
    assert cardio.compliance == 5 / 6
    assert cardio.median_seconds == 1.5 * 3600
    assert cardio.p90_seconds == 2 * 3600
    assert (cardio.escalations, cardio.breach_escalations) == (2, 1)


def test_per_doctor_figures(clinic, doctor, other_doctor, senior_doctor, unverified_doctor):
    rows = {row.pk: row for row in report().doctors}
    assert unverified_doctor.pk not in rows  # never answered, holds nothing: not listed

    mine = rows[doctor.pk]
    assert (mine.answered, mine.within, mine.answered_late, mine.open_claims) == (6, 4, 2, 1)
    assert mine.compliance == 4 / 6
    assert mine.median_seconds == 3.25 * 3600
    assert mine.p90_seconds == 5.5 * 3600

    cardio = rows[other_doctor.pk]
    assert (cardio.answered, cardio.within, cardio.open_claims) == (5, 5, 2)  # the paused one is still claimed
    assert cardio.compliance == 1
    assert cardio.median_seconds == 1.5 * 3600
    assert cardio.p90_seconds == 2 * 3600

    idle = rows[senior_doctor.pk]
    assert (idle.answered, idle.open_claims, idle.compliance, idle.median_seconds) == (0, 0, None, None)


def test_answer_with_no_doctor_on_record_counts_for_the_service_and_specialty_only(clinic, specialty, doctor):
    # E.g. the answering doctor's profile was removed since: answered_by is empty.
    QuestionFactory(specialty=specialty, submitted_at=NOW - 2 * H, answered_after=0.5 * H)

    result = report()

    assert (result.total.answered, result.total.within) == (12, 10)
    # Sorted answer times in hours: 0.5 0.5 1 1 1.5 2 2 2 3 3.5 5 6
    assert (result.total.median_seconds, result.total.p90_seconds) == (2 * 3600, 4.85 * 3600)
    derm = next(row for row in result.specialties if row.pk == specialty.pk)
    assert (derm.answered, derm.within, derm.median_seconds) == (7, 5, 3 * 3600)
    assert sum(row.answered for row in result.doctors) == 11
    assert next(row for row in result.doctors if row.pk == doctor.pk).answered == 6


def test_longer_periods_include_older_questions_and_escalations(clinic):
    week = report("7d").total
    assert (week.received, week.answered, week.within) == (17, 12, 10)
    assert week.median_seconds == 2 * 3600
    assert (week.escalations, week.breach_escalations) == (5, 3)
    assert report("30d").total.received == 17


def test_unknown_period_falls_back_to_the_last_24_hours():
    period = dashboard.period_for("1y", NOW)
    assert (period.key, period.start, period.end) == ("24h", NOW - 24 * H, NOW)


def test_empty_period_has_no_share_and_no_percentiles():
    total = report().total
    assert (total.received, total.answered, total.breaches) == (0, 0, 0)
    assert total.compliance is None
    assert total.median_seconds is None and total.p90_seconds is None


def test_now_counts_open_questions_by_clock_state(clinic, specialty, other_specialty):
    figures = dashboard.now_figures(NOW)
    assert (figures.on_track, figures.at_risk, figures.breached, figures.waiting_for_patient) == (1, 1, 2, 1)
    assert figures.open == 4

    rows = {row.pk: row for row in figures.specialties}
    derm, cardio = rows[specialty.pk], rows[other_specialty.pk]
    assert (derm.open, derm.on_track, derm.at_risk, derm.breached, derm.verified_doctors) == (3, 1, 1, 1, 2)
    assert (cardio.open, cardio.breached, cardio.waiting_for_patient, cardio.verified_doctors) == (1, 1, 1, 1)


def test_oldest_waiting_question_is_the_one_whose_clock_started_first(clinic):
    oldest = dashboard.now_figures(NOW).oldest
    assert oldest.question_id == clinic["d7_past_due"].pk
    assert oldest.waiting_seconds == 6 * 3600
    assert oldest.state == sla.BREACHED


def test_specialty_without_questions_or_doctors_is_still_listed():
    lonely = SpecialtyFactory(name="Psychiatry", slug="psychiatry")
    rows = {row.pk: row for row in dashboard.now_figures(NOW).specialties}
    assert (rows[lonely.pk].open, rows[lonely.pk].verified_doctors) == (0, 0)
    assert {row.pk for row in report().specialties} == {lonely.pk}


def test_now_and_period_tables_list_specialties_in_the_clinics_order(specialty, doctor):
    # Names and sort order disagree, and the grouped "now" query has no order of its own.
    specialties = [SpecialtyFactory(name=name, slug=name.lower(), sort_order=n) for n, name in enumerate("ZYXWV")]
    for listed in specialties[::2]:
        waiting(listed, 1 * H)
    expected = [s.pk for s in sorted([*specialties, specialty], key=lambda s: (s.sort_order, s.name))]

    figures = dashboard.now_figures(NOW)

    assert [row.pk for row in figures.specialties] == expected
    assert [row.pk for row in report().specialties] == expected
    shared = dashboard.period_report(
        dashboard.period_for("24h", NOW), [(row.pk, row.name) for row in figures.specialties]
    )
    assert [row.pk for row in shared.specialties] == expected


@pytest.mark.parametrize(
    ("offset", "state"),
    [
        (-timedelta(microseconds=1), sla.ON_TRACK),
        (timedelta(0), sla.AT_RISK),
        (timedelta(hours=1), sla.AT_RISK),  # exactly at the due time: not yet late
        (timedelta(hours=1, microseconds=1), sla.BREACHED),
    ],
)
def test_clock_state_boundaries_match_the_sla_rules(specialty, offset, state):
    question = waiting(specialty, 3 * H)  # warns at NOW, due at NOW + 1 h
    at = NOW + offset
    figures = dashboard.now_figures(at)
    counts = {sla.ON_TRACK: figures.on_track, sla.AT_RISK: figures.at_risk, sla.BREACHED: figures.breached}
    assert counts == {key: int(key == state) for key in counts}
    assert sla.sla_state(question, at) == state


def test_sweep_is_stale_after_three_intervals():
    SweepRun.objects.create(started_at=NOW - timedelta(seconds=95), finished_at=NOW - timedelta(seconds=91))
    assert dashboard.sweep_status(NOW).stale is True
    SweepRun.objects.create(started_at=NOW - timedelta(seconds=41), finished_at=NOW - timedelta(seconds=40))
    SweepRun.objects.create(started_at=NOW - timedelta(seconds=2))  # still running: not a heartbeat yet
    status = dashboard.sweep_status(NOW)
    assert (status.stale, status.age_seconds, status.stale_after_seconds) == (False, 40, 90)
    assert status.age_display == "40 s ago"


def test_sweep_that_never_ran_is_stale_only_once_questions_wait(specialty):
    assert dashboard.sweep_status(NOW).stale is False  # a fresh install
    waiting(specialty, timedelta(minutes=5))
    status = dashboard.sweep_status(NOW)
    assert (status.stale, status.age_display) == (True, "never")
    assert "No SLA sweep has run yet" in status.problem


def test_daily_trend_counts_volume_and_compliance_per_day(clinic):
    days = {day.day: day for day in dashboard.daily_trend(NOW, UTC)}
    assert len(days) == 30
    assert min(days) == date(2025, 2, 9) and max(days) == date(2025, 3, 10)

    today, yesterday, before = days[date(2025, 3, 10)], days[date(2025, 3, 9)], days[date(2025, 3, 8)]
    assert (today.received, today.answered, today.within, today.open_past_due) == (9, 6, 4, 2)
    assert today.compliance == 4 / 8
    assert (yesterday.received, yesterday.answered, yesterday.within) == (7, 5, 5)
    assert yesterday.compliance == 1
    assert (before.received, before.answered, before.within) == (1, 1, 1)
    assert days[date(2025, 3, 1)].compliance is None


def test_daily_trend_follows_the_viewers_time_zone(clinic):
    tokyo = zoneinfo.ZoneInfo("Asia/Tokyo")  # UTC+9: it is already 21:00 on 10 March there
    days = {day.day: day for day in dashboard.daily_trend(NOW, tokyo)}
    assert days[date(2025, 3, 10)].received == 15
    assert days[date(2025, 3, 9)].received == 2


def test_trend_chart_draws_a_bar_per_day_and_breaks_the_line_on_days_without_figures(clinic):
    chart = dashboard.trend_chart(dashboard.daily_trend(NOW, UTC))
    assert len(chart.bars) == 30
    assert chart.max_volume == 10  # 9 received on the busiest day, rounded up for the axis
    assert [bar.height for bar in chart.bars[-3:]] == [
        round((chart.plot_bottom - chart.plot_top) * n / 10, 1) for n in (1, 7, 9)
    ]
    assert [label.text for label in chart.volume_labels] == ["0", "5", "10"]
    assert chart.x_labels[-1].text == "10 Mar" and len(chart.x_labels) == 5
    assert len(chart.points) == 3  # 8, 9 and 10 March have answers or breaches
    assert len(chart.lines) == 1
    # Full compliance sits on the top gridline.
    assert chart.points[1].y == chart.plot_top


@pytest.mark.parametrize(("busiest", "axis"), [(0, 2), (1, 2), (3, 4), (10, 10), (11, 20), (45, 50), (1769, 2000)])
def test_volume_axis_ends_on_a_round_number(busiest, axis):
    assert dashboard.nice_ceiling(busiest) == axis


def test_percentile_fallback_matches_postgresql_interpolation():
    assert dashboard.percentile_cont([], 0.5) is None
    assert dashboard.percentile_cont([7.0], 0.9) == 7.0
    assert dashboard.percentile_cont([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert dashboard.percentile_cont([0.0, 10.0, 20.0, 30.0, 40.0, 50.0], 0.9) == 45.0


def test_csv_rows_carry_the_report_figures(clinic, specialty):
    rows = dashboard.period_report_rows(report())
    total = rows[0]
    assert total["scope"] == "all"
    assert (total["received"], total["answered"], total["breaches"]) == ("15", "11", "4")
    assert total["compliance_percent"] == "69.2"
    assert (total["median_minutes_to_first_answer"], total["p90_minutes_to_first_answer"]) == ("120.0", "300.0")
    derm = next(row for row in rows if row["scope"] == "specialty" and row["name"] == specialty.name)
    assert (derm["compliance_percent"], derm["median_minutes_to_first_answer"]) == ("57.1", "195.0")


def test_attention_lists_put_the_most_late_first_with_reassign_choices(
    clinic, specialty, doctor, senior_doctor, unverified_doctor
):
    also_late = waiting(specialty, 4.5 * H)  # due 30 minutes ago
    lists = dashboard.attention_lists(NOW)
    breached = [item.question.pk for item in lists["breached"]]
    assert breached == [clinic["d7_past_due"].pk, clinic["c6_past_due"].pk, also_late.pk]
    assert [item.question.pk for item in lists["at_risk"]] == [clinic["d8_at_risk"].pk]

    first = lists["breached"][0]
    assert first.time_display == "2 h 00 min over"
    assert [choice.pk for choice in first.doctors] == [doctor.pk, senior_doctor.pk]  # verified only, by name
    assert lists["at_risk"][0].time_display == "30 min left"


def test_latest_escalations_newest_first_with_recipients(clinic):
    items = dashboard.latest_escalations()
    assert [item.escalation.created_at for item in items] == sorted(
        (item.escalation.created_at for item in items), reverse=True
    )
    assert items[0].escalation.question_id == clinic["c6_past_due"].pk
    assert items[0].escalation.recipients == ["sla.staff@example.com"]


def test_prometheus_text_lists_states_specialties_and_the_sweep(clinic, specialty):
    text = dashboard.now_as_prometheus(dashboard.now_figures(NOW))
    assert 'portal_sla_open_questions{state="breached"} 2\n' in text
    assert f'portal_sla_specialty_open_questions{{specialty="{specialty.slug}",state="at_risk"}} 1\n' in text
    assert "portal_sla_sweep_stale 1\n" in text
    assert "portal_sla_sweep_age_seconds -1\n" in text


def test_durations_read_naturally():
    assert dashboard.format_duration(None) == "–"
    assert dashboard.format_duration(20) == "< 1 min"
    assert dashboard.format_duration(12 * 60) == "12 min"
    assert dashboard.format_duration(-(2 * 3600 + 5 * 60)) == "2 h 05 min"
    assert dashboard.format_duration(3 * 86400 + 4 * 3600) == "3 d 4 h"
