"""Public pages against the trivial baseline view, under the same gunicorn, in the same run.

The machine is shared (other work may start or stop at any moment), so each
page is measured in alternating slices with the baseline: trivial, page,
trivial, page, ... Each pair gives a ratio measured under the same
background; the median of those ratios is the page's figure.
"""

import statistics

from django.core.cache import cache
from django.db import DatabaseError

from bench.common import NotAvailable, count_queries, progress, resolve_path
from bench.load import LoadResult, measure_get

CONCURRENCY = 20
ROUNDS = 3
TRIVIAL_PATH = "/bench/trivial/"


def public_paths() -> dict[str, str]:
    """The pages measured, by name; NotAvailable if the article pages are not in the portal yet."""
    from bench.data import published_article_slug

    paths = {"home": resolve_path("home")}
    try:
        slug = published_article_slug()
    except (ImportError, DatabaseError) as exc:
        raise NotAvailable(f"no article model yet ({exc})") from None
    if slug is None:
        raise NotAvailable("no published article was loaded")
    paths["article"] = resolve_path("articles:detail", slug)
    paths["article_list"] = resolve_path("articles:list")
    return paths


def query_counts(paths: dict[str, str]) -> dict[str, dict]:
    """Queries per page with an empty cache (first visitor) and a warm one (everyone after)."""
    counts = {}
    for name, path in paths.items():
        # The bench's own Redis db: clearing it touches nobody else's data.
        cache.clear()
        cold_status, cold = count_queries(path)
        warm_status, warm = count_queries(path)
        counts[name] = {"path": path, "status": warm_status, "cold_queries": cold, "warm_queries": warm}
        if cold_status != 200 or warm_status != 200:
            counts[name]["error"] = f"HTTP {cold_status}/{warm_status}"
    return counts


def _summary(result: LoadResult) -> str:
    return (
        f"{result.per_second:.0f} req/s, p50 {result.percentile_ms(50) or 0:.1f} ms, "
        f"p99 {result.percentile_ms(99) or 0:.1f} ms, {result.errors} errors"
    )


def throughput(base_url: str, paths: dict[str, str], seconds: float, warmup: float) -> dict[str, dict]:
    """Requests per second and latency of each page, and its ratio to the trivial view.

    `seconds` is each page's total measuring time, split into ROUNDS slices,
    each preceded by a baseline slice of the same length.
    """
    slice_seconds = seconds / ROUNDS
    results, baseline_slices = {}, []
    for name, path in paths.items():
        progress(f"  {name} ({path}) vs trivial: {ROUNDS} rounds of {slice_seconds:.1f} s each, {CONCURRENCY} clients")
        measure_get(base_url + path, CONCURRENCY, warmup, warmup=0)  # templates compiled, caches filled
        page_slices, ratios = [], []
        for _ in range(ROUNDS):
            trivial = measure_get(base_url + TRIVIAL_PATH, CONCURRENCY, slice_seconds, warmup=0)
            page = measure_get(base_url + path, CONCURRENCY, slice_seconds, warmup=0)
            baseline_slices.append(trivial)
            page_slices.append(page)
            ratios.append(page.per_second / trivial.per_second if trivial.per_second else 0.0)
        page_total = LoadResult.merged(page_slices)
        trivial_here = LoadResult.merged(baseline_slices[-ROUNDS:])
        results[name] = {
            "path": path,
            **page_total.as_dict(),
            "ratio_to_trivial": round(statistics.median(ratios), 3),
            "round_ratios": [round(r, 3) for r in ratios],
            "trivial_per_second_alongside": round(trivial_here.per_second, 1),
        }
        progress(
            f"    {_summary(page_total)}; trivial alongside {trivial_here.per_second:.0f} req/s; "
            f"ratio {statistics.median(ratios):.2f} (rounds {', '.join(f'{r:.2f}' for r in ratios)})"
        )
    baseline = LoadResult.merged(baseline_slices)
    results["trivial"] = {"path": TRIVIAL_PATH, **baseline.as_dict()}
    progress(f"  trivial view over all rounds: {_summary(baseline)}")
    return results
