"""Issue 16 (configuration): `.env.example` lists every variable the portal and its
deploy scripts read, in a form every loader reads the same way.

honcho's `.env` parser joins shlex tokens, so an unquoted `SLA_STAFF_GROUP=SLA staff`
became "SLAstaff"; systemd's EnvironmentFile keeps an inline `# comment` as part of the
value; and a shell or systemd sets `REQUIRE_2FA=` to "", which reads as false (2FA off
in production) where leaving it unset follows PRODUCTION. So: each value double-quoted,
comments on their own lines, and a variable without a value is commented out.
"""

import ast
import re
import shlex
import subprocess
from pathlib import Path

import portal

ROOT = Path(portal.__file__).resolve().parent.parent
EXAMPLE = ROOT / ".env.example"
# env.get: deploy/run_prod.py reads its copy of os.environ.
READERS = {
    "env_str",
    "env_int",
    "env_bool",
    "env_float",
    "env_list",
    "os.environ.get",
    "os.getenv",
    "port_list",
    "env.get",
}
PYTHON_READERS = ["portal/settings.py", "portal/private_media.py", "deploy/run_prod.py"]
SHELL_READERS = ["Makefile", "Procfile", "Procfile.dev", "deploy/Procfile.prod", "deploy/systemd"]
# Set by deploy/run_prod.py for deploy/Procfile.prod, or by systemd itself: not the operator's.
INTERNAL = {"PROD_DIR", "NGINX_BIN", "WEB_PORT_1", "WEB_PORT_2", "MAINPID", "PATH", "PYTHONUNBUFFERED"}
ACTIVE = re.compile(r'^([A-Z][A-Z0-9_]*)="([^"\\$`]*)"$')
COMMENTED = re.compile(r'^# ([A-Z][A-Z0-9_]*)="([^"\\$`]*)"$')


def variables_read() -> set[str]:
    names = set()
    for name in PYTHON_READERS:
        for node in ast.walk(ast.parse((ROOT / name).read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) in READERS and node.args:
                if isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                    names.add(node.args[0].value)
    for name in SHELL_READERS:
        paths = sorted((ROOT / name).iterdir()) if (ROOT / name).is_dir() else [ROOT / name]
        for path in paths:
            names |= set(re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", path.read_text()))
    return names - INTERNAL


def entries() -> tuple[dict[str, str], set[str]]:
    """The active assignments (name: value) and the commented-out names."""
    active, commented = {}, set()
    for number, line in enumerate(EXAMPLE.read_text().splitlines(), 1):
        if match := ACTIVE.match(line):
            assert match[1] not in active, f"line {number}: {match[1]} twice"
            assert match[2], f"line {number}: {match[1]} set to empty; comment it out to keep the default"
            active[match[1]] = match[2]
        elif match := COMMENTED.match(line):
            commented.add(match[1])
        else:
            assert not line or line.startswith("# "), f'line {number} is neither a comment nor NAME="value": {line}'
            assert not re.match(r"^#\s*[A-Z][A-Z0-9_]*=", line), f"line {number}: quote the value: {line}"
    return active, commented


def test_every_variable_the_code_reads_is_listed():
    active, commented = entries()
    missing = variables_read() - set(active) - commented
    assert not missing, f"add to .env.example: {sorted(missing)}"


def test_nothing_is_listed_that_nobody_reads():
    active, commented = entries()
    assert (set(active) | commented) - variables_read() == set()


def honcho_parse(text: str) -> dict[str, str]:
    """honcho.environ.parse (honcho 2.0): shlex tokens of each line, the value's tokens joined."""
    values = {}
    for line in text.splitlines():
        tokens = list(shlex.shlex(line, posix=True))
        if len(tokens) >= 3 and tokens[1] == "=":
            values[tokens[0]] = "".join(tokens[2:])
    return values


def shell_parse() -> dict[str, str]:
    script = 'set -a; . "$1"; env -0'
    output = subprocess.run(
        ["bash", "-c", script, "bash", str(EXAMPLE)], env={}, capture_output=True, text=True, check=True
    ).stdout
    return dict(item.split("=", 1) for item in output.split("\0") if item)


def test_honcho_a_shell_and_systemd_read_the_same_values():
    active, _ = entries()  # systemd's EnvironmentFile reads NAME="value" lines as these values
    assert active["SLA_STAFF_GROUP"] == "SLA staff"
    assert honcho_parse(EXAMPLE.read_text()) == active
    shell = shell_parse()
    assert {name: shell.get(name) for name in active} == active
