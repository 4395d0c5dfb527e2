"""The catch-up phase (bench/catchup.py): its rows' verdicts from the figures, how it finds its questions."""

import pytest

from bench import catchup, report

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
    "emails_per_second_after_escalations": 1330.0,
    "share_after_escalations": 1330 / 1400,
    "load_average": [1.5, 2.5],
    "mail_server": {
        "kind": "smtp",
        "backend": "django.core.mail.backends.smtp.EmailBackend",
        "sent_in_window": 500_003,  # three cover alerts went out meanwhile
        "messages": 500_003,
        "recipients": 500_003,
        "cpu_us_per_message": 120,
    },
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
    rate = rows["catchup.email_rate"]
    assert "89.3 %" in rate.figure and "the limit: the backend" in rate.figure
    assert "1,330.0/s once every escalation was written (95.0 % of the backend alone)" in rate.figure
    assert "SMTP backend" in rate.label and "ceiling" not in rate.label
    assert "the SMTP server counted 500,003 messages" in rows["catchup.emails"].figure
    assert "as many as the database marked sent" in rows["catchup.emails"].figure


def test_late_duplicated_or_outbox_bound_catch_ups_fail():
    assert catchup_rows({**MEASURED, "escalations_written_seconds": 61.0})["catchup.escalations"].passed is False
    assert catchup_rows({**MEASURED, "duplicate_escalations": 1})["catchup.escalations"].passed is False
    assert catchup_rows({**MEASURED, "duplicate_emails": 2})["catchup.emails"].passed is False
    unfinished = catchup_rows({**MEASURED, "escalations_written_seconds": None, "emails_sent": 10})
    assert unfinished["catchup.escalations"].passed is False and unfinished["catchup.emails"].passed is False
    slow = catchup_rows({**MEASURED, "share_of_backend_rate": 0.07})["catchup.email_rate"]
    assert slow.passed is False and "the limit: the outbox (us)" in slow.figure


def test_an_e_mail_the_smtp_server_did_not_count_fails_the_catch_up():
    lost = {**MEASURED, "mail_server": {**MEASURED["mail_server"], "messages": 499_999}}
    assert catchup_rows(lost)["catchup.emails"].passed is False
    assert "the database marked 500,003 sent" in catchup_rows(lost)["catchup.emails"].figure
    twice = {**MEASURED, "mail_server": {**MEASURED["mail_server"], "messages": 500_004}}
    assert catchup_rows(twice)["catchup.emails"].passed is False


def test_the_zero_cost_sink_is_labelled_as_our_own_ceiling():
    entry = {**MEASURED, "mail_server": {"kind": "sink", "sent_in_window": 500_000}}
    rows = catchup_rows(entry)
    assert "our own ceiling" in rows["catchup.email_rate"].label
    assert "0.0 ms per message" in rows["catchup.email_rate"].figure
    # Nothing counted on the far side: the database's count decides.
    assert rows["catchup.emails"].passed is True and "SMTP server" not in rows["catchup.emails"].figure


def test_a_missing_catch_up_says_why_without_a_verdict():
    rows = catchup_rows({"available": False, "reason": "the Celery workers did not start"})
    assert list(rows) == ["catchup.escalations"]
    assert "did not start" in rows["catchup.escalations"].figure and rows["catchup.escalations"].passed is None


def test_the_harness_finds_the_catch_up_questions_by_their_id_range():
    # The polls run while the workers work: a lookup naming 10^5 ids took them a core.
    assert catchup.of_questions([7, 5, 6]) == {"question_id__gte": 5, "question_id__lte": 7}
    with pytest.raises(ValueError, match="not consecutive"):
        catchup.of_questions([5, 7])


def test_the_rate_row_splits_the_machine_per_email_against_the_backend_alone():
    measured = {
        **MEASURED,
        "backend_alone": {**MEASURED["backend_alone"], "machine_busy_us_per_message": 619, "idle_us_per_message": 55},
        "cpu_per_email_after_escalations": {
            "workers_us": 562,
            "split_us": {
                "PostgreSQL backends (bench database)": 110,
                "PostgreSQL server processes (WAL, checkpoints; shared)": 3,
                "rest of the machine": 186,
                "whole machine": 978,
                "idle": 124,
            },
        },
    }
    figure = catchup_rows(measured)["catchup.email_rate"].figure
    assert "the machine per e-mail: 978 µs busy + 124 idle (PostgreSQL 113, kernel and other processes 186)" in figure
    assert "against the backend alone's 619 + 55" in figure
    assert "the machine per e-mail" not in catchup_rows(MEASURED)["catchup.email_rate"].figure


def test_the_rate_row_names_the_backend_alone_runs_and_divides_by_the_fastest():
    alone = {**MEASURED["backend_alone"], "runs_per_second": [1388.2, 1400.0]}
    rate = catchup_rows({**MEASURED, "backend_alone": alone})["catchup.email_rate"]
    assert "1,400.0/s from 2 processes, the fastest of 2 runs: 1,388.2/s and 1,400.0/s" in rate.figure


def test_the_backend_alone_counts_its_fastest_run(monkeypatch):
    rates = iter([1388.2, 1757.0])
    monkeypatch.setattr(
        catchup.mail, "backend_rate", lambda *args, **kwargs: {"per_second": next(rates), "processes": 2}
    )
    monkeypatch.setattr(catchup, "connection", _NoDatabase())

    class _Rows:
        def filter(self, **lookup):
            return self

        def order_by(self, *fields):
            return []

    from consultations import models

    monkeypatch.setattr(models.Notification, "objects", _Rows())
    alone = catchup._backend_alone({"question_id__gte": 1, "question_id__lte": 2}, server=None)
    assert (alone["per_second"], alone["runs_per_second"]) == (1757.0, [1388.2, 1757.0])


class _NoDatabase:
    """Stands in for the bench's connection: the CHECKPOINT is refused, as for a user who may not."""

    def cursor(self):
        from django.db import DatabaseError

        raise DatabaseError("must be superuser to do CHECKPOINT")

    def close(self):
        pass
