"""Per-request adjustments: a signed-in person's pages never kept by a browser or proxy,
the user's time zone, the session's idle timeout, and a session save that a database
blip does not turn into "Bad Request"."""

import logging
import zoneinfo
from collections.abc import Container

from django.conf import settings
from django.contrib.sessions.exceptions import SessionInterrupted
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.core.exceptions import MiddlewareNotUsed
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.functional import LazyObject, empty

from portal import session_policy
from portal.database import TRANSIENT_DATABASE_ERRORS

logger = logging.getLogger(__name__)


def layers_after(middleware, known: Container[str], what: str) -> list[str]:
    """The middleware placed after `middleware` (an instance) in settings.MIDDLEWARE, for a
    layer that answers some requests early and so skips them. Raises MiddlewareNotUsed when
    it is not in settings.MIDDLEWARE, or, with a warning, when any layer after it is not
    `known` to be safe to skip: a future layer is never skipped silently."""
    own = f"{type(middleware).__module__}.{type(middleware).__qualname__}"
    if own not in settings.MIDDLEWARE:
        raise MiddlewareNotUsed(f"{own} is not in settings.MIDDLEWARE")
    after = settings.MIDDLEWARE[settings.MIDDLEWARE.index(own) + 1 :]
    unknown = [name for name in after if name not in known]
    if unknown:
        logger.warning("%s off: %s may not be skipped", what, ", ".join(unknown))
        raise MiddlewareNotUsed(f"unknown middleware after the {what.lower()}")
    return after


class PrivateForSessionsMiddleware:
    """A response to a request that carries a session cookie, or that sets one, is one
    person's: unless its view said otherwise (its own Cache-Control), it gets Django's
    never-cache headers (no-store, private), so a shared computer's browser does not show
    "my questions", the profile or an authenticator's pairing code from its cache or the
    back button after signing out. Keyed on the cookie, not on request.user, and placed
    before both early answers (articles.middleware, consultations.early_list) and after
    WhiteNoise (static files keep their max-age): it covers every answer alike."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        name = settings.SESSION_COOKIE_NAME
        if "Cache-Control" not in response and (name in request.COOKIES or name in response.cookies):
            add_never_cache_headers(response)
        return response


class SessionMiddleware(DjangoSessionMiddleware):
    """Django's, except that a session row that could not be saved because the
    database connection was lost does not replace the page with a bare 400.

    Django turns any failed session UPDATE into SessionInterrupted ("the session
    was deleted before the request completed", 400). That is right when another
    request logged the user out (the UPDATE found no row) and is kept. When the
    connection itself was lost, the work of the request is already done (a
    question saved, an answer sent): the patient gets its page, and the session
    keeps its previous expiry and cookie.
    """

    def process_response(self, request, response):
        try:
            return super().process_response(request, response)
        except SessionInterrupted as interrupted:
            update_error = interrupted.__context__
            cause = update_error.__context__ if update_error is not None else None
            if not isinstance(cause, TRANSIENT_DATABASE_ERRORS):
                raise
            logger.warning("Session not saved (database connection lost): %s", request.path)
            return response


def user_zone(user) -> zoneinfo.ZoneInfo | None:
    """The time zone a signed-in user's pages are shown in; None for the site's default."""
    tz_name = getattr(user, "time_zone", None) if user.is_authenticated else None
    if tz_name:
        try:
            return zoneinfo.ZoneInfo(tz_name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return None
    return None


class UserTimezoneMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        zone = user_zone(request.user)
        if zone is not None:
            timezone.activate(zone)
        else:
            timezone.deactivate()
        return self.get_response(request)


def resolved(user):
    """The object behind a lazy `request.user`, looked up now if it was not yet.

    AuthenticationMiddleware puts a SimpleLazyObject on the request and django-otp wraps
    that in another one (the attributes it sets go through to the user behind both).
    Each read through them costs two proxy calls per layer, and a page reads the user
    dozens of times (templates, access rules, the rate limiter, the time zone)."""
    while isinstance(user, LazyObject):
        if user._wrapped is empty:
            user._setup()
        user = user._wrapped
    return user


class SessionIdleTimeoutMiddleware:
    """Signed-in sessions end after a short idle time (portal/session_policy.py).

    Each request pushes the expiry forward, so only inactivity signs people out.
    The first layer that always needs to know who is signed in (the second-factor check
    before it reads the user only when REQUIRE_2FA is on), it also puts the user itself
    on the request in place of the lazy proxies (`resolved`): the layers and the view
    after it read a plain object.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user = resolved(request.user)
        # The dashboard's 30-second refresh is not the person being active.
        if user.is_authenticated and request.headers.get("X-Background-Refresh") != "1":
            session_policy.touch(request)
        return self.get_response(request)
