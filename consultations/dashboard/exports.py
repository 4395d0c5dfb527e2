"""The figures for machines: the "now" figures as JSON and in Prometheus's text format, and the
period report as CSV rows."""

from consultations.dashboard.now import NowFigures
from consultations.dashboard.period import PeriodReport
from consultations.models import CreditKind

# --- JSON -------------------------------------------------------------------------------


def now_as_dict(figures: NowFigures) -> dict:
    """The "now" figures for monitoring (JSON)."""
    oldest = figures.oldest
    return {
        "generated_at": figures.now.isoformat(),
        "open": {
            "total": figures.open,
            "on_track": figures.on_track,
            "at_risk": figures.at_risk,
            "breached": figures.breached,
        },
        "waiting_for_patient": figures.waiting_for_patient,
        "oldest_waiting": None
        if oldest is None
        else {
            "question_id": oldest.question_id,
            "specialty": oldest.specialty,
            "waiting_since": oldest.waiting_since.isoformat(),
            "waiting_seconds": round(oldest.waiting_seconds, 3),
            "is_follow_up": oldest.is_follow_up,
            "state": oldest.state,
        },
        "sweep": {
            "age_seconds": figures.sweep.age_seconds,
            "stale_after_seconds": figures.sweep.stale_after_seconds,
            "stale": figures.sweep.stale,
            "problem": figures.sweep.problem,
        },
        "specialties": [
            {
                "slug": row.slug,
                "name": row.name,
                "open": row.open,
                "on_track": row.on_track,
                "at_risk": row.at_risk,
                "breached": row.breached,
                "waiting_for_patient": row.waiting_for_patient,
                "verified_doctors": row.verified_doctors,
            }
            for row in figures.specialties
        ],
    }


# --- Prometheus -------------------------------------------------------------------------


def _prometheus_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def now_as_prometheus(figures: NowFigures) -> str:
    """The "now" figures in the Prometheus text exposition format (version 0.0.4)."""
    lines = [
        "# HELP portal_sla_open_questions Questions owed a doctor's answer, by SLA state.",
        "# TYPE portal_sla_open_questions gauge",
    ]
    for state in ("on_track", "at_risk", "breached"):
        lines.append(f'portal_sla_open_questions{{state="{state}"}} {getattr(figures, state)}')
    lines += [
        "# HELP portal_sla_waiting_for_patient_questions Questions whose clock is paused for the patient.",
        "# TYPE portal_sla_waiting_for_patient_questions gauge",
        f"portal_sla_waiting_for_patient_questions {figures.waiting_for_patient}",
        "# HELP portal_sla_oldest_waiting_seconds How long the longest-waiting question has waited.",
        "# TYPE portal_sla_oldest_waiting_seconds gauge",
        f"portal_sla_oldest_waiting_seconds {figures.oldest.waiting_seconds if figures.oldest else 0}",
        "# HELP portal_sla_sweep_age_seconds Seconds since an SLA sweep last finished or made progress (-1: never).",
        "# TYPE portal_sla_sweep_age_seconds gauge",
        f"portal_sla_sweep_age_seconds {-1 if figures.sweep.age_seconds is None else figures.sweep.age_seconds}",
        "# HELP portal_sla_sweep_stale 1 when the last sweep is older than three sweep intervals.",
        "# TYPE portal_sla_sweep_stale gauge",
        f"portal_sla_sweep_stale {int(figures.sweep.stale)}",
        *_specialty_lines(figures),
    ]
    return "\n".join(lines) + "\n"


def _specialty_lines(figures: NowFigures) -> list[str]:
    lines = [
        "# HELP portal_sla_specialty_open_questions Questions owed an answer, by specialty and SLA state.",
        "# TYPE portal_sla_specialty_open_questions gauge",
    ]
    for row in figures.specialties:
        slug = _prometheus_label(row.slug)
        for state in ("on_track", "at_risk", "breached"):
            lines.append(
                f'portal_sla_specialty_open_questions{{specialty="{slug}",state="{state}"}} {getattr(row, state)}'
            )
    lines += [
        "# HELP portal_verified_doctors Verified, active doctors by specialty.",
        "# TYPE portal_verified_doctors gauge",
    ]
    lines += [
        f'portal_verified_doctors{{specialty="{_prometheus_label(row.slug)}"}} {row.verified_doctors}'
        for row in figures.specialties
    ]
    return lines


# --- CSV --------------------------------------------------------------------------------

# Credits per kind, after the existing columns (whose order stays as it was).
CREDIT_COLUMNS = {f"breach_credits_{kind}": kind for kind in CreditKind.values if kind != CreditKind.NONE}

CSV_COLUMNS = [
    "period",
    "period_start",
    "period_end",
    "scope",
    "name",
    "received",
    "answered",
    "answered_within_guarantee",
    "answered_late",
    "open_past_due",
    "breaches",
    "compliance_percent",
    "median_minutes_to_first_answer",
    "p90_minutes_to_first_answer",
    "escalations",
    "breach_escalations",
    "open_claims",
    "breach_credits",
    *CREDIT_COLUMNS,
]


def _blank_if_none(value) -> str:
    return "" if value is None else str(value)


def period_report_rows(report: PeriodReport) -> list[dict[str, str]]:
    """The period report as CSV rows (same numbers as the page; blanks where a figure does not apply)."""
    period = report.period
    return [
        {
            "period": period.key,
            "period_start": period.start.isoformat(),
            "period_end": period.end.isoformat(),
            "scope": row.scope,
            "name": row.name,
            "received": _blank_if_none(row.received),
            "answered": str(row.answered),
            "answered_within_guarantee": str(row.within),
            "answered_late": str(row.answered_late),
            "open_past_due": str(row.open_past_due),
            "breaches": str(row.breaches),
            "compliance_percent": row.compliance_percent,
            "median_minutes_to_first_answer": row.median_minutes,
            "p90_minutes_to_first_answer": row.p90_minutes,
            "escalations": _blank_if_none(row.escalations),
            "breach_escalations": _blank_if_none(row.breach_escalations),
            "open_claims": _blank_if_none(row.open_claims),
            **credit_cells(row.breach_credits),
        }
        for row in [report.total, *report.specialties, *report.doctors]
    ]


def credit_cells(credits: dict[str, int] | None) -> dict[str, str]:
    """The credit columns of one CSV row: all of them, per kind; blanks where they do not apply."""
    if credits is None:
        return {"breach_credits": "", **dict.fromkeys(CREDIT_COLUMNS, "")}
    return {
        "breach_credits": str(sum(credits.values())),
        **{column: str(credits.get(kind, 0)) for column, kind in CREDIT_COLUMNS.items()},
    }
