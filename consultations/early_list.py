"""A signed-in patient's "my questions" page, answered before the middleware stack
from this process's copy of it, checked against the database on every request
(issue 17: the page cost 8 % of a bare Django view's throughput, the whole stack
and the rendering for a page that rarely changes).

The worst bug this product can have is a private page served to the wrong person,
so the copy is used only when everything the normal path would decide comes out
the same, and the page's content is checked, not assumed:

- Who: the request is a GET of the first page (no query string, no Authorization
  header, no cookie but the session's and the CSRF one) with a session this process
  has already seen signed in, and one statement reads the session's row, the user's
  row and the page from PostgreSQL, the record (not a copy in Redis). The copy is
  used only if portal.signed_in.is_quiet_patient finds that user signed in on that
  session by the normal path's rules with nothing to change (no second factor, no
  waiting message, no idle end to push, no session to repair). Anything else goes
  the normal way, which also teaches the process the session's user.
- What: the same statement digests what the first page shows (patient_list.
  first_page_statement). The copy is used only if it was kept for exactly these
  values, the user's own row (every column: name, zone, password hash...), the
  clock texts at this moment, the host and the scheme. So a new question, an
  answer, the sweep's markers, a renamed specialty or an edited profile make the
  next page a normal one, whoever wrote the change and however. Patients with a
  breach credit, more than one page, or no question at all go the normal way.
- The copy: kept per user id (the last one only) by the normal path's own
  response, only when that response was a plain 200 HTML page that set no cookie
  but the CSRF one, left the session untouched, showed it to the same user, and
  the values read again after it were unchanged (the page showed them). It lives
  in this process's memory: nothing is shared, a deploy starts empty.
- The answer: the kept body and headers; the CSRF layer itself runs (the cookie
  read or made, renewed as on the normal path) and the body gets a freshly masked
  token wherever the kept one stood (csrf_token: Django's get_token, its random
  characters drawn from one os.urandom call instead of one per character).
  SecurityMiddleware and WhiteNoise, placed before this one, treat it as any
  response.

Each middleware placed after this one in settings.MIDDLEWARE must be named in
SKIPPED_LAYERS with why skipping it changes nothing; any other turns the early
page off (with a warning), so a future layer is never skipped silently.
"""

import functools
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from importlib import import_module
from types import SimpleNamespace

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore as DatabaseStore
from django.core.exceptions import MiddlewareNotUsed
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpResponse
from django.middleware.common import CommonMiddleware
from django.middleware.csrf import (
    CSRF_ALLOWED_CHARS,
    CSRF_SECRET_LENGTH,
    CsrfViewMiddleware,
    _unmask_cipher_token,
)
from django.urls import reverse
from django.utils import timezone

from consultations import patient_list
from consultations.models import DoctorProfile
from consultations.views import FIXED_CLOCK_STATUSES, patient_clock
from portal.database import read_as_health_check, run_prepared
from portal.middleware import layers_after, user_zone
from portal.signed_in import is_quiet_patient

logger = logging.getLogger(__name__)

SKIPPED_LAYERS = {
    "portal.middleware.SessionMiddleware": "read; is_quiet_patient refuses a session the normal path would write",
    "django.middleware.common.CommonMiddleware": "its request checks run here; Content-Length is set here",
    "portal.request_guard.RejectNulCharactersMiddleware": "a fixed path without a query string carries no NUL",
    "django.middleware.csrf.CsrfViewMiddleware": "run here: the cookie read or made, a fresh token, the cookie renewed",
    "django.contrib.auth.middleware.AuthenticationMiddleware": "is_quiet_patient: the same rules, nothing to repair",
    "django_otp.middleware.OTPMiddleware": "a patient needs no second factor",
    "portal.two_factor.Require2FAMiddleware": "a patient needs no second factor",
    "portal.middleware.SessionIdleTimeoutMiddleware": "is_quiet_patient: the idle end is not due to be pushed",
    "portal.middleware.UserTimezoneMiddleware": "the copy is kept per user row (its zone) and clock texts in that zone",
    "django.contrib.messages.middleware.MessageMiddleware": "no message waits: no cookie, none in the session",
    "django.middleware.clickjacking.XFrameOptionsMiddleware": "its header is in the kept copy",
    "csp.middleware.CSPMiddleware": "its header is in the kept copy (a policy with a nonce is never kept)",
    "axes.middleware.AxesMiddleware": "acts only on a locked-out login attempt",
}
# Users whose last page this process keeps (a page is about 15 KB).
COPIES_LIMIT = 500
# Session keys whose user this process remembers.
SESSIONS_LIMIT = 10_000
# Longer than any key Django makes (32 characters).
SESSION_KEY_MAX = 64
TOKEN_FIELD = b'name="csrfmiddlewaretoken" value="'


