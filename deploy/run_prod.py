#!/usr/bin/env python3
"""`make run-prod`: the production shape on one machine, for trying it and for CI.

    DATABASE_URL=postgres://... REDIS_URL=redis://... .venv/bin/python deploy/run_prod.py

nginx (HTTPS with a self-signed certificate, HTTP only for /healthz and the
redirect) -> two gunicorn instances -> PostgreSQL + Redis, two Celery workers
and two beats "on two hosts" (deploy/Procfile.prod), all under
deploy/supervise.py, which restarts what exits and stops everything on Ctrl+C.

Before starting it: keeps a generated SECRET_KEY and the certificate in
RUN_PROD_DIR (default var/prod), checks the settings (`check --deploy`),
migrates, collects the static files with the manifest, loads the demo (unless
RUN_PROD_DEMO=false) and runs one SLA sweep. E-mails are written to files in
RUN_PROD_DIR/mail. Ports: RUN_PROD_HTTPS_PORT (8443), RUN_PROD_HTTP_PORT (8080),
RUN_PROD_WEB_PORTS (8001,8002). Everything binds to 127.0.0.1 only.
"""

import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DEPLOY = BASE_DIR / "deploy"
PYTHON = sys.executable


class Stop(Exception):
    """A problem the operator must fix: printed without a traceback."""


def say(text: str) -> None:
    print(f"run-prod: {text}", flush=True)


def secret_key(prod_dir: Path) -> str:
    """The persisted SECRET_KEY: generated once (86 random URL-safe characters), kept private."""
    path = prod_dir / "secret_key"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(64) + "\n")
        say(f"generated a new SECRET_KEY in {path}")
    key = path.read_text().strip()
    if len(key) < 50:
        raise Stop(f"{path} holds a key shorter than 50 characters: delete the file to get a new one")
    return key


