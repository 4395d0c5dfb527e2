"""The catch-up phase's table rows (bench/catchup.py): verdicts from the measured figures."""

from bench import report

MEASURED = {
    "questions": 100_000,
    "workers": 2,
    "escalations_written_seconds": 42.0,
    "emails_sent_seconds": 400.0,
    "escalated_questions": 100_000,
    "duplicate_escalations": 0,
    "duplicate_emails": 0,
    "emails": 500_000,
    "emails_sent": 500_000,
    "emails_sent_max_attempts": 1,
    "emails_per_second": 1250.0,
    "first_email_after_seconds": 1.5,
    "sweeps_that_escalated": [60_000, 40_000],
    "breached_by_worker": {"catchup-worker-1": 60_000, "catchup-worker-2": 40_000},
    "sweep_errors": 0,
    "backend_alone": {"processes": 2, "messages": 10_000, "seconds": 7.0, "per_second": 1400.0, "delay_ms": 0.0},
    "share_of_backend_rate": 1250 / 1400,
}


def catchup_rows(entry):
    return {row.key: row for row in report.rows({"catchup": entry}) if row.key.startswith("catchup.")}


def test_a_catch_up_within_a_minute_without_duplicates_at_the_backends_pace_passes():
    rows = catchup_rows(MEASURED)
    assert [rows[key].passed for key in ("catchup.escalations", "catchup.emails", "catchup.email_rate")] == [
        True,
        True,
        True,
    ]
    assert "catchup-worker-2: 40,000" in rows["catchup.escalations"].figure
    assert (
        "89.3 %" in rows["catchup.email_rate"].figure and "the limit: the backend" in rows["catchup.email_rate"].figure
    )


def test_late_duplicated_or_outbox_bound_catch_ups_fail():
    assert catchup_rows({**MEASURED, "escalations_written_seconds": 61.0})["catchup.escalations"].passed is False
    assert catchup_rows({**MEASURED, "duplicate_escalations": 1})["catchup.escalations"].passed is False
    assert catchup_rows({**MEASURED, "duplicate_emails": 2})["catchup.emails"].passed is False
    unfinished = catchup_rows({**MEASURED, "escalations_written_seconds": None, "emails_sent": 10})
    assert unfinished["catchup.escalations"].passed is False and unfinished["catchup.emails"].passed is False
    slow = catchup_rows({**MEASURED, "share_of_backend_rate": 0.07})["catchup.email_rate"]
    assert slow.passed is False and "the limit: the outbox (us)" in slow.figure


def test_a_missing_catch_up_says_why_without_a_verdict():
    rows = catchup_rows({"available": False, "reason": "the Celery workers did not start"})
    assert list(rows) == ["catchup.escalations"]
    assert "did not start" in rows["catchup.escalations"].figure and rows["catchup.escalations"].passed is None
