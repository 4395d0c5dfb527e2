"""`make bench`: set up, load, measure, print the table, write bench/results/latest.json.

Order of work (about 8 minutes on 2 cores):
1. a fresh `bench` database and Redis db; people and 50 articles;
2. gunicorn; public pages against the trivial view; asking; the load test;
3. questions grown to 10^4, 10^5, 10^6 stored, and 10^7 with BENCH_BIG=1 (1,000 of them open and
   due): at each size one sweep, the doctor queue (and its live poll), the SLA dashboard and an
   article page; growth factors against 10^5 (bench/growth.py);
4. escalation latency with a live beat and worker; the breach forecast on a replayed day;
5. the outage catch-up: 10^5 questions overdue at once, two workers (bench/catchup.py);
6. query counts again with ten times the articles.
"""

import argparse
import os
import sys
import traceback
from datetime import UTC, datetime


def _parse(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--skip-load-test", action="store_true", help="leave out the 60 s load test")
    parser.add_argument(
        "--max-questions",
        type=int,
        default=int(os.environ.get("BENCH_MAX_QUESTIONS", 1_000_000)),
        help="largest stored size (default 1,000,000; smaller only to try the harness quickly)",
    )
    parser.add_argument("--page-seconds", type=float, default=float(os.environ.get("BENCH_PAGE_SECONDS", 10)))
    parser.add_argument("--no-save", action="store_true", help="print the table without writing latest.json")
    parser.add_argument(
        "--only",
        choices=["pages", "asking", "catchup"],
        default=os.environ.get("BENCH_ONLY") or None,
        help="run one phase alone (BENCH_ONLY=pages: the public pages against the baselines, about 6 minutes; "
        "BENCH_ONLY=asking: asking text only and with a photo, about 2 minutes; "
        "BENCH_ONLY=catchup: the outage catch-up, BENCH_CATCHUP_QUESTIONS overdue, default 100,000)",
    )
    return parser.parse_args(argv)


class Results(dict):
    """Measured figures by name; a failed measurement is recorded and the run goes on."""

    def __init__(self):
        super().__init__()
        self.failed: list[str] = []

    def measure(self, name: str, function, *args, **kwargs):
        from bench.common import NotAvailable, progress

        try:
            value = function(*args, **kwargs)
        except NotAvailable as exc:
            progress(f"  not available: {exc}")
            value = {"available": False, "reason": str(exc)}
        except Exception as exc:  # noqa: BLE001 - one broken measurement must not hide the others
            traceback.print_exc()
            progress(f"  FAILED: {type(exc).__name__}: {exc}")
            self.failed.append(name)
            value = {"available": False, "reason": f"error: {type(exc).__name__}: {exc}"}
        return value


class OnlyPages(Exception):
    """Ends the run after the phase asked for (BENCH_ONLY=pages or asking); the table is still printed."""


def main(argv=None) -> int:
    args = _parse(argv)
    started_at = datetime.now(UTC)
    from bench import environment

    environment.configure()
    from bench import database
    from bench.common import progress

    progress(f"Recreating database {environment.database_name()!r} and flushing Redis {os.environ['REDIS_URL']}")
    database.prepare()

    import django

    django.setup()
    from django.db import DatabaseError

    from bench import asking, catchup, data, engine, forecast, growth, pages, processes, report

    previous = report.previous_rows()
    info, git = report.machine(), report.commit()
    results = Results()
    sizes = growth.sizes(args.max_questions, growth.big_enabled())
    args.sizes = sizes

    progress("Creating specialties, doctors, staff and 5,000 patients")
    people = data.create_people(patients=5000)
    small_articles, large_articles = 50, 500
    try:
        created = data.create_articles(people, small_articles)
        progress(f"Created {created} published articles")
    except (ImportError, DatabaseError) as exc:
        progress(f"No articles: {exc}")

    if args.only == "catchup":
        progress(f"Outage catch-up: {catchup.QUESTIONS:,} questions overdue at once, two workers")
        results["catchup"] = results.measure("catchup", catchup.catch_up, people)
        return _finish(args, started_at, info, git, results, previous)

    web = processes.Gunicorn()
    info["web_workers"] = web.workers
    progress(f"Starting gunicorn with {web.workers} sync workers on {web.base_url}")
    # The bare-Django baseline (bench/bare_app.py): same gunicorn arguments, idle while the portal is measured.
    bare = processes.Gunicorn(workers=web.workers, app="bench.bare_app", name="gunicorn-bare")
    web.start()
    bare.start()
    try:
        web.wait_ready()
        bare.wait_ready(pages.BARE_OK_PATH)

        def public_pages():
            paths = pages.public_paths()
            queries = {"small_articles": small_articles, "small": pages.query_counts(paths)}
            path, cookie = pages.my_questions(people)
            measured = {**paths, **pages.full_stack_paths(paths), "my_questions": path}
            measured["trivial_signed_in"] = pages.signed_in_floor()
            signed_in = {"my_questions": cookie, "trivial_signed_in": cookie}
            return {
                "queries": queries,
                "throughput": pages.throughput(
                    web.base_url, measured, args.page_seconds, 2.0, bare.base_url, headers=signed_in
                ),
            }

        if args.only != "asking":
            progress("Public pages against the trivial view and the bare-Django app")
            results["pages"] = results.measure("pages", public_pages)
        if args.only == "pages":
            raise OnlyPages

        progress("Asking through the real form")
        results["asking"] = results.measure(
            "asking", asking.ask_questions, web.base_url, data.random_patients(people, 20, seed=1), 20, 15.0
        )
        results["asking_photo"] = results.measure(
            "asking_photo",
            asking.ask_questions,
            web.base_url,
            data.random_patients(people, 20, seed=3),
            20,
            15.0,
            asking.bench_photo(),
        )
        if args.only == "asking":
            raise OnlyPages
        if not args.skip_load_test:
            progress("Load test (issue 7): 50 patients asking for 60 s")
            results["load_test"] = results.measure(
                "load_test", asking.load_test, web.base_url, data.random_patients(people, 50, seed=2)
            )
            if results["load_test"].get("verdict"):
                progress(asking.load_test_summary(results["load_test"]))

        progress("Replacing the asked questions with the SLA data set")
        data.clear_questions()
        due_ids = data.add_due(people)
        growth.measure_sizes(results, people, due_ids, web.base_url, sizes)

        data.answer_due(due_ids)
        progress("Escalation latency: live beat and worker on Redis")
        results["escalation"] = results.measure("escalation", engine.escalation_latency, people)

        progress("Breach forecast: a synthetic day replayed in memory")
        results["forecast"] = results.measure("forecast", forecast.replay)

        progress(f"Outage catch-up: {catchup.QUESTIONS:,} questions overdue at once, two workers")
        results["catchup"] = results.measure("catchup", catchup.catch_up, people)

        if isinstance(results["pages"].get("queries"), dict):
            progress(f"Query counts again with {large_articles} articles")

            def more_articles():
                data.create_articles(people, large_articles - small_articles, start=small_articles)
                return pages.query_counts(pages.public_paths())

            large = results.measure("pages", more_articles)
            if large.get("available") is not False:
                results["pages"]["queries"].update(large=large, large_articles=large_articles)
    except OnlyPages:
        progress(f"BENCH_ONLY={args.only}: the other phases were left out")
    except Exception as exc:  # noqa: BLE001 - print what was measured before the failure
        traceback.print_exc()
        progress(f"The run stopped early: {type(exc).__name__}: {exc}")
        results.failed.append("run")
    finally:
        web.stop()
        bare.stop()
        database.flush_redis()

    return _finish(args, started_at, info, git, results, previous)


def _finish(args, started_at, info, git, results, previous) -> int:
    """Print the table and save every figure."""
    from django.conf import settings

    from bench import data, environment, pages, report

    info["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    table_rows = report.rows(results)
    finished_at = datetime.now(UTC)
    document = {
        "schema": 1,
        "started_at": started_at.isoformat(),
        "finished_at": finished_at.isoformat(),
        "duration_seconds": round((finished_at - started_at).total_seconds(), 1),
        "machine": info,
        "commit": git,
        "config": {
            "web_workers": info.get("web_workers"),
            "page_clients": pages.CONCURRENCY,
            "page_seconds": args.page_seconds,
            "sizes": args.sizes,
            "due_questions": data.DUE_COUNT,
            "sla_sweep_batch_size": settings.SLA_SWEEP_BATCH_SIZE,
            "database": environment.database_name(),
            "redis": os.environ["REDIS_URL"],
        },
        "results": dict(results),
        "failed_measurements": results.failed,
        "rows": report.row_dicts(table_rows),
    }
    print()
    print(report.markdown(table_rows, previous))
    print()
    print(report.machine_line(info, git))
    print(f"Finished in {document['duration_seconds'] / 60:.1f} min.")
    if not args.no_save:
        path = report.save(document)
        print(f"Every figure: {path.relative_to(report.ROOT)}")
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())
