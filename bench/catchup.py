"""Outage catch-up (issue 17): 10^5 questions overdue at once, two real Celery workers.

The due questions are inserted in one statement (bench.data.add_due), the two workers
(one pool process each: the machine has two cores; BENCH_CATCHUP_CONCURRENCY=2 runs two
each, as deploy/Procfile.prod does: in session 12 that sent every e-mail 3 % sooner, the
backend alone from four senders gaining as much, so the shares stayed the same) and a
beat are started on the bench's PostgreSQL database and Redis db, and one sweep message
starts the catch-up, as the first beat tick after an outage would. Everything reported
is read from the database: when the last breach escalation was written, when the last
e-mail was marked sent (handed to the mail backend), how many e-mails each second, which
sweeps did the work, and the duplicates (more than one escalation per question and
level, more than one e-mail row per question, kind and recipient). The e-mails go as in production, through
Django's SMTP backend, to a sink SMTP server started for the phase (bench/smtp_sink.py),
which counts what it received; BENCH_CATCHUP_MAIL=sink hands them to the zero-cost
in-process sink instead (bench/mail.py: our own ceiling). The backend alone is then
measured with the same messages from as many processes (bench.mail.backend_rate) to
show who limits the send rate, and the machine's CPU per e-mail is split by process
kind for both.
"""

import json
import os
import re
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from django.db import DatabaseError, connection
from django.db.models import Count, Max, Min
from django.utils import timezone

from bench import data, database, environment, machine_split, mail, processes
from bench.common import NotAvailable, progress

QUESTIONS = int(os.environ.get("BENCH_CATCHUP_QUESTIONS", 100_000))
WORKERS = 2
# Pool processes per worker (SLA_SWEEP_PARALLEL is WORKERS times this).
CONCURRENCY = int(os.environ.get("BENCH_CATCHUP_CONCURRENCY", 1))
# The targets of issue 17.
ESCALATION_TARGET_SECONDS = 60
# How long to wait before calling the catch-up unfinished.
ESCALATION_TIMEOUT = float(os.environ.get("BENCH_CATCHUP_TIMEOUT", 600))
EMAIL_TIMEOUT = float(os.environ.get("BENCH_CATCHUP_EMAIL_TIMEOUT", 900))
# "smtp" (default): Django's SMTP backend talking to the sink SMTP server, as production
# does; "sink": the zero-cost in-process sink (our own ceiling). See bench/mail.py.
MAIL = os.environ.get("BENCH_CATCHUP_MAIL", "smtp")
# E-mails each process sends in the backend-alone measurement: about 10 s through SMTP here.
# 5,000 (3 s) gave 2,870-3,215/s on one machine within an hour: too short a sample for
# the denominator of the rate's share.
ALONE_PER_PROCESS = int(os.environ.get("BENCH_CATCHUP_ALONE_PER_PROCESS", 15_000))
# Backend-alone runs; the fastest is the denominator.
ALONE_RUNS = 2


def catch_up(people: data.People, questions: int = QUESTIONS) -> dict:
    progress(f"  inserting {questions:,} questions overdue at once")
    data.clear_questions()
    ids = data.add_due(people, count=questions)
    ours = of_questions(ids)
    with mail.mail_server(MAIL) as server:
        progress(f"  mail backend: {server.label}")
        figures = _catch_up(ours, len(ids), server)
        progress(f"  the mail backend alone, the same messages, {WORKERS * CONCURRENCY} processes")
        figures["backend_alone"] = _backend_alone(ours, server)
    alone = figures["backend_alone"]["per_second"]
    ours = figures["emails_per_second"]
    figures["share_of_backend_rate"] = round(ours / alone, 3) if ours and alone else None
    after = figures["emails_per_second_after_escalations"]
    figures["share_after_escalations"] = round(after / alone, 3) if after and alone else None
    progress("  figures: " + json.dumps(figures, default=str))
    data.answer_due(ids)
    return figures


