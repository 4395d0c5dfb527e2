"""Issue 12 ("unsafe production settings stop start-up with a clear message"): with
PRODUCTION=true, settings refuse to load with an unsafe value, so manage.py,
gunicorn and Celery all stop, naming the variable. Each case starts a real
`manage.py check` in a subprocess, as an operator would."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from portal import production
from tests.security.test_deploy_check import production_env, run

ENV_EXAMPLE_SECRET_KEY = "change-me"
STRONG_KEY = "pN3v-Qe8tLw2Zr7yKb5mXc1dHf6uJg4sAo9iTq0eRz_VnWl8Yx"  # 50 characters

UNSAFE = {
    "secret_key_missing": ({"SECRET_KEY": ""}, "SECRET_KEY"),
    "secret_key_short": ({"SECRET_KEY": "a-short-but-random-Xq81zT"}, "SECRET_KEY"),
    "secret_key_too_few_characters": ({"SECRET_KEY": "abab" * 20}, "SECRET_KEY"),
    "secret_key_env_example": ({"SECRET_KEY": ENV_EXAMPLE_SECRET_KEY}, "SECRET_KEY"),
    # As .env.example reads when a process manager keeps the comment after the value.
    "secret_key_env_example_with_comment": (
        {"SECRET_KEY": "change-me                 # required when PRODUCTION=true, 50+ random characters"},
        "SECRET_KEY",
    ),
    "secret_key_development_default": ({"SECRET_KEY": production.DEVELOPMENT_SECRET_KEY}, "SECRET_KEY"),
    "secret_key_django_insecure": ({"SECRET_KEY": "django-insecure-" + "k3q9Zp1xV7mW2rT8yB4nC6" * 3}, "SECRET_KEY"),
    "email_console": ({"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}, "EMAIL_BACKEND"),
    "email_locmem": ({"EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"}, "EMAIL_BACKEND"),
    "email_dummy": ({"EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend"}, "EMAIL_BACKEND"),
    # Unset, the backend defaults to the console one.
    "email_default": ({"EMAIL_BACKEND": None}, "EMAIL_BACKEND"),
    "md5_password_hasher": ({"FAST_PASSWORD_HASHER": "true"}, "FAST_PASSWORD_HASHER"),
    "debug": ({"DEBUG": "true"}, "DEBUG"),
    "allowed_hosts_empty": ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS"),
    # Doctors and staff read every patient's questions: a password alone is not enough.
    "second_factor_off": ({"REQUIRE_2FA": "false"}, "REQUIRE_2FA"),
    # A shell or systemd line `REQUIRE_2FA=` reads as false, not as "follow PRODUCTION".
    "second_factor_empty": ({"REQUIRE_2FA": ""}, "REQUIRE_2FA"),
}


def env_with(tmp_path, changes):
    env = production_env(tmp_path)
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


@pytest.mark.parametrize("case", UNSAFE)
def test_production_refuses_to_start_with_an_unsafe_setting(tmp_path, case):
    changes, variable = UNSAFE[case]

    result = run(["manage.py", "check"], env_with(tmp_path, changes))

    assert result.returncode != 0, result.stdout
    assert "ImproperlyConfigured" in result.stderr
    assert f"- {variable}" in result.stderr, result.stderr


def test_every_unsafe_setting_is_named_at_once(tmp_path):
    changes = {"SECRET_KEY": ENV_EXAMPLE_SECRET_KEY, "DEBUG": "true", "EMAIL_BACKEND": None}

    result = run(["manage.py", "check"], env_with(tmp_path, changes))

    assert result.returncode != 0
    for variable in ("SECRET_KEY", "DEBUG", "EMAIL_BACKEND"):
        assert f"- {variable}" in result.stderr, result.stderr


@pytest.mark.parametrize(
    "backend", ["django.core.mail.backends.smtp.EmailBackend", "django.core.mail.backends.filebased.EmailBackend"]
)
def test_a_safe_production_environment_starts(tmp_path, backend):
    """SMTP, and the file-based backend of the one-machine production shape, both start."""
    result = run(["manage.py", "check"], env_with(tmp_path, {"EMAIL_BACKEND": backend}))

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_same_values_start_outside_production(tmp_path):
    """Development keeps its defaults: the refusal is for PRODUCTION=true only."""
    env = env_with(tmp_path, {"PRODUCTION": "false", "SECRET_KEY": None, "EMAIL_BACKEND": None, "DEBUG": "true"})

    result = run(["manage.py", "check"], env)

    assert result.returncode == 0, result.stderr


def test_the_rules_accept_a_strong_setup():
    production.refuse_unsafe_production(
        secret_key=STRONG_KEY,
        debug=False,
        allowed_hosts=["portal.example.com"],
        email_backend="django.core.mail.backends.smtp.EmailBackend",
        password_hashers=["django.contrib.auth.hashers.PBKDF2PasswordHasher"],
        require_2fa=True,
    )


def test_production_with_the_second_factor_on_explicitly_starts(tmp_path):
    result = run(["manage.py", "check"], env_with(tmp_path, {"REQUIRE_2FA": "true"}))

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "hasher",
    [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        "django.contrib.auth.hashers.UnsaltedMD5PasswordHasher",
        "django.contrib.auth.hashers.UnsaltedSHA1PasswordHasher",
    ],
)
def test_a_fast_hasher_first_is_refused_even_when_a_slow_one_follows(hasher):
    with pytest.raises(ImproperlyConfigured, match="PASSWORD_HASHERS"):
        production.refuse_unsafe_production(
            secret_key=STRONG_KEY,
            debug=False,
            allowed_hosts=["portal.example.com"],
            email_backend="django.core.mail.backends.smtp.EmailBackend",
            password_hashers=[hasher, "django.contrib.auth.hashers.PBKDF2PasswordHasher"],
            require_2fa=True,
        )


def test_a_slow_hasher_first_may_keep_old_ones_to_upgrade_stored_passwords():
    assert (
        production.password_hasher_problem(
            ["django.contrib.auth.hashers.Argon2PasswordHasher", "django.contrib.auth.hashers.MD5PasswordHasher"]
        )
        is None
    )


PROBE_OVER_HTTP = """
import django
django.setup()
from django.test import Client
client = Client(HTTP_HOST="portal.example.com")
print(client.get("/healthz").status_code, client.get("/articles/").status_code)
"""


def test_healthz_answers_a_probe_over_plain_http_while_pages_redirect_to_https(tmp_path):
    """Load balancers probe /healthz over HTTP on the private network: no HTTPS redirect for it."""
    result = run(["-c", PROBE_OVER_HTTP], production_env(tmp_path))

    assert result.returncode == 0, result.stderr
    healthz, articles = result.stdout.split()[-2:]
    assert healthz in {"200", "503"}
    assert articles == "301"


@pytest.mark.parametrize(
    "command",
    [
        ["-m", "celery", "-A", "portal", "worker", "--pool=solo", "-n", "refused@%h"],
        ["-m", "celery", "-A", "portal", "beat"],
        ["-m", "gunicorn", "portal.wsgi", "--bind", "127.0.0.1:0", "--workers", "1"],
    ],
    ids=["celery-worker", "celery-beat", "gunicorn"],
)
def test_workers_beat_and_gunicorn_refuse_too(tmp_path, command):
    """The refusal is at settings import, so every process stops, not only manage.py."""
    result = run(command, env_with(tmp_path, {"SECRET_KEY": ENV_EXAMPLE_SECRET_KEY}))

    assert result.returncode != 0
    assert "- SECRET_KEY is the example value" in result.stdout + result.stderr
