"""Per-request adjustments: the user's time zone, doctors' and staff's idle timeout."""

import zoneinfo

from django.conf import settings
from django.utils import timezone


class UserTimezoneMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        tz_name = getattr(request.user, "time_zone", None) if request.user.is_authenticated else None
        if tz_name:
            try:
                timezone.activate(zoneinfo.ZoneInfo(tz_name))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                timezone.deactivate()
        else:
            timezone.deactivate()
        return self.get_response(request)


class StaffSessionTimeoutMiddleware:
    """Doctors and staff see medical data: their sessions end after a short idle time.

    Each request pushes the expiry forward, so only inactivity signs them out.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if user.is_authenticated and (user.is_staff or hasattr(user, "doctor_profile")):
            # The dashboard's 30-second refresh is not the person being active.
            if request.headers.get("X-Background-Refresh") != "1":
                request.session.set_expiry(settings.STAFF_SESSION_IDLE_SECONDS)
        return self.get_response(request)
