"""Start and stop the servers the bench measures: gunicorn, a Celery worker and beat.

Each runs as its own process group with the bench's environment; its output
goes to a log file under bench/results/logs so a failure can be read.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / "bench" / "results" / "logs"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def default_web_workers() -> int:
    # Sync workers block on the database; a couple per core keeps the CPUs busy.
    return int(os.environ.get("BENCH_WEB_WORKERS", 2 * (os.cpu_count() or 1)))


class Service:
    """One child process in its own process group, stopped with SIGTERM then SIGKILL."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT):
        self.cwd = cwd
        self.name = name
        self.argv = argv
        self.env = {**os.environ, **(env or {})}
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOG_DIR / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> "Service":
        log = self.log_path.open("w")
        self.process = subprocess.Popen(
            self.argv, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 15) -> None:
        if not self.running():
            return
        pgid = os.getpgid(self.process.pid)
        os.killpg(pgid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.process.wait(5)
        # Celery's prefork children and gunicorn's workers share the group.
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Gunicorn(Service):
    def __init__(
        self,
        workers: int | None = None,
        port: int | None = None,
        env: dict[str, str] | None = None,
        app: str = "portal.wsgi",
        name: str = "gunicorn",
        cwd: Path = ROOT,
    ):
        # Every app the bench serves (the portal, the bare baseline) gets the same arguments.
        self.workers = workers or default_web_workers()
        self.port = port or free_port()
        super().__init__(
            name,
            [
                str(BIN / "gunicorn"),
                app,
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
                "--worker-class",
                "sync",
                "--backlog",
                "2048",
                "--log-level",
                "warning",
                "--no-control-socket",
            ],
            env,
            cwd,
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, path: str = "/bench/trivial/", timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise RuntimeError(f"gunicorn exited during start-up:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base_url + path, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer within {timeout:.0f} s:\n{self.log_tail()}")


def celery_worker(
    env: dict[str, str], concurrency: int = 2, name: str = "celery-worker", loglevel: str = "warning"
) -> Service:
    return Service(
        name,
        [
            str(BIN / "celery"),
            "-A",
            "portal",
            "worker",
            "--loglevel",
            loglevel,
            "--concurrency",
            str(concurrency),
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            # Several workers side by side need their own node names.
            "-n",
            f"{name}@%h",
        ],
        env,
    )


def celery_beat(env: dict[str, str], schedule_file: Path, name: str = "celery-beat") -> Service:
    return Service(
        name,
        [str(BIN / "celery"), "-A", "portal", "beat", "--loglevel", "warning", "--schedule", str(schedule_file)],
        env,
    )
