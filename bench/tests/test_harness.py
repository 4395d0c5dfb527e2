"""The bench's own arithmetic and form handling (run with `pytest bench/tests`).

The measurements themselves need a server and minutes; these check the parts
that turn responses into figures and figures into the table.
"""

from collections import Counter

import pytest

from bench import report
from bench.forms import fill, find_form
from bench.load import LoadResult, percentile

ASK_PAGE = """
<form method="post" action="" enctype="multipart/form-data">
  <input type="hidden" name="csrfmiddlewaretoken" value="tok123">
  <select name="specialty" required><option value="">Choose</option><option value="7">Skin</option></select>
  <input type="text" name="title" required>
  <textarea name="description" required>kept</textarea>
  <input type="radio" name="sex" value="female"><input type="radio" name="sex" value="male" checked>
  <input type="checkbox" name="consent" required>
  <input type="checkbox" name="newsletter">
  <input type="file" name="attachments" multiple>
  <button type="submit" name="go">Send</button>
</form>
"""


def test_fill_posts_what_a_browser_would():
    form = find_form(ASK_PAGE, "title")
    data = fill(form, {"title": "Itchy elbow"})
    assert data == {
        "csrfmiddlewaretoken": "tok123",
        "specialty": "7",
        "title": "Itchy elbow",
        "description": "kept",
        "sex": "male",
        "consent": "on",
    }


def test_find_form_skips_forms_without_the_field():
    page = '<form action="/search/"><input name="q"></form>' + ASK_PAGE
    assert find_form(page, "title").fields[0].name == "csrfmiddlewaretoken"
    assert find_form(page, "nothing") is None


def test_percentile_is_a_latency_some_request_had():
    values = [0.010, 0.020, 0.030, 0.040, 1.0]
    assert percentile(values, 50) == 0.030
    assert percentile(values, 99) == 1.0
    assert percentile([0.5], 99) == 0.5


def test_merged_results_add_counts_and_pool_latencies():
    first = LoadResult(20, seconds=2.0, ok=2, outcomes=Counter({"200": 2}), latencies=[0.1, 0.2])
    second = LoadResult(20, seconds=2.0, ok=1, outcomes=Counter({"200": 1, "500": 1}), latencies=[0.3])
    whole = LoadResult.merged([first, second])
    assert (whole.requests, whole.ok, whole.errors) == (4, 3, 1)
    assert whole.per_second == 0.75
    assert whole.percentile_ms(99) == 300.0


def test_missing_pieces_show_as_not_available_without_a_verdict():
    results = {
        "pages": {"available": False, "reason": "no article model yet"},
        "sweep": {"available": False, "reason": "consultations.sweep.run_sweep is not in the portal yet"},
    }
    rows = {row.key: row for row in report.rows(results)}
    assert rows["pages.article"].figure.startswith("not available: no article model")
    assert rows["pages.article"].passed is None
    assert rows["sweep.growth"].passed is None
    assert rows["escalation"].figure == "not measured"


def _sweep(seconds):
    return {
        "seconds": seconds,
        "runs_seconds": [seconds],
        "due": 1000,
        "breached_escalations": [1000],
        "batch_size": 500,
    }


def test_sweep_growth_is_computed_from_the_measured_times():
    results = {"sweep": {"10000": _sweep(0.4), "100000": _sweep(0.5), "1000000": _sweep(0.9)}}
    rows = {row.key: row for row in report.rows(results)}
    assert rows["sweep.growth"].value == 0.9 / 0.4
    assert rows["sweep.growth"].passed is False
    assert rows["sweep.1000000"].passed is True


def test_a_sweep_that_escalated_too_few_fails_even_when_fast():
    incomplete = {**_sweep(0.2), "breached_escalations": [500]}
    rows = {row.key: row for row in report.rows({"sweep": {"10000": incomplete}})}
    assert rows["sweep.10000"].passed is False
    assert "escalated [500] of 1000" in rows["sweep.10000"].figure


def test_markdown_table_shows_the_previous_run_by_key():
    rows = [report.Row("sweep.growth", "Sweep growth", "× 1.10", 1.1, "< 2", True)]
    table = report.markdown(rows, {"sweep.growth": {"value": 1.5}})
    assert "| Sweep growth | × 1.10 | < 2 | pass | 1.5 |" in table


def _poll(p50_changed, p50_unchanged):
    return {
        "path": "/doctor/consultations/question/live/",
        "queries": 9,
        "ok": 40,
        "p50_ms": p50_changed,
        "p99_ms": p50_changed * 2,
        "unchanged": {"queries": 9, "ok": 90, "p50_ms": p50_unchanged, "p99_ms": p50_unchanged * 2},
    }


