#!/usr/bin/env python3
"""A small process supervisor for Procfile-style files (standard library only).

    python deploy/supervise.py Procfile.dev

Each line `name: command` of the file is one process, run by /bin/sh in a
process group of its own, with this environment; a simple command (no `;`,
`&`, `|`, parentheses...) is exec'd, so the command itself is the process the
supervisor watches and signals. Its output is printed line by line, prefixed
with the time and its name. A process that exits (whatever the code) is
started again after a back-off: 1 s, doubling up to 30 s, and back to 1 s once
it has stayed up for a minute. SIGINT (Ctrl+C) or SIGTERM stops everything,
like systemd's KillMode=mixed: SIGTERM to each command (to the whole group for
a compound shell command), so that a Celery worker or gunicorn shuts down warm
and its own children finish their work; SIGKILL to each whole group once it
has exited or after the grace period (--grace, 10 s). The exit code is 0 after
a clean stop, non-zero only for the supervisor's own errors (an unreadable or
empty file). --banner FILE prints the file once every process is up and the
output has gone quiet (`make run`'s URL and logins); --foreground takes the
terminal so that Ctrl+C reaches the supervisor alone, not the `make` above it.

Why not honcho: it stops every process when one exits, so one Celery worker
that dies (issue 13 item 2) took the web server and beat down with it.
"""

import argparse
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time

FIRST_DELAY = 1.0
MAX_DELAY = 30.0
STABLE_AFTER = 60.0  # seconds of uptime after which the back-off starts again at FIRST_DELAY
LINE = re.compile(r"^([A-Za-z0-9_.-]+):\s*(.+)$")

_print_lock = threading.Lock()
_last_output = [0.0]  # time.monotonic() of the last line printed
# --banner: printed once every process has been up this long and the output has been quiet.
BANNER_UP_FOR = 3.0
BANNER_QUIET_FOR = 1.5
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


