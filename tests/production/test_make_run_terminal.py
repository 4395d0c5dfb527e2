"""`make run` in a terminal (issue 15): the URL and logins are printed again once every
process is up and quiet, and Ctrl+C stops everything with exit code 0 and no
"make: *** ... Interrupt" / "Error 130" (deploy/supervise.py --banner, --foreground)."""

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings

SUPERVISE = Path(settings.BASE_DIR) / "deploy" / "supervise.py"


def procfile(tmp_path: Path) -> Path:
    path = tmp_path / "Procfile"
    path.write_text("chatty: sh -c 'echo starting up; sleep 0.5; echo ready; exec sleep 60'\nquiet: sleep 60\n")
    return path


def test_the_banner_comes_once_after_every_process_is_up_and_quiet(tmp_path):
    banner = tmp_path / "banner.txt"
    banner.write_text("  Ask a Doctor is running at http://127.0.0.1:8790/\n")
    proc = subprocess.Popen(
        [sys.executable, str(SUPERVISE), "--banner", str(banner), str(procfile(tmp_path))],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and "running at" not in "".join(lines):
        lines.append(proc.stdout.readline())
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=20)
    output = "".join(lines) + rest
    assert proc.returncode == 0
    assert output.count("Ask a Doctor is running at") == 1
    before = output.split("Ask a Doctor is running at")[0]
    assert re.search(r"chatty +\| ready", before) and before.count("started (pid") == 2


def read_all(fd: int, seconds: float, until: bytes = b"") -> bytes:
    out = b""
    end = time.monotonic() + seconds
    # poll, not select: late in a long suite the terminal's descriptor can be above 1023.
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while time.monotonic() < end and not (until and until in out):
        if poller.poll(200):
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            out += data
    return out


def wait_or_kill(pid: int, seconds: float) -> int:
    """The child's wait status within `seconds`; a test failure (not a hang) after that."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.1)
    raise AssertionError(f"make did not exit within {seconds} s of Ctrl+C")


def status_unknown(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False  # already reaped
    return done == 0


def test_ctrl_c_under_make_in_a_terminal_exits_0_without_interrupt(tmp_path):
    makefile = tmp_path / "Makefile"
    makefile.write_text(f"run:\n\t{sys.executable} {SUPERVISE} --foreground {procfile(tmp_path)}\n")
    pid, fd = pty.fork()
    if pid == 0:  # the child: make, in a terminal, as a developer runs it
        os.execvp("make", ["make", "--no-print-directory", "-f", str(makefile), "run"])  # noqa: S606
    try:
        # Generous waits: on a busy machine the supervisor can take a while to start.
        output = read_all(fd, 60, until=b"| ready")
        assert b"| ready" in output, output.decode(errors="replace")
        os.write(fd, b"\x03")  # Ctrl+C
        output += read_all(fd, 30, until=b"all processes stopped")
        status = wait_or_kill(pid, 30)
    finally:
        if status_unknown(pid):
            os.killpg(pid, signal.SIGKILL)  # never leave make and its children behind, never hang
            os.waitpid(pid, 0)
        os.close(fd)
    text = output.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert "all processes stopped" in text
    assert "Interrupt" not in text and "Error" not in text and "ERROR" not in text
