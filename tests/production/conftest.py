"""The production shape, started once for tests/production/test_production.py.

`prod_shape` runs deploy/run_prod.py, the very script behind `make run-prod`,
with its own ports and working folder, a redis-server of its own and the test
database: check --deploy, migrate, collectstatic with the manifest, the demo,
then nginx (HTTPS) -> two gunicorn, two Celery workers and two beats under
deploy/supervise.py. The tests talk to it over HTTPS through nginx only, and use
the ORM on the same test database to set up data and check what the processes
did. At the end the shape is stopped with SIGINT (Ctrl+C) and the test database
is emptied, as after any transactional test.
"""

import http.cookiejar
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from tests import pinned
from tests.integration.conftest import ON_POSTGRESQL, RedisServer, database_url_for_processes, free_port

BASE_DIR = Path(settings.BASE_DIR)
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
STARTED = re.compile(r"^\S+ (\S+)\s+\| started \(pid (\d+)\)", re.MULTILINE)
# Short intervals so that the tests see sweeps and re-sends within seconds.
SHAPE_SETTINGS = {
    "SLA_SWEEP_SECONDS": "2",
    "NOTIFICATION_RESEND_SECONDS": "2",
    "NOTIFICATION_SEND_LOCK_SECONDS": "10",
    "EMAIL_TIMEOUT": "5",
    "WEB_CONCURRENCY": "2",
    "WORKER_CONCURRENCY": "2",
}

requires_production_tools = pytest.mark.skipif(
    not (ON_POSTGRESQL and shutil.which("redis-server") and NGINX and shutil.which("openssl")),
    reason="the production smoke test needs DATABASE_URL=postgres://..., redis-server, nginx and openssl "
    "(Debian packages redis-server, nginx, openssl; .ci/run installs them)",
)


class Shape:
    """The running production shape: its URLs, its output, its processes."""

    def __init__(self, directory: Path, ports: dict, log: Path, proc: subprocess.Popen):
        self.directory = directory
        self.https_url = f"https://127.0.0.1:{ports['https']}"
        self.http_url = f"http://127.0.0.1:{ports['http']}"
        self.log_path = log
        self.proc = proc
        self.ready_at = 0
        self.env: dict = {}
        self._tls = None

    @property
    def tls(self) -> ssl.SSLContext:
        """Trusts the shape's self-signed certificate only (it exists once run_prod.py made it)."""
        if self._tls is None:
            self._tls = ssl.create_default_context(cafile=str(self.directory / "tls" / "cert.pem"))
        return self._tls

    def output(self, since_ready: bool = False) -> str:
        text = self.log_path.read_text(errors="replace")
        return text[self.ready_at :] if since_ready else text

    def lines(self, name: str, since_ready: bool = False) -> list[str]:
        """What process `name` printed (the supervisor's prefix removed)."""
        pattern = re.compile(rf"^\S+ {re.escape(name)}\s+\| (.*)$", re.MULTILINE)
        return pattern.findall(self.output(since_ready))

    def pids(self, name: str) -> list[int]:
        return [int(pid) for found, pid in STARTED.findall(self.output()) if found == name]

    def kill(self, name: str) -> int:
        """SIGKILL the newest process group of `name`; the supervisor is to start it again."""
        pid = self.pids(name)[-1]
        os.killpg(pid, signal.SIGKILL)
        return pid

    def production_setting(self, name: str) -> str:
        """repr() of a setting as the shape's processes see it (PRODUCTION=true, the shape's environment)."""
        env = {
            **self.env,
            "PRODUCTION": "true",
            "SECRET_KEY": (self.directory / "secret_key").read_text().strip(),
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(self.mail_dir()),
        }
        code = f"from django.conf import settings; print(repr(getattr(settings, {name!r}, None)))"
        result = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().splitlines()[-1]

    def mail_dir(self) -> Path:
        return self.directory / "mail"

    def client(self) -> "Client":
        return Client(self.https_url, self.tls)


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Response:
    def __init__(self, status: int, headers, body: str):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def location(self) -> str:
        return self.headers.get("Location", "")

    def set_cookies(self) -> list[str]:
        return self.headers.get_all("Set-Cookie") or []


class Client:
    """A browser over HTTPS through nginx: keeps cookies, takes CSRF tokens from forms,
    returns redirects instead of following them, and trusts only the shape's certificate."""

    CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')

    def __init__(self, base_url: str, tls: ssl.SSLContext):
        self.base_url = base_url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), urllib.request.HTTPSHandler(context=tls), NoRedirects
        )
        self.responses: list[tuple[str, str, int]] = []

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> Response:
        url = path if path.startswith("https://") else self.base_url + path
        req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            response = self.opener.open(req, timeout=60)
        except urllib.error.HTTPError as error:  # 3xx (not followed), 4xx, 5xx
            response = error
        with response:
            result = Response(response.status, response.headers, response.read().decode(errors="replace"))
        self.responses.append((method, path, result.status))
        return result

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def token(self, page: Response) -> str:
        match = self.CSRF_FIELD.search(page.body)
        assert match, "no CSRF token on the page"
        return match.group(1)

    def post(self, path: str, fields: dict, files: dict | None = None, referer_path: str | None = None) -> Response:
        """POST a form (multipart when `files` maps a field to (file name, content type, bytes))."""
        headers = {"Referer": self.base_url + (referer_path or path), "Origin": self.base_url}
        if files:
            boundary = uuid.uuid4().hex
            body = multipart(boundary, fields, files)
            headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
        else:
            body = urllib.parse.urlencode(fields).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        return self.request("POST", path, body, headers)

    def submit(self, path: str, fields: dict, files: dict | None = None, post_path: str | None = None) -> Response:
        """Open the form page, then post `fields` with its CSRF token, as a browser would."""
        page = self.get(path)
        assert page.status == 200, f"GET {path} answered {page.status}"
        return self.post(post_path or path, {**fields, "csrfmiddlewaretoken": self.token(page)}, files, path)


