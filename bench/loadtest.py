"""`make loadtest` (issue 7): 50 patients asking for 60 s against gunicorn on PostgreSQL.

Passes when no response is a 5xx and the number of stored questions equals
the number of successful responses. Prints requests, successes, stored rows
and errors; writes them to bench/results/loadtest.json. `make bench` runs the
same test as one of its rows.
"""

import json
import os
import sys


def main() -> int:
    from bench import environment

    environment.configure()
    from bench import database
    from bench.common import progress

    progress(f"Recreating database {environment.database_name()!r} and flushing Redis {os.environ['REDIS_URL']}")
    database.prepare()
    import django

    django.setup()
    from bench import asking, data, processes, report

    seconds = float(os.environ.get("LOADTEST_SECONDS", asking.LOAD_TEST_SECONDS))
    people = data.create_people(patients=asking.LOAD_TEST_CLIENTS)
    machine = report.machine()  # before the load: its load average says how busy the machine already was
    web = processes.Gunicorn()
    progress(f"Starting gunicorn with {web.workers} sync workers on {web.base_url}")
    web.start()
    try:
        web.wait_ready()
        figures = asking.load_test(web.base_url, people.patient_emails, seconds)
    finally:
        web.stop()
        database.flush_redis()
    print(asking.load_test_summary(figures))
    report.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (report.RESULTS_DIR / "loadtest.json").write_text(
        json.dumps({"machine": machine, "commit": report.commit(), **figures}, indent=2) + "\n"
    )
    return 0 if figures["verdict"]["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
