"""Per-request adjustments: the user's time zone, the session's idle timeout."""

import zoneinfo

from django.utils import timezone

from portal import session_policy


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


class SessionIdleTimeoutMiddleware:
    """Signed-in sessions end after a short idle time (portal/session_policy.py).

    Each request pushes the expiry forward, so only inactivity signs people out.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # The dashboard's 30-second refresh is not the person being active.
        if request.user.is_authenticated and request.headers.get("X-Background-Refresh") != "1":
            session_policy.touch(request)
        return self.get_response(request)