def multipart(boundary: str, fields: dict, files: dict) -> bytes:
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, content_type, content) in files.items():
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        )
        parts.append(head.encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts)


def _answers(shape: Shape) -> bool:
    try:
        with urllib.request.urlopen(shape.https_url + "/accounts/login/", timeout=2, context=shape.tls) as response:  # noqa: S310
            return response.status == 200
    except OSError:
        return False


def _wait(predicate, what: str, timeout: float, shape: Shape) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if shape.proc.poll() is not None:
            pytest.fail(f"deploy/run_prod.py stopped (exit code {shape.proc.returncode}):\n{shape.output()[-6000:]}")
        if predicate():
            return
        time.sleep(0.25)
    pytest.fail(f"Timed out after {timeout}s waiting for {what}:\n{shape.output()[-6000:]}")


@pytest.fixture(scope="module")
def prod_shape(django_db_setup, django_db_blocker, tmp_path_factory):
    # Not under pytest's temporary folder (mode 0700): nginx's workers, which drop to `nobody`
    # when started as root, write their temporary files in here.
    directory = Path(tempfile.mkdtemp(prefix="portal-prod-"))
    directory.chmod(0o755)
    (directory / "redis").mkdir()
    redis = RedisServer(directory / "redis", free_port()).start()
    ports = {"https": free_port(), "http": free_port(), "web": [free_port(), free_port()]}
    with django_db_blocker.unblock():
        database_url = database_url_for_processes()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "CELERY_"))}
    # Set by tests/conftest.py for Playwright; `check --deploy` rightly refuses it in production.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.update(pinned.ENV)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis.url,
            "CACHE_KEY_PREFIX": f"prodtest-{uuid.uuid4().hex[:8]}",
            "RUN_PROD_DIR": str(directory / "prod"),
            "RUN_PROD_HTTPS_PORT": str(ports["https"]),
            "RUN_PROD_HTTP_PORT": str(ports["http"]),
            "RUN_PROD_WEB_PORTS": ",".join(map(str, ports["web"])),
            **SHAPE_SETTINGS,
        }
    )
    log = directory / "run-prod.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(BASE_DIR / "deploy" / "run_prod.py")],
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    shape = Shape(directory / "prod", ports, log, proc)
    shape.env = env
    started = time.monotonic()
    stopped = None
    try:
        _wait(
            lambda: all(any("Listening at" in line for line in shape.lines(web)) for web in ("web-1", "web-2")),
            "both gunicorn instances to listen",
            120,
            shape,
        )
        _wait(lambda: _answers(shape), "nginx and gunicorn to answer over HTTPS", 30, shape)
        _wait(
            lambda: (
                all(any(" ready." in line for line in shape.lines(f"worker-{n}")) for n in (1, 2))
                and all(any("beat: Starting..." in line for line in shape.lines(f"beat-{n}")) for n in (1, 2))
            ),
            "both workers and both beats",
            60,
            shape,
        )
        print(f"\nthe production shape started in {time.monotonic() - started:.1f} s")
        # Requests from here on are the tests' (nginx answers 502 while gunicorn is still starting).
        shape.ready_at = len(shape.output())
        with django_db_blocker.unblock():
            yield shape
    finally:
        try:
            stopped = _stop(shape)
            output = shape.output()
            kept = tmp_path_factory.getbasetemp() / "production-shape.log"
            shutil.copy(log, kept)
            print(f"\nthe production shape's output: {kept}")
        finally:
            redis.stop()
            shutil.rmtree(directory, ignore_errors=True)
        with django_db_blocker.unblock():
            call_command("flush", interactive=False, verbosity=0)
    assert stopped == 0, f"deploy/supervise.py did not stop cleanly on SIGINT (exit code {stopped})"
    # A warm shutdown: no pool process killed under a task, nothing killed after the grace period.
    shutdown = output[re.search(r"supervise\s+\| stopping", output).start() :]
    assert "Traceback" not in shutdown and "WorkerLostError" not in shutdown, shutdown[-5000:]
    assert "still running after the grace period" not in shutdown, shutdown[-5000:]


def _stop(shape: Shape) -> int | None:
    """Ctrl+C (SIGINT to the supervisor); then make sure nothing of the shape is left."""
    code = None
    if shape.proc.poll() is None:
        shape.proc.send_signal(signal.SIGINT)
        try:
            code = shape.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            pass
    else:
        code = shape.proc.returncode
    for pid in [shape.proc.pid] + [int(pid) for _, pid in STARTED.findall(shape.output())]:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    shape.proc.wait(timeout=10)
    return code