def of_questions(ids: list[int]) -> dict:
    """A lookup for rows of these questions as an id range, not a list of 10^5 parameters
    (about a second of CPU each, the bench's and PostgreSQL's). Even so, counting 10^5
    rows is no poll (see POLL_SECONDS): the lookup serves the figures read once the
    workers are done. `data.add_due` inserts them in one statement, so their ids are
    consecutive; anything else is refused rather than measured wrongly."""
    first, last = min(ids), max(ids)
    if last - first + 1 != len(set(ids)):
        raise ValueError(f"the {len(ids):,} catch-up questions' ids are not consecutive ({first}..{last})")
    return {"question_id__gte": first, "question_id__lte": last}


def _catch_up(ours: dict, questions: int, server) -> dict:
    from consultations.models import Escalation, Notification
    from portal.celery import app

    run_dir = Path(tempfile.mkdtemp(prefix="bench-catchup-"))
    env = {
        **server.env(),
        "SLA_SWEEP_PARALLEL": str(WORKERS * CONCURRENCY),
        # One persistent connection per worker process, kept for the whole run: one that
        # production would recycle after 60 s ends its PostgreSQL backend, whose CPU the
        # machine split could then no longer read (it would count as "the rest").
        "DB_CONN_MAX_AGE": "3600",
    }
    database.flush_redis()
    workers = [
        processes.celery_worker(env, concurrency=CONCURRENCY, name=f"catchup-worker-{n}", loglevel="info")
        for n in range(1, WORKERS + 1)
    ]
    beat = processes.celery_beat(env, run_dir / "celerybeat-schedule", name="catchup-beat")
    try:
        for worker in workers:
            worker.start()
        _wait_ready(workers)
        connection.close()
        received_before, server_cpu = server.stats(), server.cpu_seconds()
        load = os.getloadavg()[0]
        writes_before = database.write_activity()
        started = timezone.now()
        began = time.monotonic()
        with app.connection_for_write() as broker:
            app.send_task("consultations.tasks.run_sla_sweep", connection=broker)
        beat.start()
        escalations = Escalation.objects.filter(**ours, level="breached")
        all_escalated = _all_escalated(started, questions, escalations)
        written = _wait(all_escalated, ESCALATION_TIMEOUT, began, "escalations", workers)
        escalating_writes = database.write_activity_since(writes_before, per=questions)
        # Every e-mail row was written with its escalation, in the same transaction.
        emails = Notification.objects.filter(**ours).count()
        # Failed rows (never with the sinks) end the wait too: the figures count them unsent.
        pending = Notification.objects.filter(**ours, status="pending")
        # From here on the workers only send: their CPU per e-mail is the outbox's plus the
        # backend's client side, comparable with the backend alone's senders whatever the load.
        sending = _sending_cpu(workers, server, ours)
        sent_all = _wait(_all_sent(server, received_before, emails, pending), EMAIL_TIMEOUT, began, "e-mails", workers)
        sending_figures = sending()  # before the report's own queries below
        progress(f"  escalations written in {written} s, e-mails sent in {sent_all} s")
        figures = _figures(ours, questions, started, written, sent_all, workers)
        figures["cpu_per_email_after_escalations"] = sending_figures
        # Until the last escalation, per question (its escalation, credit and e-mail rows, and
        # whatever was sent meanwhile).
        figures["database_writes_escalating"] = escalating_writes
        figures["load_average"] = [round(load, 2), round(os.getloadavg()[0], 2)]
    finally:
        beat.stop()
        for worker in workers:
            worker.stop()
        database.flush_redis()
    # Counted once no worker sends: a running sender has handed over up to a batch (or a
    # second's worth) that it has not marked yet.
    figures["mail_server"] = _received(server, received_before, server_cpu, started)
    return figures


