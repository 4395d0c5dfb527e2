"""Small asyncio HTTP load clients: fixed concurrency for a fixed time.

Pages are fetched with aiohttp (the same client for the portal and the bare
baselines it is compared with); the asking patients use bench.raw_http, a
leaner client, since their figure is an absolute latency on shared cores.
Every request's latency is kept, so percentiles are exact. The client's own
CPU time is recorded too: it shares the machine with the server, and a
reader should see how much of the machine it took.
"""

import asyncio
import itertools
import math
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import aiohttp

from bench import raw_http
from bench.forms import RepeatedForm, fill, find_form

TIMEOUT = aiohttp.ClientTimeout(total=30)
# Logging in hashes a password (about a second of CPU under load); it is set-up,
# not measured, so clients log in a few at a time with a generous timeout.
LOGIN_TIMEOUT = aiohttp.ClientTimeout(total=120)
CONCURRENT_LOGINS = 4
# Where a successful submission sends the patient: a page of the new question.
SUCCESS_LOCATION = re.compile(r"/questions/\d+/")


@dataclass
class LoadResult:
    concurrency: int
    seconds: float = 0.0
    ok: int = 0
    outcomes: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    client_cpu_seconds: float = 0.0
    first_error: str = ""

    @property
    def requests(self) -> int:
        return sum(self.outcomes.values())

    @property
    def errors(self) -> int:
        return self.requests - self.ok

    @property
    def per_second(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile_ms(self, p: float) -> float | None:
        return percentile(self.latencies, p) * 1000 if self.latencies else None

    @classmethod
    def merged(cls, parts: list["LoadResult"]) -> "LoadResult":
        """Several runs of the same load as one: counts and times added, latencies pooled."""
        whole = cls(parts[0].concurrency)
        for part in parts:
            whole.seconds += part.seconds
            whole.ok += part.ok
            whole.outcomes.update(part.outcomes)
            whole.latencies.extend(part.latencies)
            whole.client_cpu_seconds += part.client_cpu_seconds
            whole.first_error = whole.first_error or part.first_error
        return whole

    def record(self, outcome: str, ok: bool, latency: float, detail: str = "") -> None:
        self.outcomes[outcome] += 1
        if ok:
            self.ok += 1
            self.latencies.append(latency)
        elif detail and not self.first_error:
            self.first_error = detail[:500]

    def as_dict(self) -> dict:
        return {
            "concurrency": self.concurrency,
            "seconds": round(self.seconds, 3),
            "requests": self.requests,
            "ok": self.ok,
            "errors": self.errors,
            "outcomes": dict(self.outcomes),
            "per_second": round(self.per_second, 1),
            "p50_ms": _round(self.percentile_ms(50)),
            "p95_ms": _round(self.percentile_ms(95)),
            "p99_ms": _round(self.percentile_ms(99)),
            "max_ms": _round(max(self.latencies) * 1000 if self.latencies else None),
            "client_cpu_percent_of_one_core": round(100 * self.client_cpu_seconds / self.seconds, 1)
            if self.seconds
            else None,
            "first_error": self.first_error,
        }


def _round(value, digits=1):
    return None if value is None else round(value, digits)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile: a latency some request really had."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def _session() -> aiohttp.ClientSession:
    # Gunicorn's sync workers close every connection; so does the client. No cookie jar: a
    # signed-in page is fetched with its Cookie header given (`headers`).
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(), timeout=TIMEOUT)


# --- Pages ----------------------------------------------------------------------------


async def _get_loop(session, url, deadline, result: LoadResult, headers: dict | None, expected: int = 200):
    while time.monotonic() < deadline:
        started = time.perf_counter()
        try:
            async with session.get(url, headers=headers, allow_redirects=False) as response:
                await response.read()
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            result.record(type(exc).__name__, False, 0.0, repr(exc))
            continue
        result.record(str(status), status == expected, time.perf_counter() - started, f"HTTP {status} for {url}")


