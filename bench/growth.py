"""Growth (issue 17): what the doctor queue, the staff dashboard, one sweep and the article
page cost at 10^4, 10^5, 10^6 and (with BENCH_BIG=1) 10^7 stored questions.

Loading: the history rows are generated inside PostgreSQL (bench/data.py
add_history). A step that at least doubles the table drops the question
table's secondary indexes first and builds them again afterwards (one sorted
build each instead of ten million random inserts), then VACUUMs and ANALYZEs
the table; every figure is measured with the real indexes back in place.

A growth factor is the cost at a larger size divided by the cost at 10^5,
both measured in the same run: the target is under 1.5 from 10^5 to 10^7.
"""

import os
import time
from contextlib import contextmanager

from django.db import DatabaseError, connection

from bench.common import NotAvailable, count_queries, progress, session_cookie

BASE_SIZES = (10_000, 100_000, 1_000_000)
BIG_SIZE = 10_000_000
REFERENCE = 100_000
GROWTH_TARGET = 1.5
TABLE = "consultations_question"
# key in the results: (label, field holding the cost, unit)
MEASURED = {
    "queue": ("Doctor queue page p50", "p50_ms", "ms"),
    "dashboard": ("SLA dashboard page p50", "p50_ms", "ms"),
    "sweep": ("One sweep over the same 1,000 due", "seconds", "s"),
    "article": ("Article page p50 (anonymous)", "p50_ms", "ms"),
}


def big_enabled(environ=None) -> bool:
    return (environ if environ is not None else os.environ).get("BENCH_BIG", "") not in ("", "0")


def sizes(max_questions: int, big: bool) -> list[int]:
    """The stored sizes measured: 10^4..10^6 up to max_questions, and 10^7 only when big."""
    chosen = [n for n in BASE_SIZES if n <= max_questions] or [max_questions]
    return chosen + [BIG_SIZE] if big else chosen


def factors(results: dict, measure: str | None = None) -> dict[str, dict[str, float | None]]:
    """Cost at each size larger than REFERENCE over the cost at REFERENCE, for each of MEASURED
    (its latency, or `measure`: "database_pages" for the pages read per request)."""
    growth = {}
    for key, (_, latency, _) in MEASURED.items():
        field = measure or latency
        entry = results.get(key) or {}
        base = _cost(entry.get(str(REFERENCE)), field)
        growth[key] = {}
        for size, measured in entry.items():
            if not size.isdigit() or int(size) <= REFERENCE:
                continue
            cost = _cost(measured, field)
            growth[key][size] = round(cost / base, 3) if cost is not None and base else None
    return growth


def _cost(measured, field: str) -> float | None:
    if not isinstance(measured, dict) or measured.get("available") is False:
        return None
    value = measured.get(field)
    return float(value) if isinstance(value, int | float) else None


# --- Loading ----------------------------------------------------------------------------


def _secondary_indexes(cursor) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(plain indexes, unique constraints) of the question table, as (name, definition)."""
    cursor.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = %s::regclass AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid)",
        [TABLE],
    )
    indexes = cursor.fetchall()
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'u'",
        [TABLE],
    )
    return indexes, cursor.fetchall()


@contextmanager
def indexes_rebuilt(timings: dict):
    """Drop the question table's secondary indexes (the primary key stays), then build them again."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        indexes, uniques = _secondary_indexes(cursor)
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {quote(name)}")
        for name, _ in uniques:
            cursor.execute(f"ALTER TABLE {quote(TABLE)} DROP CONSTRAINT {quote(name)}")
    try:
        yield
    finally:
        began = time.monotonic()
        with connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '256MB'")
            for _, definition in indexes:
                cursor.execute(definition)
            for name, definition in uniques:
                cursor.execute(f"ALTER TABLE {quote(TABLE)} ADD CONSTRAINT {quote(name)} {definition}")
            cursor.execute("RESET maintenance_work_mem")
        timings["index_seconds"] = round(time.monotonic() - began, 1)
        timings["indexes_rebuilt"] = len(indexes) + len(uniques)