# The harness polls until the work is done, every POLL_SECONDS. A poll must cost next to
# nothing: on two cores, what it costs PostgreSQL is taken from the workers it measures.
# Counting the catch-up's rows is not that: at 10^5 questions, counting their breach
# escalations cost 186 ms and asking whether any of their 500,000 e-mails is still pending
# 82 ms (measured at e262d46), a quarter to a half of a core at four polls a second. So the
# polls read counters first: the sweeps' own progress (SweepRun.breached, updated after
# each batch's commit; a table of a few rows) and the SMTP sink's count of messages
# received; the rows themselves are counted once those say the work is done.
POLL_SECONDS = 0.25


def _all_escalated(started, questions: int, escalations):
    """A poll: True once every question's breach escalation is written."""
    from django.db.models import Sum

    from consultations.models import SweepRun

    runs = SweepRun.objects.filter(started_at__gte=started)

    def done() -> bool:
        breached = runs.aggregate(breached=Sum("breached"))["breached"] or 0
        return breached >= questions and escalations.count() >= questions

    return done


# Through the SMTP sink the rows are still looked at this often: a row the outbox gives up
# on (failed after its attempts) never reaches the sink, and must end the wait too.
ROWS_POLL_SECONDS = 10


def _all_sent(server, received_before: dict | None, emails: int, pending, clock=time.monotonic):
    """A poll: True once no e-mail row is pending. Through the SMTP sink, the rows are
    looked at once it has received as many messages, and otherwise every
    ROWS_POLL_SECONDS; the zero-cost sink counts nothing, so that mode polls the rows
    every time (and pays for it)."""
    rows_read = [clock()]

    def done() -> bool:
        if received_before is not None and server.stats()["messages"] - received_before["messages"] < emails:
            if clock() - rows_read[0] < ROWS_POLL_SECONDS:
                return False
        rows_read[0] = clock()
        return not pending.exists()

    return done


def _sending_cpu(workers, server, ours: dict):
    """A function returning where the machine's CPU went per e-mail sent since now, process
    kind by process kind (bench/machine_split.py), and how much of the two cores stayed idle."""
    from consultations.models import Notification

    groups = machine_split.Groups(environment.database_name())
    for worker in workers:
        groups.process_groups[f"Celery worker {worker.name}"] = worker.process.pid
    if server.cpu_seconds() is not None:
        groups.process_groups["sink SMTP server"] = server.service.process.pid

    def sent_count() -> int:
        # The sink's count where there is one: counting sent rows inside the window cost
        # PostgreSQL a second of CPU at 500,000 rows (see POLL_SECONDS).
        stats = server.stats()
        return stats["messages"] if stats is not None else Notification.objects.filter(**ours, status="sent").count()

    window = machine_split.Window(groups)
    window.start()
    began = time.monotonic()
    sent_before = sent_count()
    writes_before = database.write_activity()

    def per_email() -> dict:
        split = window.stop()
        seconds = time.monotonic() - began
        sent = sent_count() - sent_before
        if not sent:
            return {"emails": 0}
        split["the bench's own polls"] = split.pop("load client (this process)", 0.0)
        split["idle"] = max(0.0, seconds * os.cpu_count() - split["whole machine"])
        worker_cpu = sum(cpu for name, cpu in split.items() if name.startswith("Celery worker"))
        figures = {
            "emails": sent,
            "seconds": round(seconds, 1),
            "workers_us": round(worker_cpu / sent * 1e6),
            "split_us": {name: round(cpu / sent * 1e6) for name, cpu in split.items()},
            "database_writes": database.write_activity_since(writes_before, per=sent),
        }
        if "sink SMTP server" in split:
            figures["mail_server_us"] = figures["split_us"]["sink SMTP server"]
        return figures

    return per_email


