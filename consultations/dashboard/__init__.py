"""The staff SLA dashboard's figures: plain functions of `now`, computed by the database.

Each module reads alone:

- `now`: open questions by SLA state, overall and per specialty, the oldest waiting, the sweep;
- `period`: the period report (24 h, 7 or 30 days), overall, per specialty and per doctor;
  its answers' counts and percentiles come from `answers`;
- `trend`: the 30-day trend per local calendar day, and `chart`, its SVG's geometry;
- `lists`: the breached, at-risk and likely-to-breach lists, and the latest escalations;
- `exports`: the "now" figures as JSON and Prometheus text, the period report as CSV;
- `formatting`: durations, shares and local times as staff read them;
- `clock`: every due / warn boundary the dashboard writes, in one place;
- `db`: database helpers, and the choice between PostgreSQL's and the portable queries.

PostgreSQL is the production path: every count, and the median and 90th
percentile of the time to first answer, come from grouped aggregate queries
(`percentile_cont(...) WITHIN GROUP`), a fixed number per page, never one per
row: the period's answers are read once for every scope (GROUPING SETS), the
30-day trend is one statement of per-day index ranges. Where a figure has a
PostgreSQL query, it also has a portable one (SQLite has no `percentile_cont`
and no LATERAL): the answers' percentiles are then interpolated in Python with
PostgreSQL's formula. Each is chosen by the database by default and can be
asked for by name (`using="postgresql"` or `"portable"`); the portable ones run
on PostgreSQL too, where tests/consultations/test_dashboard_agreement.py checks
that both give the same figures on the same data.

The definitions behind every figure (page, CSV, JSON and Prometheus alike):

- open: a doctor's answer is owed and its clock runs (`clock_due_at` set, not
  paused). On track before `clock_warn_at`, at risk from it, breached strictly
  after `clock_due_at` (the same boundaries as `sla.clock_state`).
- received in a period: submitted in it; answered: first answer given in it;
  within the guarantee: `first_answered_at <= due_at`; answered late: after it.
- open past due in a period: no first answer yet, waiting for a doctor, and its
  due time passed within the period.
- breaches = answered late + open past due.
- compliance = answered within the guarantee / (answered + open past due): a
  question nobody has answered counts against the promise as soon as it is late,
  not only once its late answer arrives.
"""

from consultations.dashboard.answers import PERCENTILES, percentile_cont
from consultations.dashboard.chart import TrendChart, nice_ceiling, trend_chart
from consultations.dashboard.db import IMPLEMENTATIONS, PORTABLE, POSTGRESQL
from consultations.dashboard.exports import (
    CREDIT_COLUMNS,
    CSV_COLUMNS,
    credit_cells,
    now_as_dict,
    now_as_prometheus,
    period_report_rows,
)
from consultations.dashboard.formatting import LocalTime, format_duration, format_share
from consultations.dashboard.lists import (
    ESCALATION_LIMIT,
    LIST_LIMIT,
    AttentionItem,
    EscalationItem,
    ForecastItem,
    attention_lists,
    latest_escalations,
    likely_to_breach,
    mark_reassign_error,
    question_admin_url,
    question_admin_urls,
    reassign_choices,
)
from consultations.dashboard.now import NowFigures, OldestWaiting, SpecialtyNow, SweepStatus, now_figures, sweep_status
from consultations.dashboard.period import (
    DEFAULT_PERIOD,
    PERIODS,
    Period,
    PeriodReport,
    PeriodRow,
    breach_credit_counts,
    period_for,
    period_report,
)
from consultations.dashboard.trend import TREND_DAYS, TrendDay, daily_trend, local_day_starts

__all__ = [
    "CREDIT_COLUMNS",
    "CSV_COLUMNS",
    "DEFAULT_PERIOD",
    "ESCALATION_LIMIT",
    "IMPLEMENTATIONS",
    "LIST_LIMIT",
    "PERCENTILES",
    "PERIODS",
    "PORTABLE",
    "POSTGRESQL",
    "TREND_DAYS",
    "AttentionItem",
    "EscalationItem",
    "ForecastItem",
    "LocalTime",
    "NowFigures",
    "OldestWaiting",
    "Period",
    "PeriodReport",
    "PeriodRow",
    "SpecialtyNow",
    "SweepStatus",
    "TrendChart",
    "TrendDay",
    "attention_lists",
    "breach_credit_counts",
    "credit_cells",
    "daily_trend",
    "format_duration",
    "format_share",
    "latest_escalations",
    "likely_to_breach",
    "local_day_starts",
    "mark_reassign_error",
    "nice_ceiling",
    "now_as_dict",
    "now_as_prometheus",
    "now_figures",
    "percentile_cont",
    "period_for",
    "period_report",
    "period_report_rows",
    "question_admin_url",
    "question_admin_urls",
    "reassign_choices",
    "sweep_status",
    "trend_chart",
]
