"""Fixtures for integration tests with real processes: a Celery worker and beat consuming
from Redis, writing to the pytest test database, and private redis-servers to break.

Usage (see tests/integration/test_sla_worker.py):

    pytestmark = [pytest.mark.integration, requires_postgres_and_redis_server, pytest.mark.django_db(transaction=True)]

    def test_something(celery_stack):
        stack = celery_stack(env={"SLA_SWEEP_SECONDS": "1"})  # worker + beat, started and ready
        ...                                                    # commit data: they see the test database
        wait_for(lambda: Notification.objects.filter(status="sent").exists(), "the e-mail is sent")
        assert stack.emails()[0]["To"] == "patient@example.com"

- `celery_stack(broker_url=None, env=None, beat=True)` starts `celery -A portal worker`
  (solo pool) and `celery -A portal beat` as subprocesses in their own process
  groups, with DATABASE_URL pointing at the test database, REDIS_URL at
  `broker_url` (default: a private redis-server of its own), e-mail written to files in
  `stack.mail_dir`, and SLA_SWEEP_SECONDS / NOTIFICATION_RESEND_SECONDS of 1
  unless `env` says otherwise. It returns once the worker is ready. Everything
  it started is killed (whole process group) at teardown, before the test
  database is flushed. `stack.logs()` returns their output for failure messages.
- `redis_server(port=None)` starts a private redis-server (no persistence) on a
  free port and returns a handle with `.url`, `.port`, `.stop()` and `.start()`.
  Never touch the shared Redis: break only your own.
- `wait_for(predicate, what, timeout=20)` polls with a bounded wait.
- Tests need transactional_db (`django_db(transaction=True)`), because the
  processes only see committed rows.

The fault tests (tests/integration/test_faults_*.py) break things, so they use
the `cluster` fixture instead, with private redis-servers only (no REDIS_URL
needed; skipped without PostgreSQL or a redis-server binary):

    web = cluster.web("web", broker.url, {"FAULT_CACHE_URL": cache.url})  # gunicorn
    cluster.worker("worker-1", broker.url, {"FAULT_MAIL_PAUSE_SECONDS": "60"})
    cluster.beat("beat-1", broker.url)
    cluster.kill("worker-1")                    # SIGKILL to the whole process group
    Browser(web, patient).submit("/questions/ask/", {...})  # HTTP with session and CSRF

Its processes run tests.integration.fault_settings (e-mail through
fault_mail.FaultFileBackend: one file per message, optional pause before or
after handing a message over, announced in `cluster.mail_markers()`).
`cluster.sent_emails()` counts e-mails per (recipient, subject).
"""

import email
import email.header
import http.cookiejar
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests import pinned

BASE_DIR = Path(settings.BASE_DIR)
ON_POSTGRESQL = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def wait_for(predicate, what: str, timeout: float = 20, interval: float = 0.2, logs=None):
    """Poll `predicate` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    details = f"\n--- process output ---\n{logs()}" if logs else ""
    pytest.fail(f"Timed out after {timeout}s waiting for: {what}{details}")


def finished_runs(worker_log: str, task: str = "resend_pending_notifications") -> int:
    """How many runs of `task` a worker's log shows finished (succeeded or raised)."""
    return len(re.findall(rf"{re.escape(task)}\[[^\]]+\] (?:succeeded|raised)", worker_log))