def _received(server, before, cpu_before, started) -> dict:
    """What the mail server itself counted (the SMTP sink; the zero-cost one counts nothing),
    and every row the database marked sent meanwhile (the catch-up's, and any other e-mail
    the workers sent, such as a cover alert): the two must agree."""
    from consultations.models import Notification

    figures = {"kind": MAIL, "backend": server.backend, "label": server.label}
    sent = Notification.objects.filter(status="sent", sent_at__gte=started).count()
    figures["sent_in_window"] = sent
    if before is not None:
        after = server.stats()
        figures["messages"] = after["messages"] - before["messages"]
        figures["recipients"] = after["recipients"] - before["recipients"]
        figures["connections"] = after["connections"] - before["connections"]
        cpu = server.cpu_seconds() - cpu_before
        figures["cpu_seconds"] = round(cpu, 1)
        figures["cpu_us_per_message"] = round(cpu / sent * 1e6) if sent else None
    return figures


def _backend_alone(ours: dict, server) -> dict:
    """The backend's own rate, the denominator of the catch-up's share: measured ALONE_RUNS
    times, the fastest counts, so a slow minute of the machine cannot flatter the share.
    First a CHECKPOINT: the catch-up leaves PostgreSQL's writes to flush, which took the
    cores from the first of these runs (one such run measured 1,388/s, 21 % below the
    same machine's rate minutes before)."""
    from consultations.models import Notification

    sample = list(Notification.objects.filter(**ours).order_by("pk")[:200])
    try:
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
    except DatabaseError as exc:  # not a superuser: the runs then share the cores with the flush
        progress(f"  no CHECKPOINT before the backend alone ({exc})")
    connection.close()  # not shared with the forked senders
    runs = [
        mail.backend_rate(sample, WORKERS * CONCURRENCY, server, per_process=ALONE_PER_PROCESS)
        for _ in range(ALONE_RUNS)
    ]
    fastest = max(runs, key=lambda run: run["per_second"])
    return {**fastest, "runs_per_second": [run["per_second"] for run in runs]}


def _wait_ready(workers) -> None:
    deadline = time.monotonic() + 60
    while not all(" ready." in worker.log_tail(200) for worker in workers):
        if time.monotonic() > deadline or not all(worker.running() for worker in workers):
            raise NotAvailable("the Celery workers did not start:\n" + "\n".join(w.log_tail(10) for w in workers))
        time.sleep(0.2)


def _wait(done, timeout: float, began: float, what: str, workers) -> float | None:
    """Seconds from `began` until `done()`; None after `timeout`. Polls the database."""
    last_report = time.monotonic()
    while not done():
        if time.monotonic() - began > timeout:
            progress(f"  gave up waiting for the {what} after {timeout:.0f} s")
            return None
        if not all(worker.running() for worker in workers):
            raise RuntimeError("a worker died:\n" + "\n".join(w.log_tail(20) for w in workers))
        if time.monotonic() - last_report > 30:
            progress(f"  still waiting for the {what} ({time.monotonic() - began:.0f} s)")
            last_report = time.monotonic()
        time.sleep(POLL_SECONDS)
    return round(time.monotonic() - began, 2)


SWEEP_DONE = re.compile(r"run_sla_sweep\[[^\]]+\] succeeded in [\d.]+s: \{'run': (\d+)")


