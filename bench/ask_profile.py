"""Where an ask POST's time goes, and the same load against an older checkout in one run.

    BENCH_DATABASE_URL=... BENCH_REDIS_URL=... .venv/bin/python -m bench.ask_profile \\
        [--split 60] [--baseline /path/to/old/checkout] [--seconds 10] [--rounds 3]

Recreates the bench database and Redis db (as `make bench` does; set your own),
creates the bench's people, then:

* `--split N`: N ask POSTs (text only, then with the bench photo) through Django's
  test client in this process, every phase timed by a wrapper around the function
  that does it (no profiler, so no profiler overhead), and the SQL queries of one
  POST listed. The phases nest as indented. With `--cpu` every figure is this
  process's CPU time (time.process_time) instead of wall-clock time: on a machine
  shared with other work that is the figure that follows the code, and it is what a
  saturated closed loop pays per request (the database's own CPU not included).
* `--baseline DIR`: two gunicorns with the same arguments, one serving DIR (an
  older checkout sharing this virtualenv and database schema), one this tree;
  rounds alternate between them (text only, then with the photo), so a machine
  whose load comes and goes weighs on both alike. Prints each side's POST p50 and
  p95 and the median of the per-round ratios.
  With `--own-database` the older checkout gets a database and Redis db of its own
  (the bench's names with "_baseline" and the next db number, both emptied again at
  the end), made by its own migrations and its own bench people, so a checkout whose schema differs (the code
  when an issue was filed, say) is measured too; both sides' patients have the same
  e-mail addresses and password, and the same client asks on both.
* `--machine`: this tree under the bench's load (`--rounds` runs of `--seconds`, text
  only, then with the photo), and where the whole machine's CPU went per question,
  process kind by process kind (bench/machine_split.py): the web workers, the bench
  database's PostgreSQL backends, PostgreSQL's shared server processes, Redis, the
  load client (this process) and the rest of the machine. `--worker` runs a Celery
  worker as well (the asking phase of `make bench` runs none: its confirmation
  e-mails wait in the queue), sending to the bench's mail sink (bench/mail.py); its
  CPU is counted until the outbox is empty again.
"""

import argparse
import functools
import io
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

CONCURRENCY = 20
# What --split times with: wall-clock time, or this process's CPU time with --cpu.
clock = time.perf_counter


def _wrap(timings: dict, owner, name: str, label: str) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def timed(*args, **kwargs):
        started = clock()
        try:
            return original(*args, **kwargs)
        finally:
            timings[label] += clock() - started

    setattr(owner, name, timed)


def _instrument(timings: dict) -> None:
    from django.contrib.sessions.backends import db as session_db

    from consultations import cover_cache, drafts, forms, notifications, services, uploads, views
    from portal import ratelimit

    for owner, name, label in (
        (session_db.SessionStore, "load", "session load (middleware)"),
        (ratelimit, "hit", "rate limit check"),
        (views, "_ask_signed_in", "ask view body"),
        (drafts, "for_patient", "  draft lookup"),
        (cover_cache, "roster", "  duty roster (cover_cache)"),
        (forms.AskForm, "full_clean", "  form validation"),
        (uploads, "prepare_attachments", "    attachment checks + re-encoding"),
        (services, "submit_question_once", "  submission (one transaction)"),
        (services, "queue_notification", "    confirmation e-mail row"),
        (notifications, "render_email", "      rendering it"),
        (services.new_work, "notify_new_question", "    doctors on duty + their e-mails"),
        (notifications, "enqueue_delivery", "    Celery publish (on commit)"),
        (drafts, "discard", "  draft discard"),
        (session_db.SessionStore, "save", "session save"),
    ):
        _wrap(timings, owner, name, label)


def _post_data(specialty_id: int, n: int, photo) -> dict:
    data = {
        "specialty": specialty_id,
        "title": f"Knee aches after running (profile {n})",
        "description": "The inside of my left knee aches for a day after a 5 km run. Should I see someone?",
        "age": "40",
        "sex": "female",
        "medical_history": "Mild asthma as a child.",
        "current_medication": "None.",
        "consent": "on",
        "submission_token": str(uuid.uuid4()),
    }
    if photo is not None:
        upload = io.BytesIO(photo.content)
        upload.name = photo.name
        data["attachments"] = upload
    return data


