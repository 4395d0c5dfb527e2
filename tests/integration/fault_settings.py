"""Settings for the processes the fault tests start: the integration settings, plus a
cache that can live on another Redis than the broker being broken, and a send lock
short enough for a test to see a crashed sender's e-mail taken over."""

import os

from portal.env import env_int
from tests.integration.worker_settings import *  # noqa: F403

EMAIL_BACKEND = "tests.integration.fault_mail.FaultFileBackend"

if os.environ.get("FAULT_CACHE_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["FAULT_CACHE_URL"],
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "fault"),
        }
    }

NOTIFICATION_SEND_LOCK_SECONDS = env_int("NOTIFICATION_SEND_LOCK_SECONDS", 300)
