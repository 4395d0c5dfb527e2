"""Where the whole machine's CPU goes during a measured window, per kind of process.

Samples /proc before and after: every process of each group (the web server's process
group, the Celery worker's, the bench database's PostgreSQL backends, PostgreSQL's own
server processes, Redis, this process: the load client) and the machine's total busy
time from /proc/stat. What no group claims ("rest of the machine") is everything else
running meanwhile: other programs, kernel threads, interrupts.

A process that exits inside the window is lost (its CPU cannot be read any more); one
that starts inside it counts from zero. The bench's processes live for the whole window.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Proc:
    pid: int
    ppid: int
    pgid: int
    comm: str
    cpu: float  # seconds, user + system
    title: bytes


def processes() -> dict[int, Proc]:
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            title = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        comm = text[text.index("(") + 1 : text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        pid = int(stat.parent.name)
        found[pid] = Proc(pid, int(fields[1]), int(fields[2]), comm, (int(fields[11]) + int(fields[12])) / TICK, title)
    return found


def machine_busy() -> float:
    """Seconds of CPU the whole machine spent busy (all cores), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = values[:8]
    return (user + nice + system + irq + softirq + steal) / TICK


@dataclass
class Groups:
    """Which group a process belongs to; the first rule that matches wins."""

    database: str
    process_groups: dict[str, int] = field(default_factory=dict)  # name -> pgid

    def of(self, proc: Proc) -> str | None:
        if proc.pid == os.getpid():
            return "load client (this process)"
        for name, pgid in self.process_groups.items():
            if proc.pgid == pgid:
                return name
        if proc.title.startswith(b"postgres:"):
            if f" {self.database} ".encode() in proc.title:
                return "PostgreSQL backends (bench database)"
            if b"(" in proc.title or b"[local]" in proc.title:
                return None  # another database's client: someone else's work
            return "PostgreSQL server processes (WAL, checkpoints; shared)"
        if proc.comm == "redis-server":
            return "Redis server (shared)"
        return None


class Window:
    def __init__(self, groups: Groups):
        self.groups = groups

    def start(self) -> None:
        self.before = processes()
        self.busy_before = machine_busy()

    def stop(self) -> dict[str, float]:
        after = processes()
        busy = machine_busy() - self.busy_before
        split: dict[str, float] = {}
        for pid, proc in after.items():
            group = self.groups.of(proc)
            if group is None:
                continue
            old = self.before.get(pid)
            used = proc.cpu - (old.cpu if old is not None and old.comm == proc.comm else 0.0)
            split[group] = split.get(group, 0.0) + used
        split["rest of the machine"] = busy - sum(split.values())
        split["whole machine"] = busy
        return split


def per_question(split: dict[str, float], questions: int) -> dict[str, float]:
    return {name: 1000 * seconds / max(1, questions) for name, seconds in split.items()}
