"""Fixtures for integration tests with real processes: a Celery worker and beat consuming
from Redis, writing to the pytest test database, and private redis-servers to break.

Usage (see tests/integration/test_sla_worker.py):

    pytestmark = [pytest.mark.integration, requires_postgres_and_redis, pytest.mark.django_db(transaction=True)]

    def test_something(celery_stack):
        stack = celery_stack(env={"SLA_SWEEP_SECONDS": "1"})  # worker + beat, started and ready
        ...                                                    # commit data: they see the test database
        wait_for(lambda: Notification.objects.filter(status="sent").exists(), "the e-mail is sent")
        assert stack.emails()[0]["To"] == "patient@example.com"

- `celery_stack(broker_url=None, env=None, beat=True)` starts `celery -A portal worker`
  (solo pool) and `celery -A portal beat` as subprocesses in their own process
  groups, with DATABASE_URL pointing at the test database, REDIS_URL at
  `broker_url` (default: this run's REDIS_URL), e-mail written to files in
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
"""

import email
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

BASE_DIR = Path(settings.BASE_DIR)
ON_POSTGRESQL = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"

requires_postgres_and_redis = pytest.mark.skipif(
    not (ON_POSTGRESQL and os.environ.get("REDIS_URL")),
    reason="integration tests need DATABASE_URL=postgres://... and REDIS_URL=redis://... "
    "(real worker processes cannot share an SQLite in-memory test database)",
)


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
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "tests.integration.worker_settings",
            "DATABASE_URL": database_url_for_processes(),
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
def celery_stack(transactional_db, tmp_path):
    """Factory: start a real Celery worker (and beat) against the test database. See the module docstring."""
    processes = Processes(tmp_path)

    def start(broker_url: str | None = None, env: dict | None = None, beat: bool = True) -> CeleryStack:
        stack_env = process_env(tmp_path, broker_url or os.environ["REDIS_URL"], env)
        celery = [sys.executable, "-m", "celery", "-A", "portal"]
        processes.start(
            "worker",
            celery
            + [
                "worker",
                "--loglevel=INFO",
                "--pool=solo",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--purge",  # leftovers of an earlier run in this Redis db are not ours to run
                "-n",
                f"itest-{uuid.uuid4().hex[:8]}@%h",
            ],
            stack_env,
        )
        stack = CeleryStack(processes, stack_env)
        wait_for(lambda: " ready." in processes.log("worker"), "the Celery worker to be ready", 30, logs=stack.logs)
        if beat:
            processes.start(
                "beat",
                celery
                + [
                    "beat",
                    "--loglevel=INFO",
                    "--schedule",
                    str(tmp_path / "celerybeat-schedule"),
                    "--pidfile",
                    str(tmp_path / "celerybeat.pid"),
                ],
                stack_env,
            )
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