def split(people, count: int) -> None:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from bench.asking import bench_photo, photo_label
    from portal.models import User

    timings: dict[str, float] = defaultdict(float)
    _instrument(timings)
    url = reverse("consultations:ask")
    clients = []
    for user in User.objects.filter(pk__in=people.patient_ids[:5]):
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(user)
        clients.append(client)
    specialty = people.specialty_ids[0]

    def post(n, photo):
        response = clients[n % len(clients)].post(url, _post_data(specialty, n, photo))
        if response.status_code != 302:
            raise RuntimeError(f"ask POST answered {response.status_code}: {response.content[:500]!r}")

    for photo in (None, bench_photo()):
        for n in range(5):
            post(n, photo)
        with CaptureQueriesContext(connection) as captured:
            post(99, photo)
        # Read now: the next request's request_started signal empties the connection's log.
        queries = list(captured.captured_queries)
        timings.clear()
        latencies = []
        for n in range(count):
            started = clock()
            post(100 + n, photo)
            latencies.append(clock() - started)
        total = sum(latencies)
        what = f"with {photo_label(photo)}" if photo else "text only"
        median = statistics.median(latencies) * 1000
        print(f"\nAsk POST {what}, {count} in a row in this process: median {median:.1f} ms {_measure()}")
        print(f"{len(queries)} SQL statements per POST:")
        for query in queries:
            print(f"    {query['sql'][:110]}")
        for label, seconds in timings.items():
            print(f"  {label:42s} {seconds / count * 1000:7.2f} ms  {100 * seconds / total:5.1f}%")
    form_get(clients[0], url, count, timings)


def form_get(client, url: str, count: int, timings: dict) -> None:
    """N showings of the form, timed by the POST's wrappers (those that run) and two more."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    queries = len(captured)
    latencies = []
    _instrument_form(timings)
    timings.clear()
    for _ in range(count):
        started = clock()
        client.get(url)
        latencies.append(clock() - started)
    total = sum(latencies)
    median = statistics.median(latencies) * 1000
    print(f"\nAsk form GET: median {median:.1f} ms {_measure()}, {queries} SQL statements")
    for label, seconds in timings.items():
        print(f"  {label:42s} {seconds / count * 1000:7.2f} ms  {100 * seconds / total:5.1f}%")


def _measure() -> str:
    return "of CPU" if clock is time.process_time else "wall-clock"


def _instrument_form(timings: dict) -> None:
    """Two phases of the form GET, beside those of the POST's wrappers that it runs."""
    from consultations import views

    for owner, name, label in (
        (views, "_duty_notes", "  duty notes (roster + their times)"),
        (views, "render", "  rendering the page"),
    ):
        _wrap(timings, owner, name, label)


def _cpu_seconds(pids: set[int], children: bool = True) -> float:
    """User + system CPU of these processes (and their children) from /proc."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(stat.parent.name), int(fields[1])
        if pid in pids or (children and ppid in pids):
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _database_cpu(database: str | None = None) -> dict[int, float]:
    """CPU of the PostgreSQL backends of the bench database, or of `database` (found by their
    process title, "postgres: ... <database> <client> ...", since this runs inside the load's
    event loop)."""
    from bench.environment import database_name

    marker = f" {database or database_name()} ".encode()
    pids = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            title = cmdline.read_bytes()
        except OSError:
            continue
        if title.startswith(b"postgres:") and marker in title:
            pids.add(int(cmdline.parent.name))
    return {pid: _cpu_seconds({pid}, children=False) for pid in pids}


def _database_cpu_since(before: dict[int, float], database: str | None = None) -> float:
    """CPU the backends used since `before`; a backend that ended meanwhile (a connection
    past its CONN_MAX_AGE) is left out, a new one counts from zero."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in _database_cpu(database).items())


