"""The settings the tests assume, pinned whatever the developer's shell exports.

portal/settings.py reads these from the environment, so `SLA_ANSWER_HOURS=6 make test`
would otherwise change what every clock-dependent test sees. tests/conftest.py applies
them to every test; `ENV` hands the same values to the processes that integration and
production tests start. The factories build clocks from these numbers, not from the code
under test.
"""

SETTINGS = {
    # The answer guarantee.
    "SLA_ANSWER_HOURS": 4.0,
    "SLA_URGENT_ANSWER_HOURS": 1.0,
    "SLA_WARN_FRACTION": 0.75,
    "SLA_SWEEP_SECONDS": 30,
    "SLA_SWEEP_BATCH_SIZE": 500,
    "SLA_SWEEP_PARALLEL": 4,
    "SLA_STAFF_GROUP": "SLA staff",
    "SLA_BREACH_CREDIT": "free_question",
    # Time.
    "TIME_ZONE": "UTC",
    # The outbox.
    "NOTIFICATION_RESEND_SECONDS": 60,
    "NOTIFICATION_SEND_LOCK_SECONDS": 300,
    "EMAIL_TIMEOUT": 20,
    # Who is on duty, and new-work e-mails.
    "DUTY_SWITCH_ON_HOURS": 8.0,
    "NEW_WORK_EMAIL_MINUTES": 15,
    "DUTY_FALLBACK_SPECIALTY": "general-medicine",
    "DUTY_COVER_CHECK_SECONDS": 300,
    "WORKBENCH_POLL_SECONDS": 15,
    "ARTICLE_REVIEW_MONTHS": 12,
    # Sessions.
    "SESSION_COOKIE_AGE": 14 * 24 * 3600,
    "STAFF_SESSION_IDLE_SECONDS": 30 * 60,
    "PATIENT_SESSION_IDLE_SECONDS": 60 * 60,
    "PATIENT_REMEMBER_DAYS": 7,
    # Workers.
    "WORKER_LOST_RETRY_SECONDS": 10,
    "WORKER_MAX_MESSAGE_BYTES": 1024 * 1024,
    # Login limits (tests/security turns the limits on where it checks them).
    "AXES_FAILURE_LIMIT": 5,
    "LOGIN_IP_FAILURE_LIMIT": 30,
    "LOGIN_ACCOUNT_FAILURE_LIMIT": 10,
    "TRUSTED_PROXY_COUNT": 0,
}

# The same values as environment variables, for the processes tests start. Where a
# process needs another value (a one-second sweep), it says so after these.
ENV = {name: str(value) for name, value in SETTINGS.items()}