def certificate(tls_dir: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1, renewed a day before it expires."""
    cert, key = tls_dir / "cert.pem", tls_dir / "key.pem"
    openssl = shutil.which("openssl")
    if openssl is None:
        raise Stop("openssl is not installed (Debian package openssl)")
    if cert.exists() and key.exists():
        valid = subprocess.run([openssl, "x509", "-checkend", "86400", "-noout", "-in", cert], capture_output=True)  # noqa: S603
        if valid.returncode == 0:
            return cert, key
    tls_dir.mkdir(parents=True, exist_ok=True)
    made = subprocess.run(  # noqa: S603
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "365", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1",
         "-keyout", key, "-out", cert],
        capture_output=True, text=True,
    )  # fmt: skip
    if made.returncode != 0:
        raise Stop(f"openssl could not make the self-signed certificate:\n{made.stderr}")
    key.chmod(0o600)
    say(f"made a self-signed certificate: {cert}")
    return cert, key


def render(template: Path, target: Path, values: dict) -> None:
    """Fill in the template's @NAMES@ (outside its comments, which keep describing them)."""
    lines = []
    for line in template.read_text().splitlines():
        code, hash_, comment = line.partition("#")
        for name, value in values.items():
            code = code.replace(f"@{name}@", value)
        unfilled = re.findall(r"@[A-Z_]+@", code)
        if unfilled:
            raise Stop(f"{template}: {', '.join(unfilled)} left unfilled")
        lines.append(code + hash_ + comment)
    target.write_text("\n".join(lines) + "\n")


def nginx_config(prod_dir: Path, ports: dict, cert: Path, key: Path) -> tuple[str, Path]:
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if nginx is None:
        raise Stop("nginx is not installed (Debian package nginx)")
    nginx_dir = prod_dir / "nginx"
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (nginx_dir / "tmp" / name).mkdir(parents=True, exist_ok=True)
    user = "# Not started as root: the workers run as the user who started nginx."
    if os.geteuid() == 0:
        # Started as root (a container): the workers that talk to clients drop to nobody,
        # and only need to write their temporary files.
        user = "user nobody nogroup;"
        for folder in [nginx_dir / "tmp", *(nginx_dir / "tmp").iterdir()]:
            shutil.chown(folder, "nobody", "nogroup")
    upstreams = "\n    ".join(f"server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;" for port in ports["web"])
    render(
        DEPLOY / "nginx" / "portal.conf.in",
        nginx_dir / "portal.conf",
        {
            "SERVER_NAME": "localhost 127.0.0.1",
            "HTTP_LISTEN": f"127.0.0.1:{ports['http']}",
            "HTTPS_LISTEN": f"127.0.0.1:{ports['https']}",
            "HTTPS_REDIRECT_PORT": "" if ports["https"] == 443 else f":{ports['https']}",
            "UPSTREAM_SERVERS": upstreams,
            "CERTIFICATE": str(cert),
            "CERTIFICATE_KEY": str(key),
            "ACCESS_LOG": "/dev/stdout",
        },
    )
    render(
        DEPLOY / "nginx" / "nginx.conf.in",
        nginx_dir / "nginx.conf",
        {"USER_DIRECTIVE": user, "NGINX_DIR": str(nginx_dir)},
    )
    test = subprocess.run(  # noqa: S603
        [nginx, "-t", "-q", "-p", nginx_dir, "-c", "nginx.conf", "-e", "stderr"], capture_output=True, text=True
    )
    if test.returncode != 0:
        raise Stop(f"nginx refuses the generated configuration {nginx_dir / 'nginx.conf'}:\n{test.stderr}")
    return nginx, nginx_dir


def port_list(name: str, default: str, count: int | None = None) -> list[int]:
    raw = os.environ.get(name, default)
    try:
        ports = [int(part) for part in raw.split(",")]
    except ValueError:
        raise Stop(f"{name}={raw!r}: expected port numbers separated by commas")
    if count is not None and len(ports) != count:
        raise Stop(f"{name}={raw!r}: expected {count} ports")
    return ports


def manage(env: dict, *args: str) -> None:
    say("manage.py " + " ".join(args))
    result = subprocess.run([PYTHON, "manage.py", *args], cwd=BASE_DIR, env=env)  # noqa: S603
    if result.returncode != 0:
        raise Stop(f"manage.py {' '.join(args)} failed (exit code {result.returncode})")


def prepare() -> tuple[dict, Path]:
    """Check the variables, write the configuration, set the database up; the environment and folder."""
    missing = [name for name in ("DATABASE_URL", "REDIS_URL") if not os.environ.get(name)]
    if missing:
        raise Stop(
            f"{' and '.join(missing)} must be set: the production shape runs on PostgreSQL and Redis, e.g.\n"
            "  export DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal REDIS_URL=redis://127.0.0.1:6379/0"
        )
    prod_dir = Path(os.environ.get("RUN_PROD_DIR", BASE_DIR / "var" / "prod")).resolve()
    for folder in ("host-1", "host-2", "mail", "private", "media"):
        (prod_dir / folder).mkdir(parents=True, exist_ok=True)
    ports = {
        "https": port_list("RUN_PROD_HTTPS_PORT", "8443", 1)[0],
        "http": port_list("RUN_PROD_HTTP_PORT", "8080", 1)[0],
        "web": port_list("RUN_PROD_WEB_PORTS", "8001,8002", 2),
    }
    site_url = f"https://127.0.0.1:{ports['https']}"
    cert, key = certificate(prod_dir / "tls")
    nginx, _ = nginx_config(prod_dir, ports, cert, key)
    env = production_env(prod_dir, ports, site_url, nginx)
    demo = set_up_database(env)
    print_banner(site_url, cert, ports, prod_dir, demo)
    return env, prod_dir


def production_env(prod_dir: Path, ports: dict, site_url: str, nginx: str) -> dict:
    """The processes' environment: this shell's, without development switches, plus the shape's own."""
    env = dict(os.environ)
    # Development and test switches must not leak into the production shape; the key comes from its file.
    for name in ("DEBUG", "FAST_PASSWORD_HASHER", "CELERY_TASK_ALWAYS_EAGER", "STATIC_MANIFEST", "SECRET_KEY"):
        env.pop(name, None)
    env.update(
        {
            "PATH": f"{Path(PYTHON).parent}{os.pathsep}{env.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1",
            "PRODUCTION": "true",
            "SECRET_KEY": secret_key(prod_dir),
            "ALLOWED_HOSTS": env.get("ALLOWED_HOSTS", "localhost,127.0.0.1"),
            "SITE_URL": env.get("SITE_URL", site_url),
            # One proxy (this nginx) appends to X-Forwarded-For.
            "TRUSTED_PROXY_COUNT": "1",
            "EMAIL_BACKEND": env.get("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend"),
            "EMAIL_FILE_PATH": str(prod_dir / "mail"),
            # The store both "hosts" share (a shared volume or S3-compatible storage on real hosts).
            "PRIVATE_MEDIA_ROOT": str(prod_dir / "private"),
            "MEDIA_ROOT": str(prod_dir / "media"),
            "VAR_DIR": str(prod_dir / "host-1"),
            # Read by deploy/Procfile.prod.
            "PROD_DIR": str(prod_dir),
            "NGINX_BIN": nginx,  # not NGINX: nginx reads that variable itself (inherited sockets)
            "WEB_PORT_1": str(ports["web"][0]),
            "WEB_PORT_2": str(ports["web"][1]),
        }
    )
    return env


def set_up_database(env: dict) -> bool:
    """Deploy checks, migrations, static files, the demo (unless RUN_PROD_DEMO=false), one sweep."""
    manage(env, "check", "--deploy", "--fail-level", "WARNING")
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput", "--verbosity", "0")
    demo = env.get("RUN_PROD_DEMO", "true").lower() in ("1", "true", "yes", "on")
    if demo:
        manage(env, "seed_demo", "--allow-production")
    # A fresh heartbeat for /healthz/sla before the beats' first sweep.
    manage(env, "sla_sweep")
    return demo


def print_banner(site_url: str, cert: Path, ports: dict, prod_dir: Path, demo: bool) -> None:
    print(f"\n  Ask a Doctor (production shape) is starting at {site_url}/", flush=True)
    print(f"  The certificate is self-signed ({cert}): accept it in the browser.")
    print(f"  /healthz also answers over plain HTTP: http://127.0.0.1:{ports['http']}/healthz")
    print(f"  Monitoring (broker, sweep): {site_url}/healthz/sla")
    if demo:
        print("  Demo logins (password portal-demo): patient@example.com, doctor@example.com, staff@example.com;")
        print("  doctors and staff pair an authenticator app (TOTP) at their first sign-in.")
    print(f"  E-mails are written to {prod_dir / 'mail'}. Press Ctrl+C to stop everything.\n", flush=True)


def main() -> int:
    try:
        env, _ = prepare()
    except Stop as problem:
        print(f"run-prod: {problem}", file=sys.stderr)
        return 2
    os.chdir(BASE_DIR)
    os.execve(PYTHON, [PYTHON, str(DEPLOY / "supervise.py"), str(DEPLOY / "Procfile.prod")], env)  # noqa: S606


if __name__ == "__main__":
    sys.exit(main())