def exec_form(command: str) -> str | None:
    """`A=1 cmd args` as `A=1 exec cmd args` when it is one simple command, else None."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: leave it to the shell to report
        return None
    if not tokens or any(set(token) <= set("();<>|&") for token in tokens) or "`" in command or "$(" in command:
        return None
    leading = 0
    while leading < len(tokens) and ASSIGNMENT.match(tokens[leading]):
        leading += 1
    if leading < len(tokens) and tokens[leading] == "exec":
        return command
    if leading == len(tokens) or tokens[leading] in ("trap", "cd", "export", "set", "if", "while", "for", "wait"):
        return None
    # Keep the text as written (quotes, $VARIABLES), only insert `exec` before the command word.
    head = re.match(rf"\s*((?:[A-Za-z_][A-Za-z0-9_]*=(?:\"[^\"]*\"|'[^']*'|\S)*\s+){{{leading}}})", command)
    if head is None:
        return None
    return f"{head.group(1)}exec {command[head.end() :]}"


def say(name: str, text: str, width: int) -> None:
    stamp = time.strftime("%H:%M:%S")
    with _print_lock:
        sys.stdout.write(f"{stamp} {name.ljust(width)} | {text}\n")
        sys.stdout.flush()
        _last_output[0] = time.monotonic()


def all_up_and_quiet(processes: list, now: float) -> bool:
    """Every process running for BANNER_UP_FOR seconds, and nothing printed for BANNER_QUIET_FOR."""
    return all(p.running() and now - p.started_at >= BANNER_UP_FOR for p in processes) and (
        now - _last_output[0] >= BANNER_QUIET_FOR
    )


def take_terminal():
    """Make this process the terminal's foreground process group, so that Ctrl+C reaches
    the supervisor alone (its processes have sessions of their own) and not `make`,
    which would end with "Interrupt" and "Error 130" whatever the supervisor returned.
    Returns (tty fd, previous foreground group) to give it back, or None (no terminal,
    or not in the foreground)."""
    try:
        tty = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return None
    try:
        previous = os.tcgetpgrp(tty)
        if previous != os.getpgrp():
            os.close(tty)
            return None
        os.setpgid(0, 0)
        _set_foreground(tty, os.getpgrp())
    except OSError:
        os.close(tty)
        return None
    return tty, previous


def give_back_terminal(taken) -> None:
    if taken is None:
        return
    tty, previous = taken
    try:
        _set_foreground(tty, previous)
    except OSError:
        pass  # the previous group is gone: the shell takes the terminal back itself
    os.close(tty)


def _set_foreground(tty: int, pgid: int) -> None:
    # A process that is not (or no longer) in the foreground gets SIGTTOU for this.
    old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        os.tcsetpgrp(tty, pgid)
    finally:
        signal.signal(signal.SIGTTOU, old)


def read_procfile(path: str) -> list[tuple[str, str]]:
    entries = []
    with open(path, encoding="utf-8") as procfile:
        for number, raw in enumerate(procfile, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            match = LINE.match(line)
            if not match:
                raise ValueError(f"{path}:{number}: expected 'name: command', got {line!r}")
            if match.group(1) in dict(entries):
                raise ValueError(f"{path}:{number}: the name {match.group(1)!r} is used twice")
            entries.append((match.group(1), match.group(2)))
    if not entries:
        raise ValueError(f"{path}: no 'name: command' lines")
    return entries


class Process:
    """One Procfile entry: started, watched, restarted with back-off, stopped as a group."""

    def __init__(self, name: str, command: str, width: int):
        self.name = name
        self.command = command
        self.width = width
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0
        self.delay = FIRST_DELAY
        self.restart_at: float | None = time.monotonic()  # start now
        self.reader: threading.Thread | None = None
        # Exec'd: the Popen is the command itself. Otherwise a shell that dies on SIGTERM
        # before its children, so the whole group gets the signals.
        simple = exec_form(command)
        self.shell_command = simple or command
        self.whole_group = simple is None

    def start(self) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 - the commands are the operator's own Procfile
            ["/bin/sh", "-c", self.shell_command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: signals reach its children too
        )
        self.started_at = time.monotonic()
        self.restart_at = None
        say(self.name, f"started (pid {self.proc.pid}): {self.command}", self.width)
        self.reader = threading.Thread(target=self._copy_output, args=(self.proc,), daemon=True)
        self.reader.start()

    def _copy_output(self, proc: subprocess.Popen) -> None:
        for raw in proc.stdout:
            say(self.name, raw.decode("utf-8", errors="replace").rstrip("\r\n"), self.width)
        proc.stdout.close()

    def check(self, now: float) -> None:
        """Notice an exit and schedule the restart; start when the back-off has passed."""
        if self.proc is not None and self.proc.poll() is not None:
            code, uptime = self.proc.returncode, now - self.started_at
            # What the exited command left behind in its group (e.g. a dead worker's pool) goes too.
            _signal_group(self.proc.pid, signal.SIGKILL)
            self.proc = None
            if uptime >= STABLE_AFTER:
                self.delay = FIRST_DELAY
            say(
                self.name, f"exited with code {code} after {uptime:.1f} s; restarting in {self.delay:.0f} s", self.width
            )
            self.restart_at = now + self.delay
            self.delay = min(self.delay * 2, MAX_DELAY)
        if self.proc is None and self.restart_at is not None and now >= self.restart_at:
            self.start()

    def terminate(self) -> None:
        """SIGTERM to the command (it stops its own children), or to the group of a compound command."""
        if self.proc is None:
            return
        if self.whole_group:
            _signal_group(self.proc.pid, signal.SIGTERM)
        elif self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL to whatever is left in the group."""
        if self.proc is not None:
            _signal_group(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def running(self) -> bool:
        if self.proc is None:
            return False
        if self.proc.poll() is None:
            return True
        # A compound command: its shell may be gone while what it started still shuts down.
        return self.whole_group and _signal_group(self.proc.pid, 0)


def _signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to a process group; False when the group has no process left."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def supervise(entries: list[tuple[str, str]], grace: float, banner: str = "") -> int:
    width = max(len(name) for name, _ in entries + [("supervise", "")])
    processes = [Process(name, command, width) for name, command in entries]
    # Set by the signal handler, which runs in the main thread between two of its steps:
    # it must take no lock, since the main thread may hold it at that moment (a
    # threading.Event's did, inside Event.wait, and Ctrl+C then hung the supervisor).
    stop_signals: list[int] = []

    def request_stop(signum, frame):
        stop_signals.append(signum)

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    while not stop_signals:
        now = time.monotonic()
        for process in processes:
            process.check(now)
        if banner and all_up_and_quiet(processes, now):
            with _print_lock:
                sys.stdout.write(banner if banner.endswith("\n") else banner + "\n")
                sys.stdout.flush()
            banner = ""
        time.sleep(0.2)  # a signal runs its handler during the sleep; the loop sees it within 0.2 s

    say("supervise", f"stopping: SIGTERM to every process, SIGKILL after {grace:.0f} s", width)
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + grace
    while any(p.running() for p in processes) and time.monotonic() < deadline:
        time.sleep(0.1)
    for process in processes:
        if process.running():
            say(process.name, "still running after the grace period: SIGKILL", width)
        # The whole group, also when its leader is gone: no orphaned child keeps running.
        process.kill()
        if process.reader is not None:
            process.reader.join(timeout=1)  # the last lines it printed
    say("supervise", "all processes stopped", width)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("procfile", help="a file of 'name: command' lines")
    parser.add_argument("--grace", type=float, default=10.0, help="seconds between SIGTERM and SIGKILL on stop")
    parser.add_argument(
        "--banner", default="", help="a text file printed once every process is up and the output is quiet"
    )
    parser.add_argument(
        "--foreground", action="store_true", help="take the terminal, so that Ctrl+C reaches the supervisor alone"
    )
    args = parser.parse_args(argv)
    try:
        entries = read_procfile(args.procfile)
        banner = open(args.banner, encoding="utf-8").read() if args.banner else ""
    except (OSError, ValueError) as error:
        print(f"supervise: {error}", file=sys.stderr)
        return 2
    taken = take_terminal() if args.foreground else None
    try:
        return supervise(entries, args.grace, banner)
    finally:
        give_back_terminal(taken)


if __name__ == "__main__":
    sys.exit(main())