def wait_for_more_runs(
    worker_log, runs: int = 2, task: str = "resend_pending_notifications", timeout: float = 20, logs=None
):
    """Wait until the worker finishes `runs` more runs of `task` than its log shows now.

    Before an absence check ("nothing was sent twice"): with a solo pool at most one run
    was under way now, so at least one run that started afterwards has finished; a
    positive signal rather than a fixed sleep that may be too short on a busy machine."""
    before = finished_runs(worker_log(), task)
    wait_for(
        lambda: finished_runs(worker_log(), task) >= before + runs,
        f"{runs} more {task} runs to finish",
        timeout,
        logs=logs,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url_for_processes() -> str:
    """The URL of the database pytest-django created for this run (test_<name>)."""
    db = connection.settings_dict
    auth = db["USER"] or ""
    if db["PASSWORD"]:
        auth += f":{db['PASSWORD']}"
    host = db["HOST"] or "127.0.0.1"
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{auth}@{host}{port}/{db['NAME']}"


def process_env(tmp_dir: Path, broker_url: str, extra: dict | None = None) -> dict:
    """Environment for a portal process that talks to the test database and `broker_url`."""
    mail_dir = tmp_dir / "mail"
    mail_dir.mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "CELERY_"))}
    # The settings the tests assume, not the developer's shell's; what follows overrides some.
    env.update(pinned.ENV)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "tests.integration.worker_settings",
            "DATABASE_URL": database_url_for_processes(),
            "PGAPPNAME": f"{tmp_dir.name}"[-63:],
            "DB_CONN_MAX_AGE": "0",
            "REDIS_URL": broker_url,
            "VAR_DIR": str(tmp_dir / "var"),
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(mail_dir),
            "SLA_SWEEP_SECONDS": "1",
            "NOTIFICATION_RESEND_SECONDS": "1",
            "CACHE_KEY_PREFIX": f"itest-{uuid.uuid4().hex[:8]}",
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "INFO",
        }
    )
    env.update(extra or {})
    return env


def read_emails(mail_dir: Path) -> list[email.message.Message]:
    """Every message the file backend wrote (it may append several to one file)."""
    messages = []
    for path in sorted(mail_dir.glob("*.log")):
        for chunk in path.read_text().split("\n" + "-" * 79 + "\n"):
            if chunk.strip():
                messages.append(email.message_from_string(chunk))
    return messages


class Processes:
    """Subprocesses in their own process groups, logging to files, killed as groups."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, args: list[str], env: dict) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        # Its database sessions carry the test's and the process's name: a session still open
        # when the suite ends is named by tests/conftest.py's last check.
        env = {**env, "PGAPPNAME": f"{self.log_dir.name}:{name}"[-63:]}
        proc = subprocess.Popen(
            args, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.procs.append((name, proc))
        return proc

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(f"== {name} ==\n{self.log(name)[-4000:]}" for name, _ in self.procs)

    def stop_all(self) -> None:
        for _, proc in self.procs:
            _kill_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _, proc in self.procs:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                _kill_group(proc, signal.SIGKILL)
                proc.wait(timeout=5)
        # Children of a killed group leader (the prefork pool, if any) go too.
        for _, proc in self.procs:
            _kill_group(proc, signal.SIGKILL)
        self.procs.clear()


def _kill_group(proc: subprocess.Popen, sig) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


CELERY = [sys.executable, "-m", "celery", "-A", "portal"]


def worker_command(purge: bool = True) -> list[str]:
    """A solo-pool worker: one task at a time, in the process that is started (and killed)."""
    command = CELERY + [
        "worker",
        "--loglevel=INFO",
        "--pool=solo",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-n",
        f"itest-{uuid.uuid4().hex[:8]}@%h",
    ]
    if purge:
        command.append("--purge")  # leftovers of an earlier run in this Redis db are not ours to run
    return command


def beat_command(directory: Path, name: str) -> list[str]:
    """A beat with its own schedule and pid files, so several can run side by side."""
    return CELERY + [
        "beat",
        "--loglevel=INFO",
        "--schedule",
        str(directory / f"{name}-schedule"),
        "--pidfile",
        str(directory / f"{name}.pid"),
    ]


class CeleryStack:
    def __init__(self, processes: Processes, env: dict):
        self.processes = processes
        self.env = env
        self.mail_dir = Path(env["EMAIL_FILE_PATH"])

    def emails(self) -> list[email.message.Message]:
        return read_emails(self.mail_dir)

    def logs(self) -> str:
        return self.processes.logs()

    def log(self, name: str) -> str:
        return self.processes.log(name)


@pytest.fixture
def celery_stack(transactional_db, tmp_path, redis_server):
    """Factory: start a real Celery worker (and beat) against the test database. See the module docstring.

    Without `broker_url` the stack gets a private redis-server of its own: a worker on the
    developer's shared Redis db could meet messages or beat state another run left there."""
    processes = Processes(tmp_path)

    def start(broker_url: str | None = None, env: dict | None = None, beat: bool = True) -> CeleryStack:
        stack_env = process_env(tmp_path, broker_url or redis_server().url, env)
        processes.start("worker", worker_command(), stack_env)
        stack = CeleryStack(processes, stack_env)
        wait_for(lambda: " ready." in processes.log("worker"), "the Celery worker to be ready", 30, logs=stack.logs)
        if beat:
            processes.start("beat", beat_command(tmp_path, "celerybeat"), stack_env)
        return stack

    yield start
    processes.stop_all()


