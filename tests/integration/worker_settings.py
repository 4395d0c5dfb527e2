"""Settings for processes the integration tests start (Celery worker, beat, a stand-in web process).

The portal's own settings, plus what they do not read from the environment yet:
the file e-mail backend's folder and the outbox re-send interval.
"""

import os

from portal.env import env_int
from portal.settings import *  # noqa: F403

EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))  # noqa: F405
NOTIFICATION_RESEND_SECONDS = env_int("NOTIFICATION_RESEND_SECONDS", 60)
CELERY_IMPORTS = ["tests.integration.worker_tasks"]
