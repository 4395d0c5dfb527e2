"""Start-up preparation that must hold in every process (web, worker, beat)."""

from django.conf import settings
from django.core.checks import Warning, register


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