class RedisServer:
    def __init__(self, directory: Path, port: int):
        self.directory = directory
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "RedisServer":
        self.proc = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for(self._accepts_connections, f"redis-server on port {self.port}", 10, 0.05)
        return self

    def _accepts_connections(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            _kill_group(self.proc, signal.SIGKILL)
            self.proc.wait(timeout=5)
        self.proc = None


@pytest.fixture
def redis_server(tmp_path):
    """Factory: a private redis-server on a free (or given) port; stopped at teardown."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    servers = []

    def start(port: int | None = None) -> RedisServer:
        directory = tmp_path / f"redis-{len(servers)}"
        directory.mkdir()
        server = RedisServer(directory, port or free_port()).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# --- The fault tests: several named processes, each killable on its own ------------------

requires_postgres_and_redis_server = pytest.mark.skipif(
    not (ON_POSTGRESQL and shutil.which("redis-server")),
    reason="fault tests need DATABASE_URL=postgres://... (worker processes cannot share an SQLite "
    "in-memory test database) and a redis-server binary to start private brokers they can break",
)

# The marks of a test module whose tasks go to real worker processes (its `pytestmark`).
WORKER_TEST_MARKS = [
    pytest.mark.integration,
    requires_postgres_and_redis_server,
    pytest.mark.django_db(transaction=True),
    # The test settings make tasks eager; send_task publishes all the same, which is what we want.
    pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored"),
]


class Cluster:
    """Named web servers, Celery workers and beats against the test database, sharing one
    mail folder. Each runs in its own process group, so `kill(name)` takes it out whole."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.processes = Processes(directory)
        self.by_name: dict[str, subprocess.Popen] = {}
        self.mail_dir = directory / "mail"
        self.markers = directory / "mail-markers"

    def env(self, broker_url: str, extra: dict | None = None) -> dict:
        return process_env(
            self.directory,
            broker_url,
            {
                "DJANGO_SETTINGS_MODULE": "tests.integration.fault_settings",
                "FAULT_MAIL_MARKERS": str(self.markers),
                "REQUIRE_2FA": "false",
                **(extra or {}),
            },
        )

    def _start(self, name: str, args: list[str], env: dict) -> subprocess.Popen:
        assert name not in self.by_name, f"{name} is already running"
        proc = self.processes.start(name, args, env)
        self.by_name[name] = proc
        return proc

    def worker(self, name: str, broker_url: str, env: dict | None = None, purge: bool = False) -> subprocess.Popen:
        """Start a worker and return once it consumes (after 'ready.')."""
        proc = self._start(name, worker_command(purge), self.env(broker_url, env))
        wait_for(lambda: " ready." in self.log(name), f"the Celery worker {name} to be ready", 30, logs=self.logs)
        return proc

    def beat(self, name: str, broker_url: str, env: dict | None = None) -> subprocess.Popen:
        return self._start(name, beat_command(self.directory, name), self.env(broker_url, env))

    def web(self, name: str, broker_url: str, env: dict | None = None, workers: int = 2) -> str:
        """Start gunicorn serving the portal; return its base URL once it answers."""
        port = free_port()
        args = [
            sys.executable,
            "-m",
            "gunicorn",
            "portal.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--timeout",
            "60",
            "--graceful-timeout",
            "2",
            # Several gunicorns run at once here: no shared control socket in ~/.gunicorn.
            "--no-control-socket",
        ]
        self._start(name, args, self.env(broker_url, env))
        base_url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(base_url + "/accounts/login/"), f"the web server {name}", 30, logs=self.logs)
        return base_url

    def kill(self, name: str) -> None:
        """SIGKILL the whole process group: no clean-up code of ours runs."""
        proc = self.by_name.pop(name)
        _kill_group(proc, signal.SIGKILL)
        proc.wait(timeout=10)

    def log(self, name: str) -> str:
        return self.processes.log(name)

    def logs(self) -> str:
        return self.processes.logs()

    def emails(self) -> list[email.message.Message]:
        return read_emails(self.mail_dir) if self.mail_dir.exists() else []

    def sent_emails(self) -> Counter:
        """How many e-mails went to each (recipient, subject)."""
        return Counter((message["To"], _header(message, "Subject")) for message in self.emails())

    def mail_markers(self) -> list[list[str]]:
        """What the fault e-mail backend was doing when it paused: [when, to, subject] each."""
        if not self.markers.exists():
            return []
        return [path.read_text().splitlines() for path in sorted(self.markers.glob("*.txt"))]

    def stop_all(self) -> None:
        self.processes.stop_all()
        self.by_name.clear()


