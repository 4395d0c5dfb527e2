"""Answer an anonymous visitor's repeat visit to a shared public page before the
rest of the middleware stack runs.

Home, the article list and the article pages are one stored copy for every
anonymous visitor (articles.views._serve). Reaching that copy through the whole
stack (sessions, CSRF, auth, OTP, 2FA, idle timeout, time zone, messages, CSP,
axes) cost most of the time of such a request, while none of those layers can
change the answer for a visitor who carries no session, no messages and no
credentials. This middleware sits right after SecurityMiddleware and WhiteNoise
and serves the stored copy itself when, and only when:

- the method is GET or HEAD;
- the request carries no Authorization header and no cookie at all except a
  well-formed CSRF cookie (which the normal path would only read, never
  change). Any session cookie, valid or not, and any messages cookie send the
  request the normal way, so a signed-in visitor or one with a waiting message
  never gets the shared copy from here;
- the path is one of the shared pages (articles.views.SHARED_PAGES) and the
  query string names only parameters that page's copy is keyed on (anything
  else, a tracking tag included, goes the normal way);
- a copy for the current content version is stored (an edit retires every
  copy at once; a miss, or a cache server that is down, goes the normal way,
  which renders and stores the page as before).

The answer gets exactly the headers of the normal path: the same function
builds it (articles.views.serve_stored: Cache-Control public, Vary: Cookie,
the view count), then the header-only middleware that follows this one in
settings.MIDDLEWARE (Common, X-Frame-Options, CSP) runs on it in the normal
order, and SecurityMiddleware, which comes before, adds its headers on the
way out as for any response. Any other middleware placed after this one that
is not known to be a no-op for such a request turns the early path off (with
a warning), so a future layer is never skipped silently.
"""

from django.conf import settings
from django.middleware.csrf import CSRF_ALLOWED_CHARS, CSRF_SECRET_LENGTH, CSRF_TOKEN_LENGTH
from django.urls import Resolver404, resolve
from django.utils.module_loading import import_string

from articles import cache as article_cache
from articles import popularity, views
from articles.local_pages import local_pages
from portal.middleware import layers_after
from portal.request_guard import carries_nul

# Header-only layers: applied to the early answer, in the normal path's order.
FINISHERS = (
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
)
# Layers that change nothing for a GET or HEAD without session, messages or
# credentials to a page that is not rendered; skipped on the early path.
NO_OP_FOR_SHARED_COPY = {
    "consultations.early_list.EarlyMyQuestionsMiddleware": "acts only on a request with a session cookie",
    "portal.middleware.SessionMiddleware": "no session cookie: an empty session, never saved or sent",
    "portal.request_guard.RejectNulCharactersMiddleware": "checked here too (carries_nul)",
    "django.middleware.csrf.CsrfViewMiddleware": "a safe method; a well-formed cookie is only read",
    "django.contrib.auth.middleware.AuthenticationMiddleware": "no session: the anonymous user",
    "django_otp.middleware.OTPMiddleware": "anonymous: nothing to verify",
    "portal.two_factor.Require2FAMiddleware": "anonymous: nobody to ask for a second factor",
    "portal.middleware.SessionIdleTimeoutMiddleware": "anonymous: no session to extend",
    "portal.middleware.UserTimezoneMiddleware": "the stored copy is not rendered",
    "django.contrib.messages.middleware.MessageMiddleware": "no messages cookie, no session: no messages",
    "axes.middleware.AxesMiddleware": "acts only on a locked-out login attempt",
}
SAFE_METHODS = ("GET", "HEAD")
RESOLVED_LIMIT = 4096


def _well_formed_csrf_cookie(value: str) -> bool:
    # What CsrfViewMiddleware accepts as is; a malformed one it would replace
    # (Set-Cookie), so such a request goes the normal way.
    return len(value) in (CSRF_SECRET_LENGTH, CSRF_TOKEN_LENGTH) and all(c in CSRF_ALLOWED_CHARS for c in value)


def carries_no_visitor_state(request) -> bool:
    """True when nothing in the request could make its page differ from the shared copy."""
    if "HTTP_AUTHORIZATION" in request.META:
        return False
    if not request.META.get("HTTP_COOKIE"):
        return True
    csrf_cookie = None if settings.CSRF_USE_SESSIONS else settings.CSRF_COOKIE_NAME
    return all(name == csrf_cookie and _well_formed_csrf_cookie(value) for name, value in request.COOKIES.items())


class EarlyPageCacheMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        after = layers_after(self, {*FINISHERS, *NO_OP_FOR_SHARED_COPY}, "Early page cache")
        self.finishers = [import_string(name)(get_response) for name in after if name in FINISHERS]
        # What resolve() said about a path (the URLconf does not change while the process runs).
        self.resolved: dict[tuple[str, str], tuple] = {}

    def __call__(self, request):
        response = self.shared_copy(request)
        return response if response is not None else self.get_response(request)

    def shared_copy(self, request):
        """The stored copy with every header of the normal path, or None to go the normal way."""
        if request.method not in SAFE_METHODS or not carries_no_visitor_state(request):
            return None
        view, params = self.shared_page(request.path_info)
        if view is None or not set(request.GET).issubset(params) or carries_nul(request):
            return None
        for layer in self.finishers:
            # CommonMiddleware checks the host and may redirect (PREPEND_WWW).
            if hasattr(layer, "process_request") and layer.process_request(request) is not None:
                return None
        # A GET of an article is a view: counted by the same round trip that reads the copy.
        viewer = popularity.visitor_from_request(request) if request.method == "GET" and view in views.COUNTED else None
        key = views.shared_page_key(request, params)
        entry = local_pages.get(key)  # this process's copy, kept exact (articles/local_pages.py)
        if entry is not None:
            stored = entry[2:]
            if viewer is not None and entry[4] is not None:
                local_pages.count_later(entry[4], viewer)
        else:
            _, stored = article_cache.get_page(key, viewer)
        if stored is None:
            return None
        response = views.serve_stored(request, stored, counted=True)
        for layer in reversed(self.finishers):
            response = layer.process_response(request, response)
        return response

    def shared_page(self, path: str) -> tuple:
        """(view, the query parameters its copy is keyed on) for a shared page's path, else (None, ())."""
        key = (settings.ROOT_URLCONF, path)
        found = self.resolved.get(key)
        if found is None:
            try:
                view = resolve(path).func
            except Resolver404:
                view = None
            params = views.SHARED_PAGES.get(view)
            found = (view, params) if params is not None else (None, ())
            if len(self.resolved) >= RESOLVED_LIMIT:  # a bound against made-up paths, not a goal
                self.resolved.clear()
            self.resolved[key] = found
        return found