async def _run_get(url: str, concurrency: int, seconds: float, headers: dict | None, expected: int = 200) -> LoadResult:
    result = LoadResult(concurrency)
    async with _session() as session:
        cpu_start, started = time.process_time(), time.monotonic()
        deadline = started + seconds
        await asyncio.gather(
            *(_get_loop(session, url, deadline, result, headers, expected) for _ in range(concurrency))
        )
        result.seconds = time.monotonic() - started
        result.client_cpu_seconds = time.process_time() - cpu_start
    return result


def measure_get(
    url: str,
    concurrency: int,
    seconds: float,
    warmup: float = 2.0,
    headers: dict | None = None,
    expected: int = 200,
) -> LoadResult:
    """GET `url` from `concurrency` clients for `seconds` after a warm-up (discarded);
    a response counts as ok with the `expected` status (304 for a conditional GET)."""
    if warmup:
        asyncio.run(_run_get(url, concurrency, warmup, headers, expected))
    return asyncio.run(_run_get(url, concurrency, seconds, headers, expected))


# --- Asking through the real form -------------------------------------------------------

SYMPTOMS = [
    ("A dry, itchy patch on my elbow", "It started two weeks ago and gets worse after showers."),
    ("Knee aches after running", "The inside of my left knee aches for a day after a 5 km run."),
    ("Headache behind the eyes in the evening", "Mostly after long days at the computer, eased by rest."),
    ("Blocked nose for three weeks", "No fever. It is worse at night and in the morning."),
    ("Red spots on my child's arms", "Small, not itchy, appeared after a day at the lake."),
]


def question_values(n: int, rng: random.Random) -> dict[str, str]:
    title, story = rng.choice(SYMPTOMS)
    return {
        "title": f"{title} (bench {n})",
        "description": f"{story} I would like to know whether I should see someone in person. Question {n}.",
        "age": str(rng.randint(18, 80)),
        "medical_history": "Mild asthma as a child.",
        "current_medication": "None.",
    }


class FormError(Exception):
    pass


@dataclass(frozen=True)
class Attachment:
    """A file posted with every question (the photo variant of the asking benchmark)."""

    name: str
    content: bytes
    content_type: str