def _asked_with_cpu(server, patients, seconds, photo) -> dict:
    """One run of the asking load, with the CPU its web workers and database backends used per
    question: under a saturated closed loop, latency follows that cost, whatever else loads the
    machine."""
    from bench.asking import ask_questions
    from bench.environment import database_name

    before = {}
    served_from = database_name(server.env["DATABASE_URL"])  # the baseline's own, with --own-database

    def start():  # every patient is signed in: their password hashes are not counted
        before.update(web=_cpu_seconds({server.process.pid}), database=_database_cpu(served_from))

    own = server.env["DATABASE_URL"] if server.env["DATABASE_URL"] != os.environ["DATABASE_URL"] else None
    figures = ask_questions(server.base_url, patients, CONCURRENCY, seconds, photo, on_start=start, database_url=own)
    web = _cpu_seconds({server.process.pid}) - before["web"]
    database = _database_cpu_since(before["database"], served_from)
    questions = max(1, figures["successes"])
    figures["web_cpu_ms_per_question"] = 1000 * web / questions
    figures["database_cpu_ms_per_question"] = 1000 * database / questions
    return figures


def baseline_urls(database_url: str, redis_url: str) -> dict[str, str]:
    """The bench's database with "_baseline" appended, and the next Redis db. Never db 0 (the
    portal's development db): a bench on db 15 has no next one and is refused."""
    from urllib.parse import urlsplit, urlunsplit

    database = urlsplit(database_url)
    redis = urlsplit(redis_url)
    next_db = int(redis.path.lstrip("/") or 0) + 1
    if next_db > 15:
        raise SystemExit(f"--own-database takes the Redis db after the bench's; {redis_url} has none: use 1-14")
    return {
        "BENCH_DATABASE_URL": urlunsplit(database._replace(path=f"{database.path}_baseline")),
        "BENCH_REDIS_URL": urlunsplit(redis._replace(path=f"/{next_db}")),
    }


def _baseline_own_environment(baseline: Path, patients: int) -> dict[str, str]:
    """A database and Redis db for the older checkout, made by its own code (subprocess) with
    this tree's interpreter, which also serves it (processes.Gunicorn)."""
    urls = baseline_urls(os.environ["DATABASE_URL"], os.environ["REDIS_URL"])
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from bench import environment; environment.configure(); from bench import database; "
            "database.prepare(); import django; django.setup(); from bench import data; "
            f"data.create_people(patients={patients})",
        ],
        cwd=baseline,
        env={**os.environ, **urls},
        check=True,
    )
    return {"DATABASE_URL": urls["BENCH_DATABASE_URL"], "REDIS_URL": urls["BENCH_REDIS_URL"]}


def _drop_baseline_environment(env: dict[str, str]) -> None:
    """The baseline's database dropped and its Redis db emptied, as main() empties this tree's."""
    from bench import database

    database.drop_database(env["DATABASE_URL"])
    database.flush_redis(env["REDIS_URL"])


def compare(
    people, baseline: Path, seconds: float, rounds: int, photo: bool = True, own_database: bool = False
) -> None:
    from bench import data, processes
    from bench.asking import bench_photo

    patients = data.random_patients(people, CONCURRENCY, seed=5)
    env = _baseline_own_environment(baseline, len(people.patient_emails)) if own_database else None
    old = processes.Gunicorn(name="gunicorn-baseline", cwd=baseline, env=env)
    new = processes.Gunicorn(name="gunicorn-this-tree")
    for server in (old, new):
        server.start()
    try:
        for server in (old, new):
            server.wait_ready()
        variants = [("text only", None)] + ([("one photo", bench_photo())] if photo else [])
        for label, attachment in variants:
            sides = {"baseline": [], "this tree": []}
            for _ in range(rounds):
                for side, server in (("baseline", old), ("this tree", new)):
                    sides[side].append(_asked_with_cpu(server, patients, seconds, attachment))
            ratios = [b["p50_ms"] / a["p50_ms"] for a, b in zip(sides["baseline"], sides["this tree"], strict=True)]
            print(f"\nAsk POST, {label}, {CONCURRENCY} patients, {old.workers} workers, {rounds} x {seconds:.0f} s")
            for side, runs in sides.items():
                p50s = ", ".join(f"{run['p50_ms']:.0f}" for run in runs)
                p95s = ", ".join(f"{run['p95_ms']:.0f}" for run in runs)
                per_second = ", ".join(f"{run['per_second']:.1f}" for run in runs)
                print(f"  {side:10s} p50 {p50s} ms; p95 {p95s} ms; {per_second} questions/s")
                web = ", ".join(f"{run['web_cpu_ms_per_question']:.1f}" for run in runs)
                database = ", ".join(f"{run['database_cpu_ms_per_question']:.1f}" for run in runs)
                print(f"  {'':10s} CPU per question (form GET + POST): web {web} ms, PostgreSQL {database} ms")
            print(f"  this tree / baseline, p50: median {statistics.median(ratios):.2f} (rounds {ratios})")
    finally:
        old.stop()
        new.stop()
        if env is not None:
            _drop_baseline_environment(env)