def grow(people, stored: int, size: int) -> dict:
    """Add history rows until `size` are stored; the load's timings."""
    from bench import data

    count = size - stored
    timings = {"rows_added": count, "index_seconds": 0.0, "indexes_rebuilt": 0}
    began = time.monotonic()

    def load():
        data.add_history(
            people,
            count,
            first_index=stored,
            progress=lambda done, total: progress(f"  inserted {done:,} of {total:,}"),
        )

    if count >= stored:  # the table at least doubles: one sorted build beats `count` index inserts
        with indexes_rebuilt(timings):
            load()
    else:
        load()
    # As autovacuum would have long since done to years of history: the visibility map lets
    # counts be index-only, and no autovacuum starts in the middle of a measurement.
    vacuumed = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {connection.ops.quote_name(TABLE)}")
    timings["vacuum_seconds"] = round(time.monotonic() - vacuumed, 1)
    # The load's dirty pages written out now, not by a checkpoint in the middle of a measurement.
    flushed = time.monotonic()
    try:
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
    except DatabaseError:  # not a superuser: the background checkpointer does it in its own time
        pass
    timings["checkpoint_seconds"] = round(time.monotonic() - flushed, 1)
    timings["seconds"] = round(time.monotonic() - began, 1)
    timings["stored"] = data.question_count()
    return timings


# --- Database work per request (load-independent) -----------------------------------------


def plan_buffers(plan: list) -> int:
    """Shared buffers (8 KB pages) a statement touched: hit + read of its top plan node, which
    includes its children's; from `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)`."""
    top = plan[0]["Plan"]
    return int(top.get("Shared Hit Blocks", 0)) + int(top.get("Shared Read Blocks", 0))


def database_pages(path: str, user=None) -> int:
    """Pages of the database one request of `path` reads: each SELECT it sends, run again under
    EXPLAIN ANALYZE. Unlike latency, this does not move with the machine's other work."""
    import json

    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    if user is not None:
        client.force_login(user)
    client.get(path)  # caches filled, as for the measured requests
    with CaptureQueriesContext(connection) as queries:
        client.get(path)
    total = 0
    with connection.cursor() as cursor:
        for query in queries.captured_queries:
            if query["sql"].lstrip().upper().startswith(("SELECT", "WITH")):
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + query["sql"])
                plan = cursor.fetchone()[0]
                total += plan_buffers(json.loads(plan) if isinstance(plan, str) else plan)
    return total


# --- CPU per request (web worker + database backend) -------------------------------------

CPU_REQUESTS = 20


def _ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks (0 if it has gone)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: PTH123, SIM115
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def _server_pids(base_url: str) -> list[int]:
    """The gunicorn processes bound to base_url's port, and the bench database's other backends."""
    bind = "127.0.0.1:" + base_url.rsplit(":", 1)[1].strip("/")
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                command = open(f"/proc/{entry}/cmdline", "rb").read().replace(b"\0", b" ")  # noqa: PTH123, SIM115
            except OSError:
                continue
            if b"gunicorn" in command and bind.encode() in command:
                pids.append(int(entry))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        pids += [row[0] for row in cursor.fetchall()]
    return pids


