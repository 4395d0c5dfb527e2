"""Production settings pass Django's deployment checklist with no warning at all, and
switch on HTTPS-only cookies, HSTS, 2FA, login protection and rate limits."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]


def production_env(tmp_path) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        # Nothing from the developer's shell may soften or harden what production means.
        if not name.startswith(
            ("DEBUG", "SECURE_", "SESSION_", "REQUIRE_2FA", "AXES_", "RATELIMIT_", "DJANGO_", "EMAIL_", "FAST_PASSWORD")
        )
    }
    env.update(
        {
            "PRODUCTION": "true",
            "SECRET_KEY": secrets.token_urlsafe(64),
            "ALLOWED_HOSTS": "portal.example.com",
            # A backend that delivers: the console default is refused in production.
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "VAR_DIR": str(tmp_path / "var"),
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "PYTHONPATH": str(BASE_DIR),
        }
    )
    return env


def run(args, env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNINGS" not in result.stdout + result.stderr
    assert "security.W" not in result.stdout + result.stderr


def test_check_deploy_would_catch_a_weak_setting(tmp_path):
    # Proves the check above has teeth: a short HSTS time is reported.
    env = {**production_env(tmp_path), "SECURE_HSTS_SECONDS": "0"}
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)
    assert result.returncode != 0
    assert "security.W004" in result.stdout + result.stderr


PRINT_SETTINGS = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({name: getattr(s, name, None) for name in [
    "DEBUG", "SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "CSRF_COOKIE_SECURE", "CSRF_COOKIE_HTTPONLY",
    "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD",
    "SECURE_REFERRER_POLICY", "SECURE_CONTENT_TYPE_NOSNIFF", "X_FRAME_OPTIONS", "REQUIRE_2FA",
    "AXES_ENABLED", "AXES_FAILURE_LIMIT", "RATELIMIT_ENABLED", "AUTHENTICATION_BACKENDS", "MIDDLEWARE",
]}))
"""


@pytest.fixture(scope="module")
def production_settings(tmp_path_factory):
    result = run(["-c", PRINT_SETTINGS], production_env(tmp_path_factory.mktemp("prod")))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_cookies_are_https_only_and_hidden_from_scripts(production_settings):
    assert production_settings["DEBUG"] is False
    assert production_settings["SESSION_COOKIE_SECURE"] is True
    assert production_settings["SESSION_COOKIE_HTTPONLY"] is True
    assert production_settings["CSRF_COOKIE_SECURE"] is True
    assert production_settings["CSRF_COOKIE_HTTPONLY"] is True


def test_production_forces_https_with_a_year_of_hsts(production_settings):
    assert production_settings["SECURE_SSL_REDIRECT"] is True
    assert production_settings["SECURE_HSTS_SECONDS"] >= 31_536_000
    assert production_settings["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert production_settings["SECURE_HSTS_PRELOAD"] is True


def test_production_denies_framing_and_sniffing_and_keeps_referrers_home(production_settings):
    assert production_settings["X_FRAME_OPTIONS"] == "DENY"
    assert production_settings["SECURE_CONTENT_TYPE_NOSNIFF"] is True
    assert production_settings["SECURE_REFERRER_POLICY"] == "same-origin"


def test_production_turns_on_2fa_login_protection_and_rate_limits(production_settings):
    assert production_settings["REQUIRE_2FA"] is True
    assert production_settings["AXES_ENABLED"] is True
    assert production_settings["AXES_FAILURE_LIMIT"] == 5
    assert production_settings["RATELIMIT_ENABLED"] is True
    assert production_settings["AUTHENTICATION_BACKENDS"][0] == "axes.backends.AxesStandaloneBackend"
    assert production_settings["MIDDLEWARE"][-1] == "axes.middleware.AxesMiddleware"