def _figures(ours: dict, questions: int, started, written, sent_all, workers) -> dict:
    from consultations.models import Escalation, Notification, SweepRun

    escalations = Escalation.objects.filter(**ours)
    notifications = Notification.objects.filter(**ours)
    per_level = escalations.values("question", "level").annotate(n=Count("id"))
    per_email = notifications.values("question", "kind", "to_email").annotate(n=Count("id"))
    sent = notifications.filter(status="sent")
    span = sent.aggregate(first=Min("sent_at"), last=Max("sent_at"), created=Min("created_at"))
    sent_count = sent.count()
    rate = None
    if span["first"] and span["last"] > span["first"]:
        rate = sent_count / (span["last"] - span["first"]).total_seconds()
    # Sends wait behind the sweeps (their messages have a lower priority): the rate once
    # every escalation was written is the outbox's own.
    after_rate = None
    if written is not None and span["last"]:
        settled = started + timedelta(seconds=written)
        late = sent.filter(sent_at__gte=settled).count()
        seconds = (span["last"] - settled).total_seconds()
        after_rate = round(late / seconds, 1) if late and seconds > 0 else None
    runs = SweepRun.objects.filter(started_at__gte=started, breached__gt=0)
    by_worker = {}
    for worker in workers:
        run_ids = {int(found) for found in SWEEP_DONE.findall(worker.log_path.read_text(errors="replace"))}
        by_worker[worker.name] = sum(runs.filter(pk__in=run_ids).values_list("breached", flat=True))
    return {
        "questions": questions,
        "workers": WORKERS,
        "processes_per_worker": CONCURRENCY,
        "escalations_written_seconds": written,
        "emails_sent_seconds": sent_all,
        "escalated_questions": escalations.filter(level="breached").values("question").distinct().count(),
        "duplicate_escalations": sum(row["n"] - 1 for row in per_level.filter(n__gt=1)),
        "duplicate_emails": sum(row["n"] - 1 for row in per_email.filter(n__gt=1)),
        "emails": notifications.count(),
        "emails_sent": sent_count,
        "emails_sent_max_attempts": notifications.aggregate(m=Max("attempts"))["m"],
        "emails_per_second": round(rate, 1) if rate else None,
        "emails_per_second_after_escalations": after_rate,
        "first_email_after_seconds": _after(span["first"], started),
        "sweeps_that_escalated": [run.breached for run in runs.order_by("started_at")],
        "breached_by_worker": by_worker,
        "sweep_errors": sum(SweepRun.objects.filter(started_at__gte=started).values_list("errors", flat=True)),
    }


def _after(moment, started):
    return round((moment - started).total_seconds(), 2) if moment else None


# --- The table ----------------------------------------------------------------------------

# At this share of the backend's own rate or more, the backend sets the pace, not the outbox.
BACKEND_LIMITED_SHARE = 0.8


def _rate_title(server: dict) -> str:
    if server.get("kind", "sink") == "sink":
        return (
            "Catch-up e-mails per second, our own ceiling: the outbox against a zero-cost in-process sink "
            "(BENCH_CATCHUP_MAIL=sink), as a share of that sink alone"
        )
    return "Catch-up e-mails per second through Django's SMTP backend to a sink SMTP server, against that backend alone"


def _alone_runs(alone: dict) -> str:
    from bench.report import _n

    runs = alone.get("runs_per_second") or []
    if len(runs) < 2:
        return ""
    return f", the fastest of {len(runs)} runs: " + " and ".join(f"{_n(rate, 1)}/s" for rate in runs)


def _machine_per_email(split: dict | None, alone: dict) -> str:
    """The two cores per e-mail once the escalations were written, against the backend alone."""
    from bench.report import _n

    if not split or not alone.get("machine_busy_us_per_message"):
        return ""
    database = split.get("PostgreSQL backends (bench database)", 0) + split.get(
        "PostgreSQL server processes (WAL, checkpoints; shared)", 0
    )
    return (
        f"; the machine per e-mail: {_n(split['whole machine'])} µs busy + {_n(split['idle'])} idle "
        f"(PostgreSQL {_n(database)}, kernel and other processes {_n(split['rest of the machine'])}) against "
        f"the backend alone's {_n(alone['machine_busy_us_per_message'])} + {_n(alone['idle_us_per_message'])}"
    )


