import logging
from urllib.parse import urlsplit

from django.apps import AppConfig
from django.conf import settings

logger = logging.getLogger("portal")


def describe_backends() -> str:
    """One line naming the database and broker in use, without credentials."""
    db = settings.DATABASES["default"]
    db_desc = f"{db['ENGINE'].rsplit('.', 1)[-1]}:{db.get('NAME')}"
    if db.get("HOST"):
        db_desc += f"@{db['HOST']}:{db.get('PORT') or 5432}"
    if settings.REDIS_URL:
        parts = urlsplit(settings.REDIS_URL)
        broker_desc = f"redis://{parts.hostname}:{parts.port or 6379}{parts.path}"
    else:
        broker_desc = f"filesystem ({settings.VAR_DIR / 'celery'})"
    return f"database={db_desc} broker={broker_desc}"


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal accounts"

    def ready(self):
        from portal import (
            checks,  # registers system checks; refuse_inconsistent_settings() below
            session_policy,  # noqa: F401  (sets a new session's length at login)
            user_copy,  # noqa: F401  (marks a changed user's cached copy, in every process)
        )

        checks.refuse_inconsistent_settings()

        logger.info("Ask a Doctor portal starting: %s", describe_backends())