def test_the_workbench_poll_row_sits_next_to_the_queue_page_with_both_answers():
    results = {"queue_poll": {"100000": _poll(41.0, 12.0)}}
    table = report.rows(results)
    keys = [row.key for row in table]
    assert keys.index("queue_poll.100000") == keys.index("queue.1000000") + 1
    row = {row.key: row for row in table}["queue_poll.100000"]
    assert row.figure == (
        "changed: p50 41 ms, p99 82 ms over 40 requests, 9 queries; "
        "unchanged (304): p50 12 ms, p99 24 ms over 90 requests, 9 queries"
    )
    assert (row.value, row.passed) == (41.0, True)
    assert {r.key: r for r in table}["queue_poll.1000000"].figure == "not measured"


def test_a_slow_poll_fails_and_a_missing_one_says_why():
    assert {r.key: r for r in report.rows({"queue_poll": {"100000": _poll(350.0, 20.0)}})}[
        "queue_poll.100000"
    ].passed is False
    missing = {"queue_poll": {"available": False, "reason": "URL 'doctor_admin:consultations_question_live' is not"}}
    row = {r.key: r for r in report.rows(missing)}["queue_poll.100000"]
    assert row.figure.startswith("not available: URL") and row.passed is None


def test_the_forecast_rows_show_precision_and_recall_and_a_missing_replay_says_so():
    measured = {
        "forecasts": 10,
        "breached": 4,
        "true_positive": 3,
        "false_positive": 1,
        "false_negative": 1,
        "precision": 0.75,
        "recall": 0.75,
    }
    entry = {"seed": 14, "questions": 10, "breached": 4, "pace_minutes": 20.4}
    table = {r.key: r for r in report.rows({"forecast": {**entry, "at_arrival": measured, "next_hour_list": measured}})}
    row = table["forecast.at_arrival"]
    assert row.label == "Breach forecast at each question's arrival (seed 14, 10 questions, 4 breached)"
    assert row.figure == (
        "precision 75.0 %, recall 75.0 % over 10 forecasts (3 right, 1 false alarms, 1 missed); pace 20.4 min"
    )
    assert (row.value, row.passed) == (0.75, None)
    assert {r.key: r for r in report.rows({})}["forecast.next_hour_list"].figure == "not measured"


def test_the_forecast_replay_scores_forecasts_against_outcomes():
    from bench import forecast

    assert forecast.scores([(True, True), (True, False), (False, True), (False, False)]) == {
        "forecasts": 4,
        "breached": 2,
        "true_positive": 1,
        "false_positive": 1,
        "false_negative": 1,
        "precision": 0.5,
        "recall": 0.5,
    }
    assert forecast.scores([])["precision"] is None


def test_the_replayed_day_is_the_same_for_the_same_seed_and_uses_the_real_forecast():
    from bench import forecast

    first, again = forecast.replay(seed=3), forecast.replay(seed=3)
    assert first == again
    assert first["questions"] > 100 and 0 < first["breached"] < first["questions"]
    for kind in ("at_arrival", "next_hour_list"):
        assert 0 < first[kind]["precision"] <= 1 and 0 < first[kind]["recall"] <= 1
    assert first["at_arrival"]["forecasts"] == first["questions"]


def _page(per_second, ok_share, template_share, errors=0):
    return {
        "per_second": per_second,
        "p50_ms": 5.0,
        "p99_ms": 20.0,
        "errors": errors,
        "ratio_to_trivial": 1.2,
        "ratio_to_bare_ok": ok_share,
        "ratio_to_bare_template": template_share,
        "round_ratios_bare_ok": [ok_share],
        "round_ratios_bare_template": [template_share],
    }


def test_pages_are_judged_against_both_bare_django_baselines():
    """Issue 17: every page as a share of the bare "ok" view and of the bare 15 KB template page."""
    baseline = {"per_second": 1000.0, "p50_ms": 4.0, "p99_ms": 9.0}
    throughput = {
        "trivial": baseline,
        "bare_ok": baseline,
        "bare_template": {**baseline, "per_second": 600.0},
        "article": _page(750, 0.75, 1.25),
        "article_list": _page(650, 0.65, 1.08),  # under 70% of bare ok
        "home": _page(720, 0.72, 0.98),  # slower than the bare template page
        "my_questions": _page(360, 0.36, 0.6),  # no template target for signed-in pages
        "home_full_stack": _page(300, 0.30, 0.5),
    }
    rows = {row.key: row for row in report._bare_rows({"pages": {"throughput": throughput, "queries": {}}})}
    assert rows["bare.article"].passed is True
    assert rows["bare.article_list"].passed is False
    assert rows["bare.home"].passed is False
    assert rows["bare.my_questions"].passed is True
    assert rows["bare.home_full_stack"].passed is None
    assert "75% of bare ok" in rows["bare.article"].figure and "1.25× bare template" in rows["bare.article"].figure


def test_a_run_from_before_the_bare_baseline_says_so():
    rows = report._bare_rows({"pages": {"throughput": {"trivial": {}}, "queries": {}}})
    assert all(row.figure.startswith("not measured") and row.passed is None for row in rows)