class AskingClient:
    """One signed-in patient: logs in through the login form, then asks again and again.

    Its requests go through bench.raw_http, not aiohttp: it shares the cores with the
    server it measures, and aiohttp's machinery cost about 1 ms of CPU per request."""

    def __init__(
        self,
        base_url: str,
        email: str,
        password: str,
        ask_path: str,
        login_path: str,
        seed: int,
        attachment: Attachment | None = None,
    ):
        self.attachment = attachment
        self.email = email
        self.password = password
        self.ask_path = ask_path
        self.login_path = login_path
        self.rng = random.Random(seed)
        self.http = raw_http.Client(base_url, TIMEOUT.total)
        self.ask_form = RepeatedForm("title")

    async def login(self, gate: asyncio.Semaphore) -> None:
        async with gate:
            await self._login()

    async def _login(self) -> None:
        page = await self.http.get(self.login_path, timeout=LOGIN_TIMEOUT.total)
        form = find_form(page.text(), "password")
        if form is None:
            raise FormError(f"no login form at {self.login_path} (HTTP {page.status})")
        login_field = next(
            (f.name for f in form.fields if f.type in ("email", "text") and f.name != "csrfmiddlewaretoken"), "username"
        )
        data = fill(form, {login_field: self.email, "password": self.password})
        action = _path(urljoin(self.login_path, form.action or self.login_path))
        response = await self.http.post(action, *raw_http.urlencoded(data), timeout=LOGIN_TIMEOUT.total)
        if response.status != 302:
            raise FormError(f"login as {self.email} failed: HTTP {response.status}")

    async def ask_once(self, n: int, result: LoadResult) -> None:
        """GET the form (for its CSRF token and choices), POST it; record the POST."""
        try:
            page = await self.http.get(self.ask_path)
        except raw_http.REQUEST_ERRORS as exc:
            result.record(f"form {type(exc).__name__}", False, 0.0, repr(exc))
            return
        form = self.ask_form.find(page.text()) if page.status == 200 else None
        if form is None:
            result.record(
                f"form HTTP {page.status}", False, 0.0, f"GET {self.ask_path}: HTTP {page.status}, no question form"
            )
            return
        body, content_type = self._body(fill(form, question_values(n, self.rng)))
        action = _path(urljoin(self.ask_path, form.action or self.ask_path))
        started = time.perf_counter()
        try:
            response = await self.http.post(action, body, content_type)
        except raw_http.REQUEST_ERRORS as exc:
            result.record(type(exc).__name__, False, 0.0, repr(exc))
            return
        latency = time.perf_counter() - started
        status, location = response.status, response.headers.get("location", "")
        if status in (301, 302, 303) and SUCCESS_LOCATION.search(location):
            result.record("success (redirect)", True, latency)
        elif status == 200:
            result.record("200 form redisplayed", False, latency, _form_errors(response.text()))
        else:
            where = f" to {location}" if location else ""
            result.record(f"HTTP {status}", False, latency, f"HTTP {status}{where}: {response.text()[:300]}")

    def _body(self, values: dict[str, str]) -> tuple[bytes, str]:
        """The form's values, with the attachment as a multipart body when there is one."""
        if self.attachment is None:
            return raw_http.urlencoded(values)
        file = self.attachment
        return raw_http.multipart(values, [("attachments", file.name, file.content, file.content_type)])


def _path(url: str) -> str:
    """The path and query of a same-host URL (a form's action)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _form_errors(html: str) -> str:
    """The first validation message on a redisplayed form, for the report."""
    for marker in ('class="invalid-feedback', "errorlist", 'class="alert'):
        at = html.find(marker)
        if at >= 0:
            return " ".join(html[at : at + 400].split())
    return "form redisplayed without a visible error"


async def _ask_loop(client: AskingClient, deadline: float, result: LoadResult, counter):
    while time.monotonic() < deadline:
        await client.ask_once(next(counter), result)


async def _run_asking(
    base_url, patients, password, concurrency, seconds, ask_path, login_path, attachment=None, on_start=None
) -> LoadResult:
    clients = [
        AskingClient(base_url, patients[i], password, ask_path, login_path, seed=i, attachment=attachment)
        for i in range(concurrency)
    ]
    result = LoadResult(concurrency)
    # Nothing to close afterwards: each request opens and closes its own connection.
    gate = asyncio.Semaphore(CONCURRENT_LOGINS)
    await asyncio.gather(*(c.login(gate) for c in clients))
    if on_start is not None:
        on_start()  # the measured window begins: logins (password hashing) are set-up
    counter = itertools.count(1)
    cpu_start, started = time.process_time(), time.monotonic()
    deadline = started + seconds
    await asyncio.gather(*(_ask_loop(c, deadline, result, counter) for c in clients))
    result.seconds = time.monotonic() - started
    result.client_cpu_seconds = time.process_time() - cpu_start
    return result


def measure_asking(
    base_url: str,
    patients: list[str],
    password: str,
    concurrency: int,
    seconds: float,
    ask_path: str,
    login_path: str,
    attachment: Attachment | None = None,
    on_start=None,
) -> LoadResult:
    """`concurrency` signed-in patients, each asking in a loop (GET form, POST) for `seconds`,
    each question with `attachment` when given; `on_start()` is called once all are signed in."""
    if len(patients) < concurrency:
        raise ValueError("one patient per client is needed")
    return asyncio.run(
        _run_asking(base_url, patients, password, concurrency, seconds, ask_path, login_path, attachment, on_start)
    )
