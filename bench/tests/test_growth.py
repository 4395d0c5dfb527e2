"""The growth section's arithmetic (bench/growth.py): sizes, factors against 10^5, and its rows."""

from bench import growth, report


def _page(p50, queries=12):
    return {"p50_ms": p50, "p99_ms": p50 * 2, "ok": 50, "queries": queries}


def _sweep(seconds):
    return {"seconds": seconds, "runs_seconds": [seconds], "due": 1000, "breached_escalations": [1000]}


def _results(with_big=True):
    sizes = [10_000, 100_000, 1_000_000] + ([10_000_000] if with_big else [])
    costs = dict(zip(sizes, (40.0, 50.0, 60.0, 80.0), strict=False))
    return {
        "queue": {str(n): _page(c) for n, c in costs.items()},
        "dashboard": {str(n): _page(c * 2) for n, c in costs.items()},
        "sweep": {str(n): _sweep(c / 100) for n, c in costs.items()},
        "article": {str(n): _page(5.0, queries=0) for n in costs},
        "growth": {
            "sizes": sizes,
            "load": {
                "1000000": {"seconds": 30.0, "rows_added": 900_000, "index_seconds": 12.0, "indexes_rebuilt": 12},
                "10000000": {"seconds": 420.0, "rows_added": 9_000_000, "index_seconds": 150.0, "indexes_rebuilt": 12},
            },
        },
    }


def test_ten_million_is_measured_only_when_asked_for():
    assert growth.sizes(1_000_000, big=False) == [10_000, 100_000, 1_000_000]
    assert growth.sizes(1_000_000, big=True) == [10_000, 100_000, 1_000_000, 10_000_000]
    assert growth.sizes(100_000, big=False) == [10_000, 100_000]
    assert growth.sizes(5_000, big=False) == [5_000]
    assert growth.big_enabled({"BENCH_BIG": "1"}) and not growth.big_enabled({"BENCH_BIG": "0"})
    assert not growth.big_enabled({})


def test_factors_divide_each_larger_size_by_the_cost_at_ten_to_the_five():
    factors = growth.factors(_results())
    assert factors["queue"] == {"1000000": 1.2, "10000000": 1.6}
    assert factors["dashboard"] == {"1000000": 1.2, "10000000": 1.6}
    assert factors["sweep"] == {"1000000": 1.2, "10000000": 1.6}
    assert factors["article"] == {"1000000": 1.0, "10000000": 1.0}


def test_a_missing_reference_or_size_gives_no_factor_instead_of_a_guess():
    results = _results()
    results["queue"]["100000"] = {"available": False, "reason": "error: boom"}
    results["dashboard"] = {"available": False, "reason": "/staff/sla/ is not in the portal yet"}
    factors = growth.factors(results)
    assert factors["queue"] == {"1000000": None, "10000000": None}
    assert factors["dashboard"] == {}


def test_rows_show_the_cost_at_every_size_and_judge_each_factor():
    rows = {row.key: row for row in report.rows(_results())}
    queue = rows["growth.queue"]
    assert queue.figure.startswith("10^4: 40.0 ms · 10^5: 50.0 ms · 10^6: 60.0 ms · 10^7: 80.0 ms")
    assert queue.value == 50.0
    assert rows["growth.sweep"].figure.startswith("10^4: 0.400 s · 10^5: 0.500 s")
    assert rows["growth.queue.1000000"].figure == "× 1.20"
    assert rows["growth.queue.1000000"].passed is True
    assert rows["growth.queue.10000000"].passed is False
    assert rows["growth.queue.10000000"].label.endswith("growth factor 10^5 → 10^7 stored")
    assert rows["growth.article.10000000"].passed is True
    assert rows["growth.load.10000000"].passed is True
    assert "150 s rebuilding 12 indexes" in rows["growth.load.10000000"].figure


def test_without_bench_big_the_ten_million_rows_say_how_to_get_them():
    results = _results(with_big=False)
    del results["growth"]["load"]["10000000"]
    rows = {row.key: row for row in report.rows(results)}
    assert rows["growth.queue.10000000"].passed is None
    assert "BENCH_BIG=1" in rows["growth.queue.10000000"].figure
    assert rows["growth.load.10000000"].figure == "not measured"
    assert rows["growth.queue.1000000"].passed is True


def test_a_slow_load_fails_its_row():
    results = _results()
    results["growth"]["load"]["10000000"]["seconds"] = 700.0
    rows = {row.key: row for row in report.rows(results)}
    assert rows["growth.load.10000000"].passed is False


def test_database_pages_come_from_the_top_plan_node_and_get_their_own_factor():
    plan = [{"Plan": {"Shared Hit Blocks": 40, "Shared Read Blocks": 2, "Plans": [{"Shared Hit Blocks": 39}]}}]
    assert growth.plan_buffers(plan) == 42
    assert growth.plan_buffers([{"Plan": {}}]) == 0
    results = _results()
    for size, pages in (("10000", 90), ("100000", 100), ("1000000", 100), ("10000000", 110)):
        results["dashboard"][size]["database_pages"] = pages
    assert growth.factors(results, "database_pages")["dashboard"] == {"1000000": 1.0, "10000000": 1.1}
    rows = {row.key: row for row in report.rows(results)}
    assert rows["growth.dashboard.10000000"].figure == "× 1.60; database pages read per request × 1.10"
    assert rows["growth.dashboard"].figure.endswith("database pages read 90 · 100 · 100 · 110")


def test_the_quickest_round_counts_and_every_round_is_kept():
    rounds = [_page(300.0, queries=30), _page(250.0, queries=30)]
    best = growth.best_round(rounds)
    assert best["p50_ms"] == 250.0
    assert best["rounds_p50_ms"] == [300.0, 250.0]
    assert "rounds_p50_ms" not in rounds[1]  # the measured rounds are left as they were


def test_server_cpu_per_request_gets_its_own_factor_next_to_the_latency():
    results = _results()
    for size, cpu in (("10000", 30.0), ("100000", 40.0), ("1000000", 40.0), ("10000000", 44.0)):
        results["queue"][size]["cpu_ms"] = cpu
    rows = {row.key: row for row in report.rows(results)}
    assert rows["growth.queue.10000000"].figure == "× 1.60; server CPU per request × 1.10"
    assert rows["growth.queue"].figure.endswith("server CPU ms 30.0 · 40.0 · 40.0 · 44.0")