def _header(message: email.message.Message, name: str) -> str:
    """A header as one plain line: decoded (=?utf-8?...) and unfolded."""
    return " ".join(str(email.header.make_header(email.header.decode_header(message[name]))).split())


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


@pytest.fixture
def cluster(transactional_db, tmp_path):
    """A `Cluster` in this test's folder; everything it started is killed before the database is flushed."""
    started = Cluster(tmp_path)
    yield started
    started.stop_all()


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """A signed-in visitor talking HTTP to a real web server: cookies kept, CSRF token taken
    from each form page like a browser would, redirects returned, not followed."""

    CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')

    def __init__(self, base_url: str, user=None):
        self.base_url = base_url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), NoRedirects)
        if user is not None:
            self.sign_in_as(user)

    def sign_in_as(self, user) -> None:
        """A session stored in the test database, as after a real sign-in (Django's force_login)."""
        from django.test import Client

        client = Client()
        client.force_login(user, backend="portal.auth_backends.PortalModelBackend")
        host = urllib.parse.urlsplit(self.base_url).hostname
        for name, morsel in client.cookies.items():
            self.jar.set_cookie(_cookie(name, morsel.value, host))

    def request(self, method: str, path: str, data: dict | None = None, timeout: float = 30):
        """(status, location or body, seconds taken)."""
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(self.base_url + path, data=body, method=method)
        started = time.monotonic()
        try:
            response = self.opener.open(req, timeout=timeout)
        except urllib.error.HTTPError as error:  # 3xx (not followed), 4xx, 5xx
            response = error
        with response:
            content = response.read().decode(errors="replace")
            status = response.status if hasattr(response, "status") else response.code
            location = response.headers.get("Location")
        return status, (location if 300 <= status < 400 else content), time.monotonic() - started

    def get(self, path: str):
        return self.request("GET", path)

    def submit(self, form_path: str, data: dict, post_path: str | None = None):
        """Open the form page, then post `data` with the page's CSRF token."""
        status, page, _ = self.get(form_path)
        assert status == 200, f"GET {form_path} answered {status}"
        token = self.CSRF_FIELD.search(page)
        assert token, f"no CSRF token on {form_path}"
        return self.request("POST", post_path or form_path, {**data, "csrfmiddlewaretoken": token.group(1)})


def _cookie(name: str, value: str, host: str) -> http.cookiejar.Cookie:
    return http.cookiejar.Cookie(
        version=0,
        name=name,
        value=value,
        port=None,
        port_specified=False,
        domain=host,
        domain_specified=False,
        domain_initial_dot=False,
        path="/",
        path_specified=True,
        secure=False,
        expires=None,
        discard=True,
        comment=None,
        comment_url=None,
        rest={},
    )