def _asked(p50, p95, attachment=None):
    return {
        "concurrency": 20,
        "per_second": 30.0,
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p95 * 1.5,
        "successes": 400,
        "stored_questions": 400,
        "confirmation_notifications": 400,
        "errors": 0,
        "attachment": attachment,
    }


def test_ask_rows_show_text_only_and_photo_latency_next_to_the_trivial_view():
    """Issue 17: the ask POST's p50 and p95 at 20 patients, text only (target p50 < 60 ms)
    and with a photo (no target), each also as a multiple of the trivial view's p50."""
    results = {
        "pages": {"throughput": {"trivial": {"per_second": 900.0, "p50_ms": 20.0, "p99_ms": 40.0}}},
        "asking": _asked(50.0, 90.0),
        "asking_photo": _asked(400.0, 700.0, attachment="photo-2048x1536.jpg (958 KB)"),
    }
    rows = {row.key: row for row in report._asking_rows(results)}
    text, photo = rows["asking.latency"], rows["asking_photo.latency"]
    assert text.figure.startswith("p50 50.0 ms, p95 90.0 ms over 400 questions")
    assert "p50 = 2.5× the trivial view's p50" in text.figure
    assert text.passed is True and text.target == "p50 < 60 ms"
    assert "(photo-2048x1536.jpg (958 KB))" in photo.figure and "20.0× the trivial" in photo.figure
    assert photo.passed is None
    results["asking"] = _asked(254.0, 380.0)
    assert {row.key: row for row in report._asking_rows(results)}["asking.latency"].passed is False


def test_a_run_without_the_photo_variant_says_it_was_not_measured():
    rows = {row.key: row for row in report.rows({"asking": _asked(50.0, 90.0)})}
    assert rows["asking_photo.latency"].figure == "not measured"
    assert "×" not in rows["asking.latency"].figure  # no trivial view measured: no multiple


def test_a_repeated_form_reads_fresh_hidden_values_and_reparses_any_other_change():
    from bench.forms import RepeatedForm

    token = '<input type="hidden" name="submission_token" value="s1">'
    page = ASK_PAGE.replace('value="tok123">', f'value="tok123">{token}')
    reader = RepeatedForm("title")
    assert reader.find(page) == find_form(page, "title")
    later = page.replace("tok123", "tok&amp;456").replace('"s1"', '"s2"')
    assert reader.find(later) == find_form(later, "title")
    assert fill(reader.find(later), {})["submission_token"] == "s2"
    assert fill(reader.find(later), {})["csrfmiddlewaretoken"] == "tok&456"
    changed = later.replace('<option value="7">Skin</option>', '<option value="8">Eyes</option>')
    assert fill(reader.find(changed), {})["specialty"] == "8"


def _escalation(**extra):
    spread = {"p50": 1.0, "p99": 2.0, "max": 2.5}
    return {
        "questions": 500,
        "window_seconds": 18.0,
        "sweep_interval_seconds": 3,
        "latency_written_seconds": spread,
        "latency_first_email_sent_seconds": spread,
        "missed": 0,
        "duplicated": 0,
        "duplicate_notifications": 0,
        "notifications_per_second": 555.3,
        "notifications_sent": 5500,
        "notifications_created": 5500,
        "notifications_pending_at_end": 0,
        **extra,
    }


def test_the_breach_burst_rate_says_what_set_it():
    """The burst's e-mails per second follow how fast the bench submitted the questions
    (313 to 5,620/s across runs): the row shows the due times' spread and the drain lag."""
    rows = {
        row.key: row for row in report.rows({"escalation": _escalation(due_spread_seconds=9.9, drain_lag_seconds=0.41)})
    }
    figure = rows["escalation.notifications"].figure
    assert figure.startswith("555.3/s; 5500 of 5500 sent, 0 still pending; the questions fell due over 9.9 s")
    assert figure.endswith("the last e-mail went 0.41 s after the last breach was written")
    # An older run's figures, without the two, still make a row.
    older = {row.key: row for row in report.rows({"escalation": _escalation()})}
    assert older["escalation.notifications"].figure == "555.3/s; 5500 of 5500 sent, 0 still pending"


def test_an_older_checkout_with_its_own_database_gets_names_beside_the_benchs():
    from bench.ask_profile import baseline_urls

    assert baseline_urls("postgres://postgres@127.0.0.1:5432/bench", "redis://127.0.0.1:6379/12") == {
        "BENCH_DATABASE_URL": "postgres://postgres@127.0.0.1:5432/bench_baseline",
        "BENCH_REDIS_URL": "redis://127.0.0.1:6379/13",
    }
    assert baseline_urls("postgres://u@db/x", "redis://cache:6379/9")["BENCH_REDIS_URL"] == "redis://cache:6379/10"
    with pytest.raises(SystemExit, match="use 1-14"):  # never db 0, the portal's development db
        baseline_urls("postgres://u@db/x", "redis://cache:6379/15")