# Django's CSRF strings are CSRF_ALLOWED_CHARS drawn with secrets.choice, one call (and
# one os.urandom) per character: 64 of them for a new secret and its mask, about 80 us
# of the early answer's 600 (Python). The same draw from os.urandom in one call: a byte below
# 248 (4 x 62) stands for the character at its value modulo 62 (each character has four
# such bytes, so each is equally likely), a byte of 248 or more is dropped.
_CSRF_CHARS = CSRF_ALLOWED_CHARS.encode("ascii")
_CSRF_USABLE = 256 - 256 % len(_CSRF_CHARS)
_CSRF_BYTE_CHAR = bytes(_CSRF_CHARS[byte % len(_CSRF_CHARS)] if byte < _CSRF_USABLE else 0 for byte in range(256))
_CSRF_UNUSABLE = bytes(range(_CSRF_USABLE, 256))
_CSRF_INDEX = {char: index for index, char in enumerate(CSRF_ALLOWED_CHARS)}


def random_csrf_chars(count: int) -> str:
    """`count` characters of CSRF_ALLOWED_CHARS, each drawn uniformly from the operating
    system's random source (what django.utils.crypto.get_random_string gives)."""
    drawn = b""
    while len(drawn) < count:
        drawn += os.urandom(count + 8).translate(_CSRF_BYTE_CHAR, _CSRF_UNUSABLE)
    return drawn[:count].decode("ascii")


def masked_csrf_token(secret: str, mask: str) -> str:
    """Django's _mask_cipher_secret for a given mask: the mask, then each character of the
    secret shifted by the mask's character at the same place."""
    index, chars = _CSRF_INDEX, CSRF_ALLOWED_CHARS
    return mask + "".join(chars[(index[x] + index[y]) % len(chars)] for x, y in zip(secret, mask, strict=True))


def csrf_token(request) -> str:
    """django.middleware.csrf.get_token, after CsrfViewMiddleware.process_request: the
    request's secret (a new one when it has none) in a freshly masked token, and the cookie
    marked to be sent (renewed) as the normal path does."""
    meta = request.META
    if "CSRF_COOKIE" in meta:
        mask = random_csrf_chars(CSRF_SECRET_LENGTH)
    else:  # as _add_new_csrf_cookie
        drawn = random_csrf_chars(2 * CSRF_SECRET_LENGTH)
        meta["CSRF_COOKIE"], mask = drawn[:CSRF_SECRET_LENGTH], drawn[CSRF_SECRET_LENGTH:]
    meta["CSRF_COOKIE_NEEDS_UPDATE"] = True
    return masked_csrf_token(meta["CSRF_COOKIE"], mask)


@dataclass(frozen=True)
class KeptPage:
    state: tuple  # what it showed (page_state)
    parts: tuple[bytes, ...]  # the body, split where the CSRF token stood
    headers: tuple[tuple[str, str], ...]  # every header but Set-Cookie and Content-Length


class KeptPages:
    """The last page of each of the most recently served users, in this process."""

    def __init__(self, limit: int = COPIES_LIMIT):
        self.limit = limit
        self._pages: OrderedDict[int, KeptPage] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, user_id: int, state: tuple) -> KeptPage | None:
        with self._lock:
            page = self._pages.get(user_id)
            if page is None or page.state != state:
                return None
            self._pages.move_to_end(user_id)
            return page

    def put(self, user_id: int, page: KeptPage) -> None:
        with self._lock:
            self._pages[user_id] = page
            self._pages.move_to_end(user_id)
            while len(self._pages) > self.limit:
                self._pages.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._pages.clear()


class SessionUsers:
    """Which user each recently seen session key was signed in as, in this process: it
    says which user row to read with the session's (the statement then checks both)."""

    def __init__(self, limit: int = SESSIONS_LIMIT):
        self.limit = limit
        self._users: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session_key: str) -> int | None:
        with self._lock:
            return self._users.get(session_key)

    def learn(self, request, session_key: str) -> None:
        """After the normal path: the user it found signed in on this session, if any."""
        user = getattr(request, "user", None)
        session = getattr(request, "session", None)
        signed_in = user is not None and user.is_authenticated and session is not None
        with self._lock:
            if signed_in and session.session_key == session_key:
                self._users[session_key] = user.pk
                self._users.move_to_end(session_key)
                while len(self._users) > self.limit:
                    self._users.popitem(last=False)
            else:
                self._users.pop(session_key, None)


