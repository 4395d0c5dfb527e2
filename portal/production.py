"""Production refuses to start with unsafe settings (issue 12).

`portal/settings.py` calls `refuse_unsafe_production()` at import when
PRODUCTION=true, so `manage.py`, gunicorn and Celery (worker and beat) all stop
with ImproperlyConfigured naming each variable to fix, instead of serving with
a guessable key or writing patients' e-mails and reset links to a log.

This module is imported while settings load: it must not touch
`django.conf.settings` nor import anything that does.
"""

from django.core.exceptions import ImproperlyConfigured

# The same bar as Django's deploy check (security.W009).
SECRET_KEY_MIN_LENGTH = 50
SECRET_KEY_MIN_UNIQUE_CHARACTERS = 5
SECRET_KEY_INSECURE_PREFIX = "django-insecure-"  # noqa: S105 - a prefix to refuse, not a key
# The key settings.py falls back to outside production, and .env.example's placeholder.
DEVELOPMENT_SECRET_KEY = "insecure-local-development-key-change-me-0123456789-abcdefghij"  # noqa: S105
EXAMPLE_SECRET_KEY_MARKERS = ("change-me", "changeme")

# Backends that never deliver: the console and locmem ones print or keep the
# message, the dummy one drops it. SMTP and the file-based backend (the
# one-machine production shape) stay allowed, as do third-party backends.
UNDELIVERED_EMAIL_BACKENDS = {
    "django.core.mail.backends.console.EmailBackend": "prints every e-mail to the log",
    "portal.dev_email.SummaryEmailBackend": "logs one line per e-mail",
    "django.core.mail.backends.locmem.EmailBackend": "keeps every e-mail in memory",
    "django.core.mail.backends.dummy.EmailBackend": "drops every e-mail",
}

# Hashers a stolen password table falls to in hours: no salt, or one fast digest.
FAST_PASSWORD_HASHERS = {
    "MD5PasswordHasher",
    "UnsaltedMD5PasswordHasher",
    "SHA1PasswordHasher",
    "UnsaltedSHA1PasswordHasher",
    "CryptPasswordHasher",
}


def secret_key_problem(secret_key: str) -> str | None:
    if not secret_key:
        return "SECRET_KEY is not set."
    if secret_key == DEVELOPMENT_SECRET_KEY:
        return "SECRET_KEY is the development default."
    if any(marker in secret_key.lower() for marker in EXAMPLE_SECRET_KEY_MARKERS):
        return "SECRET_KEY is the example value from .env.example."
    if secret_key.startswith(SECRET_KEY_INSECURE_PREFIX):
        return f"SECRET_KEY starts with {SECRET_KEY_INSECURE_PREFIX!r}: it was generated for development."
    if len(secret_key) < SECRET_KEY_MIN_LENGTH or len(set(secret_key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS:
        return (
            f"SECRET_KEY is too weak: it needs at least {SECRET_KEY_MIN_LENGTH} characters, "
            f"{SECRET_KEY_MIN_UNIQUE_CHARACTERS} of them different."
        )
    return None


def email_backend_problem(backend: str) -> str | None:
    why = UNDELIVERED_EMAIL_BACKENDS.get(backend)
    if why is None:
        return None
    return (
        f"EMAIL_BACKEND {backend} {why}: patients' notifications and password-reset links would never "
        "arrive. Use django.core.mail.backends.smtp.EmailBackend (or the file-based backend on one machine)."
    )


def password_hasher_problem(hashers: list[str] | None) -> str | None:
    """The first hasher hashes every new password: it must be a slow, salted one."""
    if not hashers:
        return None  # Django's default: PBKDF2
    first = hashers[0]
    if first.rsplit(".", 1)[-1] in FAST_PASSWORD_HASHERS:
        return (
            f"FAST_PASSWORD_HASHER / PASSWORD_HASHERS puts {first} first: a fast or unsalted hash, "
            "for tests only. Unset FAST_PASSWORD_HASHER."
        )
    return None


SECOND_FACTOR_OFF = (
    "REQUIRE_2FA is false: doctors and staff, who read every patient's questions, would sign in "
    'with a password alone. Unset it (it follows PRODUCTION) or set it to "true"; note that '
    "REQUIRE_2FA= with an empty value reads as false."
)


def production_problems(
    *,
    secret_key: str,
    debug: bool,
    allowed_hosts: list[str],
    email_backend: str,
    password_hashers: list[str] | None,
    require_2fa: bool,
) -> list[str]:
    """Every unsafe production setting, each message starting with the variable to fix."""
    problems = [
        secret_key_problem(secret_key),
        "DEBUG is true: error pages would show settings and patients' data to anyone." if debug else None,
        "ALLOWED_HOSTS is empty: set the site's host name(s)." if not allowed_hosts else None,
        email_backend_problem(email_backend),
        password_hasher_problem(password_hashers),
        SECOND_FACTOR_OFF if not require_2fa else None,
    ]
    return [problem for problem in problems if problem]


def refuse_unsafe_production(**values) -> None:
    """Raise ImproperlyConfigured listing every unsafe setting; see `production_problems`."""
    problems = production_problems(**values)
    if problems:
        lines = "\n".join(f"- {problem}" for problem in problems)
        raise ImproperlyConfigured(f"Unsafe settings with PRODUCTION=true; refusing to start:\n{lines}")