def report_rows(results: dict) -> list:
    from bench.report import Row, _missing, _n, _share

    entry = results.get("catchup")
    title = f"Outage catch-up, {QUESTIONS:,} overdue at once, {WORKERS} workers"
    missing = _missing(entry)
    if missing:
        return [Row("catchup.escalations", title, missing, target=f"≤ {ESCALATION_TARGET_SECONDS} s; 0 duplicates")]
    title = f"Outage catch-up, {entry['questions']:,} overdue at once, {entry['workers']} workers"
    written, duplicates = entry["escalations_written_seconds"], entry["duplicate_escalations"]
    shares = ", ".join(f"{name}: {_n(count)}" for name, count in entry["breached_by_worker"].items())
    alone = entry.get("backend_alone") or {}
    server = entry.get("mail_server") or {}
    share = entry.get("share_of_backend_rate")
    limit = None if share is None else ("the backend" if share >= BACKEND_LIMITED_SHARE else "the outbox (us)")
    # The SMTP sink counts what reached it: every e-mail sent, and none twice.
    counted = server.get("messages")
    arrived = counted is None or counted == server.get("sent_in_window", entry["emails_sent"])
    finished = entry["emails_sent"] == entry["emails"]
    received = ""
    if counted is not None:
        marked = server.get("sent_in_window", entry["emails_sent"])
        received = f"; the SMTP server counted {_n(counted)} messages ({_n(server['recipients'])} recipients), " + (
            "as many as the database marked sent meanwhile" if arrived else f"the database marked {_n(marked)} sent"
        )
        if not arrived and not finished:
            # Stopped before the end: a worker stopped mid-batch handed over e-mails it never marked.
            received += " (workers stopped mid-send)"
    if server.get("kind", "sink") == "sink":
        backend = f"{_n(alone.get('delay_ms'), 1)} ms per message"
    else:
        backend = f"sink server CPU {_n(server.get('cpu_us_per_message'))} µs per message"
    load = entry.get("load_average")
    cpu = entry.get("cpu_per_email_after_escalations") or {}
    if cpu.get("workers_us") and alone.get("sender_cpu_us_per_message"):
        backend += (
            f"; CPU per e-mail once the escalations were written: the workers {_n(cpu['workers_us'])} µs, "
            f"the backend alone's senders {_n(alone['sender_cpu_us_per_message'])} µs"
        )
    backend += _machine_per_email(cpu.get("split_us"), alone)
    return [
        Row(
            "catchup.escalations",
            f"{title}: every escalation written",
            f"{_n(written, 1)} s; {_n(entry['escalated_questions'])} escalated by "
            f"{len(entry['sweeps_that_escalated'])} sweeps ({shares}); {duplicates} duplicated, "
            f"{entry['sweep_errors']} sweep errors (counted in the database)",
            written,
            f"≤ {ESCALATION_TARGET_SECONDS} s; 0 duplicates",
            written is not None and written <= ESCALATION_TARGET_SECONDS and duplicates == 0,
        ),
        Row(
            "catchup.emails",
            f"{title}: every e-mail handed to the mail backend",
            f"{_n(entry['emails_sent_seconds'], 1)} s; {_n(entry['emails_sent'])} of {_n(entry['emails'])} sent, "
            f"first after {_n(entry['first_email_after_seconds'], 1)} s; {entry['duplicate_emails']} duplicated, "
            f"at most {entry['emails_sent_max_attempts']} attempts{received}",
            entry["emails_sent_seconds"],
            "0 duplicates; every e-mail received",
            entry["duplicate_emails"] == 0 and finished and arrived,
        ),
        Row(
            "catchup.email_rate",
            _rate_title(server),
            f"{_n(entry['emails_per_second'], 1)}/s = {_n(None if share is None else share * 100, 1)} % of the "
            f"backend alone ({_n(alone.get('per_second'), 1)}/s from {alone.get('processes')} processes"
            f"{_alone_runs(alone)}, "
            f"{backend}); the limit: {limit or 'n/a'}; "
            f"{_n(entry.get('emails_per_second_after_escalations'), 1)}/s once every escalation was written"
            f" ({_share(entry.get('share_after_escalations'))} of the backend alone)"
            + (f"; load average {load[0]} → {load[1]}" if load else ""),
            entry["emails_per_second"],
            f"backend-limited (≥ {BACKEND_LIMITED_SHARE:.0%} of its rate)",
            None if share is None else share >= BACKEND_LIMITED_SHARE,
        ),
    ]