def user_state(user) -> tuple:
    """Every column of the user's row: whatever the page shows of them is in it."""
    return tuple(field.value_from_object(user) for field in user._meta.concrete_fields)


def page_state(request, session_key: str, user_id: int) -> tuple | None:
    """Everything the first page shows, read now for this session and user; None when the
    normal path must answer (a session or user not as the normal path would let through,
    no question, a second page, a credit, or a connection that had to be reopened)."""
    sql, params = _statement()
    values = (*patient_list.for_patient(params, user_id), session_key, timezone.now())
    rows = read_as_health_check(lambda: run_prepared(sql, values) or [])
    if not rows:
        return None
    session, user, page = _parse(rows)
    if user is None or not is_quiet_patient(session, user):
        return None
    if not 0 < page.count <= patient_list.PER_PAGE or page.has_credit:
        return None
    return (user.pk, user_state(user), request.get_host(), request.is_secure(), page.digest, moving_clocks(page, user))


def _session_store():
    return import_module(settings.SESSION_ENGINE).SessionStore  # as SessionMiddleware finds it


@functools.cache
def _statement() -> tuple[str, tuple]:
    """One statement: the session's data (if it has not ended), the user's row, whether
    they have a doctor profile, then the rows of patient_list.first_page_statement.
    No row when the session or the user does not exist."""
    user_model = get_user_model()
    columns = ", ".join(f'u."{field.column}"' for field in user_model._meta.concrete_fields)
    session_model = _session_store().get_model_class()
    session = {
        name: session_model._meta.get_field(name).column for name in ("session_key", "session_data", "expire_date")
    }
    profile_user = DoctorProfile._meta.get_field("user").column
    user_id = user_model._meta.pk.column
    page_sql, page_params = patient_list.first_page_statement(FIXED_CLOCK_STATUSES)
    sql = (
        f'SELECT s."{session["session_data"]}", {columns}, '  # noqa: S608 - names from the models
        f'EXISTS(SELECT 1 FROM "{DoctorProfile._meta.db_table}" d WHERE d."{profile_user}" = u."{user_id}"), '
        f'p.* FROM "{session_model._meta.db_table}" s '
        f'JOIN "{user_model._meta.db_table}" u ON u."{user_id}" = %s '
        f"CROSS JOIN ({page_sql}) p "
        f'WHERE s."{session["session_key"]}" = %s AND s."{session["expire_date"]}" > %s'
    )
    return sql, (patient_list.PATIENT, *page_params)


@functools.cache
def _user_columns() -> tuple:
    """(the user model, its concrete fields' attribute names, its doctor profile relation),
    in the statement's order: the same for every request of the process."""
    user_model = get_user_model()
    names = tuple(field.attname for field in user_model._meta.concrete_fields)
    return user_model, names, user_model._meta.get_field("doctor_profile")


def _parse(rows: list[tuple]) -> tuple[dict, object, patient_list.FirstPage]:
    """(the session's data, the user, or None for a doctor, the page) from the statement's rows."""
    user_model, names, doctor_profile = _user_columns()
    first = rows[0]
    session = _session_store()().decode(first[0])
    is_doctor = first[1 + len(names)]
    user = None
    if not is_doctor:
        user = user_model.from_db(DEFAULT_DB_ALIAS, names, first[1 : 1 + len(names)])
        doctor_profile.set_cached_value(user, None)  # read: none
    page = patient_list.first_page_from([row[2 + len(names) :] for row in rows])
    return session, user, page


def moving_clocks(page: patient_list.FirstPage, user) -> tuple:
    """The clocks that can change with time alone (an answered or closed question's clock
    is fixed by its row, which the digest covers: views.patient_clock), as shown now."""
    if not page.moving:  # every question answered or closed: no clock moves
        return ()
    names = patient_list.LISTED_FIELDS
    now = timezone.now()
    with timezone.override(user_zone(user)):
        clocks = (patient_clock(SimpleNamespace(**dict(zip(names, row, strict=True))), now) for row in page.moving)
        shown = (
            (row[0], clock.state, clock.text, clock.due_iso) for row, clock in zip(page.moving, clocks, strict=True)
        )
        return tuple(sorted(shown))