def _pending_confirmations() -> int:
    from consultations.models import Notification, NotificationStatus

    return Notification.objects.filter(kind="question_received", status=NotificationStatus.PENDING).count()


def machine(people, seconds: float, rounds: int, photo: bool, worker: bool) -> None:
    """The bench's asking load on this tree, with the whole machine's CPU per question by process kind."""
    from bench import data, machine_split, mail, processes
    from bench.asking import ask_questions, bench_photo
    from bench.environment import database_name

    env = {"EMAIL_BACKEND": mail.BACKEND} if worker else {}
    web = processes.Gunicorn(env=env)
    celery = processes.celery_worker({**os.environ, **env}) if worker else None
    groups = machine_split.Groups(database_name())
    web.start()
    groups.process_groups["gunicorn (master + workers)"] = web.process.pid
    if celery is not None:
        celery.start()
        groups.process_groups["Celery worker (sending the e-mails)"] = celery.process.pid
    try:
        web.wait_ready()
        variants = [("text only", None)] + ([("one photo", bench_photo())] if photo else [])
        for label, attachment in variants:
            for n in range(rounds):
                window = machine_split.Window(groups)
                patients = data.random_patients(people, CONCURRENCY, seed=11 + n)
                load = os.getloadavg()[0]
                figures = ask_questions(web.base_url, patients, CONCURRENCY, seconds, attachment, on_start=window.start)
                split = window.stop()
                if celery is not None:
                    drained_by = time.monotonic() + 60
                    while _pending_confirmations() and time.monotonic() < drained_by:
                        time.sleep(0.2)
                    name = "Celery worker (sending the e-mails)"
                    split[name] += window.stop()[name] - split[name]
                questions = figures["successes"]
                print(
                    f"\nAsk, {label}, round {n + 1}: {questions} questions in {figures['seconds']:.1f} s "
                    f"({figures['per_second']:.1f}/s), POST p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms, "
                    f"{figures['errors']} errors; load average {load:.2f} at the start"
                )
                print("  CPU per question (form GET + POST), by process kind:")
                for name, ms in machine_split.per_question(split, questions).items():
                    print(f"    {name:58s} {ms:6.2f} ms")
    finally:
        web.stop()
        if celery is not None:
            celery.stop()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ask_profile", description=__doc__.splitlines()[0])
    parser.add_argument("--split", type=int, default=0, help="time N in-process POSTs phase by phase")
    parser.add_argument("--cpu", action="store_true", help="--split times CPU (process_time), not wall-clock")
    parser.add_argument("--baseline", type=Path, help="an older checkout to compare under load")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--own-database", action="store_true", help="--baseline: its own database, schema and people")
    parser.add_argument("--machine", action="store_true", help="this tree under load: machine CPU by process kind")
    parser.add_argument("--worker", action="store_true", help="--machine: with a Celery worker sending the e-mails")
    parser.add_argument("--no-photo", action="store_true", help="compare text-only questions only")
    args = parser.parse_args(argv)
    if args.own_database and not args.baseline:
        parser.error("--own-database goes with --baseline DIR")
    if args.cpu:
        global clock  # noqa: PLW0603 - one switch for every wrapper
        clock = time.process_time
    from bench import environment

    environment.configure()
    from bench import database

    database.prepare()
    import django

    django.setup()
    from bench import data

    people = data.create_people(patients=200)
    if args.split:
        split(people, args.split)
    if args.baseline:
        compare(
            people,
            args.baseline.resolve(),
            args.seconds,
            args.rounds,
            photo=not args.no_photo,
            own_database=args.own_database,
        )
    if args.machine:
        machine(people, args.seconds, args.rounds, photo=not args.no_photo, worker=args.worker)
    database.flush_redis()


if __name__ == "__main__":
    main()
