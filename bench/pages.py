"""Public pages against three baselines, under the same gunicorn settings, in the same run.

The baselines: the trivial view inside the portal (all of its middleware),
and the bare-Django app (bench/bare_app.py: Security, Common and Clickjacking
middleware only, its own gunicorn with the same arguments) with a view that
returns "ok" and one that renders a ~15 KB template.

The machine is shared (other work may start or stop at any moment), so each
page is measured in alternating slices with the baselines: trivial, bare ok,
bare template, page, trivial, ... Each round gives ratios measured under the
same background; the median of those ratios is the page's figure.
"""

import os
import statistics

from django.core.cache import cache
from django.db import DatabaseError

from bench.common import NotAvailable, count_queries, progress, resolve_path
from bench.load import LoadResult, measure_get

CONCURRENCY = 20
# More rounds give steadier medians on a busy machine (BENCH_PAGE_ROUNDS).
ROUNDS = int(os.environ.get("BENCH_PAGE_ROUNDS", 3))
TRIVIAL_PATH = "/bench/trivial/"
BARE_OK_PATH = "/ok/"
BARE_TEMPLATE_PATH = "/page/"
# A query parameter no page reads: the view still answers from its stored copy,
# but the request goes through the whole middleware stack (the early page cache,
# articles/middleware.py, leaves unkeyed parameters to the normal path).
FULL_STACK_QUERY = "?utm_source=bench"


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


def full_stack_paths(paths: dict[str, str]) -> dict[str, str]:
    """The same public pages by the normal path: what they cost before the early page cache."""
    return {f"{name}_full_stack": path + FULL_STACK_QUERY for name, path in paths.items()}


def signed_in_floor() -> str:
    """The portal's trivial view with the same patient's session: what any signed-in page
    pays before its view runs (session, user, the middleware), measured beside "my questions"."""
    return TRIVIAL_PATH


def my_questions(people) -> tuple[str, dict[str, str]]:
    """A signed-in patient's "my questions" (12 past questions): its path and Cookie header."""
    from dataclasses import replace

    from bench.common import session_cookie
    from bench.data import add_history
    from portal.models import User

    patient = User.objects.get(pk=people.patient_ids[0])
    add_history(replace(people, patient_ids=[patient.pk]), 12, first_index=0)
    return resolve_path("consultations:my_questions"), session_cookie(patient)


def throughput(
    base_url: str,
    paths: dict[str, str],
    seconds: float,
    warmup: float,
    bare_url: str,
    headers: dict[str, dict[str, str]] | None = None,
) -> dict[str, dict]:
    """Requests per second and latency of each page, and its ratio to each baseline.

    `seconds` is each page's total measuring time, split into ROUNDS slices,
    each preceded by one slice of the same length per baseline. `headers`
    gives a page's request headers by name (a session cookie).
    """
    baselines = {
        "trivial": base_url + TRIVIAL_PATH,
        "bare_ok": bare_url + BARE_OK_PATH,
        "bare_template": bare_url + BARE_TEMPLATE_PATH,
    }
    headers = headers or {}
    slice_seconds = seconds / ROUNDS
    results = {}
    baseline_slices: dict[str, list[LoadResult]] = {key: [] for key in baselines}
    for name, path in paths.items():
        progress(
            f"  {name} ({path}) vs {', '.join(baselines)}: {ROUNDS} rounds of {slice_seconds:.1f} s each, "
            f"{CONCURRENCY} clients"
        )
        extra = headers.get(name)
        measure_get(base_url + path, CONCURRENCY, warmup, warmup=0, headers=extra)  # compiled, caches filled
        page_slices, ratios = [], {key: [] for key in baselines}
        for _ in range(ROUNDS):
            alongside = {}
            for key, url in baselines.items():
                alongside[key] = measure_get(url, CONCURRENCY, slice_seconds, warmup=0)
                baseline_slices[key].append(alongside[key])
            page = measure_get(base_url + path, CONCURRENCY, slice_seconds, warmup=0, headers=extra)
            page_slices.append(page)
            for key, result in alongside.items():
                ratios[key].append(page.per_second / result.per_second if result.per_second else 0.0)
        page_total = LoadResult.merged(page_slices)
        results[name] = {"path": path, "signed_in": extra is not None, **page_total.as_dict()}
        for key in baselines:
            here = LoadResult.merged(baseline_slices[key][-ROUNDS:])
            results[name][f"ratio_to_{key}"] = round(statistics.median(ratios[key]), 3)
            results[name][f"round_ratios_{key}"] = [round(r, 3) for r in ratios[key]]
            results[name][f"{key}_per_second_alongside"] = round(here.per_second, 1)
        # The names the first version of this file saved under (bench/results/latest.json).
        results[name]["round_ratios"] = results[name]["round_ratios_trivial"]
        progress(
            f"    {_summary(page_total)}; "
            + "; ".join(
                f"{key} alongside {results[name][f'{key}_per_second_alongside']:.0f} req/s, "
                f"ratio {results[name][f'ratio_to_{key}']:.2f}"
                for key in baselines
            )
        )
    for key, url in baselines.items():
        merged = LoadResult.merged(baseline_slices[key])
        results[key] = {"path": url.removeprefix(base_url).removeprefix(bare_url), **merged.as_dict()}
        progress(f"  {key} over all rounds: {_summary(merged)}")
    return results
