"""Issue 16 (configuration): an outbox row is held for NOTIFICATION_SEND_LOCK_SECONDS
while its e-mail is sent, and an SMTP conversation may take EMAIL_TIMEOUT. A lock that
does not outlast the send lets the re-send take over a live send: the e-mail goes out
twice. Every process refuses to start with such a pair, naming both variables."""

import os

import pytest
from django.core.exceptions import ImproperlyConfigured

from portal import checks
from tests.security.test_deploy_check import run


@pytest.mark.parametrize(("lock", "timeout"), [(20, 20), (10, 20), (1, 2.5)])
def test_a_lock_that_does_not_outlast_the_send_is_refused(settings, lock, timeout):
    settings.NOTIFICATION_SEND_LOCK_SECONDS, settings.EMAIL_TIMEOUT = lock, timeout
    with pytest.raises(ImproperlyConfigured) as refused:
        checks.refuse_inconsistent_settings()
    assert "NOTIFICATION_SEND_LOCK_SECONDS" in str(refused.value)
    assert "EMAIL_TIMEOUT" in str(refused.value)


@pytest.mark.parametrize(("lock", "timeout"), [(21, 20), (300, 20), (1, 0.5)])
def test_a_lock_longer_than_the_send_is_accepted(settings, lock, timeout):
    settings.NOTIFICATION_SEND_LOCK_SECONDS, settings.EMAIL_TIMEOUT = lock, timeout
    checks.refuse_inconsistent_settings()


def test_start_up_stops_with_a_message_naming_both():
    env = {**os.environ, "NOTIFICATION_SEND_LOCK_SECONDS": "15", "EMAIL_TIMEOUT": "30"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = run(["manage.py", "check"], env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "NOTIFICATION_SEND_LOCK_SECONDS (15 s)" in result.stderr
    assert "EMAIL_TIMEOUT (30 s)" in result.stderr