def cpu_ms_per_request(base_url: str, path: str, headers: dict, expected: int = 200) -> float | None:
    """CPU milliseconds the server (gunicorn workers + PostgreSQL backends) spends per request,
    over CPU_REQUESTS sequential GETs. Waiting for a busy CPU is not CPU time: this moves far
    less with the machine's other work than latency does."""
    import urllib.error
    import urllib.request

    if not os.path.isdir("/proc"):
        return None

    def get():
        request = urllib.request.Request(base_url + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the bench's own server
                response.read()
        except urllib.error.HTTPError as exc:
            if exc.code != expected:
                raise

    get()  # connections and caches warm
    before = {pid: _ticks(pid) for pid in _server_pids(base_url)}
    for _ in range(CPU_REQUESTS):
        get()
    # A process that started meanwhile counts whole; one that ended meanwhile is lost (rare).
    spent = sum(max(_ticks(pid) - before.get(pid, 0), 0) for pid in _server_pids(base_url))
    return round(spent * 1000 / os.sysconf("SC_CLK_TCK") / CPU_REQUESTS, 2)


def sweep_cpu_ms(due_ids: list[int]) -> float:
    """CPU milliseconds of one more sweep over the due set: this process and its database backend."""
    from django.conf import settings

    from bench import data
    from consultations.sweep import run_sweep

    data.reset_due(due_ids)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    process, ticks = time.process_time(), _ticks(backend)
    run_sweep(batch_size=settings.SLA_SWEEP_BATCH_SIZE)
    spent = time.process_time() - process + (_ticks(backend) - ticks) / os.sysconf("SC_CLK_TCK")
    return round(spent * 1000, 1)


# --- The article page -------------------------------------------------------------------


def article_latency(base_url: str, path: str, user, seconds: float) -> dict:
    """Sequential anonymous GETs (`user` is None) of one article for `seconds`: what one reader waits for."""
    from bench.load import measure_get

    status, queries = count_queries(path)
    if status != 200:
        raise NotAvailable(f"{path} answered HTTP {status} through the test client")
    result = measure_get(base_url + path, 1, seconds, warmup=1.0)
    if result.ok == 0:
        raise NotAvailable(f"{path} through gunicorn: {result.first_error or dict(result.outcomes)}")
    progress(f"    {path}: p50 {result.percentile_ms(50):.1f} ms over {result.ok} requests, {queries} queries")
    return {"path": path, "queries": queries, **result.as_dict()}


# --- The run ----------------------------------------------------------------------------


def _measure_at(results, key: str, size: int, function) -> None:
    """results[key][size] = function(); a piece the portal lacks marks the whole key not available."""
    if results[key].get("available") is False:
        return
    outcome = results.measure(key, function)
    if outcome.get("available") is False and "error" not in outcome.get("reason", ""):
        results[key] = outcome
    else:
        results[key][str(size)] = outcome


PAGE_ROUNDS = 2


def best_round(rounds: list[dict]) -> dict:
    """The round with the lowest p50, with every round's p50 kept: the machine's other work only
    ever adds time, so the quickest of rounds spread over a minute is the page's own cost."""
    best = dict(min(rounds, key=lambda r: r["p50_ms"]))
    best["rounds_p50_ms"] = [r["p50_ms"] for r in rounds]
    return best


def _pages_at(results, base_url: str, people, size: int, seconds: float) -> None:
    """Each page in PAGE_ROUNDS interleaved rounds of `seconds`; the best round counts."""
    from bench import pages, staff_pages

    doctor, staff = people.queue_doctor, people.staff[0]
    plan = (
        ("queue", staff_pages.queue_path, doctor, staff_pages.page_latency),
        ("queue_poll", staff_pages.queue_poll_path, doctor, staff_pages.poll_latency),
        ("dashboard", staff_pages.dashboard_path, staff, staff_pages.page_latency),
        ("article", lambda: pages.public_paths()["article"], None, article_latency),
    )
    rounds: dict[str, list[dict]] = {key: [] for key, *_ in plan}
    for number in range(PAGE_ROUNDS):
        for key, path_of, user, measure in plan:
            progress(f"  {key} page with {size:,} stored (round {number + 1} of {PAGE_ROUNDS})")
            _measure_at(
                results, key, size, lambda path_of=path_of, user=user, m=measure: m(base_url, path_of(), user, seconds)
            )
            measured = results[key].get(str(size))
            if isinstance(measured, dict) and "p50_ms" in measured:
                rounds[key].append(measured)
    for key, path_of, user, _ in plan:
        if rounds[key]:
            path, headers = path_of(), session_cookie(user) if user is not None else {}
            results[key][str(size)] = {
                **best_round(rounds[key]),
                "database_pages": database_pages(path, user),
                "cpu_ms": cpu_ms_per_request(base_url, path, headers),
            }


def measure_sizes(results, people, due_ids: list[int], base_url: str, chosen: list[int], seconds=4.0) -> None:
    """Grow the store through `chosen` sizes; at each, one sweep (3 runs) and the four pages."""
    from bench import data, engine

    for key in ("sweep", *MEASURED, "queue_poll"):
        results.setdefault(key, {})
    load = results.setdefault("growth", {"sizes": chosen, "load": {}})["load"]
    stored = len(due_ids)
    for size in chosen:
        progress(f"Growing to {size:,} stored questions (1,000 due)")
        load[str(size)] = grow(people, stored, size)
        stored = size
        progress(f"  loaded in {load[str(size)]['seconds']:.0f} s; {load[str(size)]['stored']:,} stored")
        progress(f"  timing one sweep (3 runs) with {stored:,} stored")
        _measure_at(results, "sweep", size, lambda: engine.sweep_once(due_ids))
        measured = results["sweep"].get(str(size), {})
        if "seconds" in measured and os.path.isdir("/proc"):
            measured["cpu_ms"] = sweep_cpu_ms(due_ids)
        if "seconds" in measured:
            progress(f"    {measured['seconds']:.3f} s (runs {measured['runs_seconds']})")
        data.reset_due(due_ids)
        _pages_at(results, base_url, people, size, seconds)
    results["growth"]["factors"] = factors(results)
    results["growth"]["database_pages_factors"] = factors(results, "database_pages")
    results["growth"]["cpu_factors"] = factors(results, "cpu_ms")


# --- The table --------------------------------------------------------------------------

LOAD_TARGET_SECONDS = 600


def _power(size: str) -> str:
    n = int(size)
    exponent = len(str(n)) - 1
    return f"10^{exponent}" if n == 10**exponent else f"{n:,}"


def _growth_row(key: str, label: str, size: str, factor, missing: str | None, pages_factor=None, cpu_factor=None):
    from bench.report import Row

    title = f"{label}: growth factor 10^5 → {_power(size)} stored"
    target = f"< {GROWTH_TARGET}"
    if factor is None:
        hint = " (BENCH_BIG=1 loads 10^7)" if int(size) == BIG_SIZE and not missing else ""
        return Row(f"growth.{key}.{size}", title, (missing or "not measured") + hint, None, target)
    pages = "" if pages_factor is None else f"; database pages read per request × {pages_factor:.2f}"
    per = "per sweep" if key == "sweep" else "per request"
    pages += "" if cpu_factor is None else f"; server CPU {per} × {cpu_factor:.2f}"
    return Row(f"growth.{key}.{size}", title, f"× {factor:.2f}{pages}", factor, target, factor < GROWTH_TARGET)


def _cost_row(key: str, label: str, field: str, unit: str, entry: dict, sizes: list[str]):
    from bench.report import Row

    digits = 3 if unit == "s" else 1
    costs = [(size, _cost(entry.get(size), field)) for size in sizes]
    figure = " · ".join(
        f"{_power(size)}: {'n/a' if cost is None else f'{cost:,.{digits}f} {unit}'}" for size, cost in costs
    )
    for name, count in (("queries", "queries"), ("database pages read", "database_pages"), ("server CPU ms", "cpu_ms")):
        counts = [entry[s][count] for s in sizes if isinstance(entry.get(s), dict) and count in entry[s]]
        if counts:
            figure += f"; {name} {' · '.join(f'{n:,}' for n in counts)}"
    return Row(f"growth.{key}", f"{label} at each stored size", figure, _cost(entry.get(str(REFERENCE)), field))


def _load_rows(load: dict) -> list:
    from bench.report import Row

    rows = []
    for size in (str(10**6), str(BIG_SIZE)):
        timings = load.get(size)
        title = f"Loading the store up to {_power(size)} questions"
        target = f"< {LOAD_TARGET_SECONDS} s" if int(size) == BIG_SIZE else ""
        if not timings:
            rows.append(Row(f"growth.load.{size}", title, "not measured", None, target))
            continue
        passed = timings["seconds"] < LOAD_TARGET_SECONDS if target else None
        figure = (
            f"{timings['seconds']:.0f} s for {timings['rows_added']:,} rows "
            f"(of which {timings['index_seconds']:.0f} s rebuilding {timings['indexes_rebuilt']} indexes, "
            f"{timings.get('vacuum_seconds', 0):.0f} s VACUUM ANALYZE, "
            f"{timings.get('checkpoint_seconds', 0):.0f} s CHECKPOINT)"
        )
        rows.append(Row(f"growth.load.{size}", title, figure, timings["seconds"], target, passed))
    return rows


def rows(results: dict) -> list:
    """The growth section of the table: cost at every size, then each factor against 10^5."""
    from bench.report import Row, _missing

    entry = results.get("growth")
    if not entry:
        return [Row("growth", "Growth 10^4 → 10^7 stored questions", "not measured")]
    sizes = [str(n) for n in entry["sizes"]]
    growth, pages, cpu = factors(results), factors(results, "database_pages"), factors(results, "cpu_ms")
    table = []
    for key, (label, field, unit) in MEASURED.items():
        measured = results.get(key) or {}
        missing = _missing(measured) if measured.get("available") is False else None
        table.append(_cost_row(key, label, field, unit, measured, sizes))
        for size in (str(10**6), str(BIG_SIZE)):
            table.append(
                _growth_row(key, label, size, growth[key].get(size), missing, pages[key].get(size), cpu[key].get(size))
            )
    return table + _load_rows(entry.get("load", {}))
