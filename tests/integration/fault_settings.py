"""Settings for the processes the fault tests start: the integration settings, plus a
cache that can live on another Redis than the broker being broken, and an e-mail
timeout short enough for the 1-4 s send locks (NOTIFICATION_SEND_LOCK_SECONDS, set in
each test's environment) with which a test sees a crashed sender's e-mail taken over."""

import os

from tests.integration.worker_settings import *  # noqa: F403

EMAIL_BACKEND = "tests.integration.fault_mail.FaultFileBackend"

if os.environ.get("FAULT_CACHE_URL"):
    CACHES = {
        "default": {
            "BACKEND": "portal.redis_cache.RedisCache",
            "LOCATION": os.environ["FAULT_CACHE_URL"],
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "fault"),
        }
    }

# The fault backend writes files and never waits on a mail server; start-up refuses a
# send lock not above EMAIL_TIMEOUT (portal/checks.py), and the tests' locks are 1-4 s.
EMAIL_TIMEOUT = 0.5
