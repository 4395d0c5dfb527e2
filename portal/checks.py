"""Start-up preparation that must hold in every process (web, worker, beat)."""

from django.conf import settings
from django.core.checks import Warning, register
from django.core.exceptions import ImproperlyConfigured


def send_lock_problem(lock_seconds: float, email_timeout: float | None) -> str | None:
    """An outbox row held for less than a send may take is taken over by the re-send
    while its e-mail is still going out: the patient or doctor gets it twice."""
    if email_timeout is not None and lock_seconds <= email_timeout:
        return (
            f"NOTIFICATION_SEND_LOCK_SECONDS ({lock_seconds} s) must be greater than EMAIL_TIMEOUT "
            f"({email_timeout} s): a send still waiting on the mail server would be taken over and "
            "the e-mail sent twice. Raise the lock or lower the timeout."
        )
    return None


def refuse_inconsistent_settings() -> None:
    """Called by PortalConfig.ready(), so manage.py, gunicorn and Celery (worker and beat)
    all stop, whatever settings module derived the final values."""
    problem = send_lock_problem(settings.NOTIFICATION_SEND_LOCK_SECONDS, settings.EMAIL_TIMEOUT)
    if problem:
        raise ImproperlyConfigured(problem)


@register()
def private_media_outside_public_media(app_configs, **kwargs):
    private = settings.PRIVATE_MEDIA_ROOT.resolve()
    public = settings.MEDIA_ROOT.resolve()
    if private == public or public in private.parents:
        return [
            Warning(
                "PRIVATE_MEDIA_ROOT lies inside MEDIA_ROOT: patients' attachments would be publicly reachable.",
                id="portal.W001",
            )
        ]
    return []