def split_at_token(body: bytes, secret: str | None) -> tuple[bytes, ...] | None:
    """The body cut where its CSRF token stands (a token of `secret`), to be joined with a
    fresh one; None when any token field holds something else."""
    at = body.find(TOKEN_FIELD)
    if at < 0:
        return (body,)
    start = at + len(TOKEN_FIELD)
    token = body[start : body.find(b'"', start)]
    if secret is None or len(token) != 64 or _unmask_cipher_token(token.decode("ascii", "replace")) != secret:
        return None
    if body.count(TOKEN_FIELD) != body.count(TOKEN_FIELD + token):
        return None
    return tuple(body.split(token))


def kept_headers(response) -> tuple[tuple[str, str], ...] | None:
    """The response's headers to give every later answer; None for a response that must
    not be kept (a cookie other than the CSRF one, a CSP nonce)."""
    if set(response.cookies) - {settings.CSRF_COOKIE_NAME}:
        return None
    headers = tuple((name, value) for name, value in response.items() if name.lower() != "content-length")
    if any("nonce-" in value for name, value in headers if name.lower().startswith("content-security-policy")):
        return None
    return headers


class EarlyMyQuestionsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        layers_after(self, SKIPPED_LAYERS, "Early 'my questions' page")
        if connections[DEFAULT_DB_ALIAS].vendor != "postgresql" or not issubclass(_session_store(), DatabaseStore):
            raise MiddlewareNotUsed("the early 'my questions' page reads sessions from PostgreSQL")
        self.csrf = CsrfViewMiddleware(get_response)
        self.common = CommonMiddleware(get_response)
        self.pages = KeptPages()
        self.users = SessionUsers()
        self._path = None

    @property
    def path(self) -> str:
        if self._path is None:  # not at start-up: the URLconf may still be loading
            self._path = reverse("consultations:my_questions")
        return self._path

    def __call__(self, request):
        session_key = self.session_key(request)
        if session_key is None:
            return self.get_response(request)
        user_id = self.users.get(session_key)
        state = page_state(request, session_key, user_id) if user_id is not None else None
        if state is not None:
            kept = self.pages.get(user_id, state)
            if kept is not None:
                return self.answer(request, kept)
        response = self.get_response(request)
        self.users.learn(request, session_key)
        if state is not None:
            self.keep(request, session_key, state, response)
        return response

    def session_key(self, request) -> str | None:
        """The session cookie of a request this page may answer early, else None."""
        if request.method != "GET" or request.path_info != self.path or request.META.get("QUERY_STRING"):
            return None
        if "HTTP_AUTHORIZATION" in request.META:
            return None
        cookies = request.COOKIES
        session_key = cookies.get(settings.SESSION_COOKIE_NAME)
        if not session_key or not session_key.isalnum() or len(session_key) > SESSION_KEY_MAX:
            return None
        if set(cookies) - {settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME} or settings.CSRF_USE_SESSIONS:
            return None
        if self.common.process_request(request) is not None:
            return None
        return session_key

    def answer(self, request, kept: KeptPage) -> HttpResponse:
        self.csrf.process_request(request)
        body = csrf_token(request).encode().join(kept.parts)
        response = HttpResponse(body)
        for name, value in kept.headers:
            response.headers[name] = value
        response.headers["Content-Length"] = str(len(body))
        return self.csrf.process_response(request, response)

    def keep(self, request, session_key: str, state: tuple, response) -> None:
        """Keep the normal path's page for later requests, when it is the page of `state`."""
        if response.status_code != 200 or response.streaming:
            return
        if not response.get("Content-Type", "").startswith("text/html"):
            return
        user_id, user_row = state[:2]
        shown_to = getattr(request, "user", None)
        if shown_to is None or shown_to.pk != user_id or user_state(shown_to) != user_row:
            return
        session = getattr(request, "session", None)
        if session is None or session.modified or session.session_key != session_key:
            return
        headers = kept_headers(response)
        parts = split_at_token(response.content, request.META.get("CSRF_COOKIE"))
        if headers is None or parts is None:
            return
        if page_state(request, session_key, user_id) != state:
            return  # changed while the page was made: it may show either
        self.pages.put(user_id, KeptPage(state, parts, headers))
