"""Benchmarks run by `make bench` (and the load test run by `make loadtest`).

Nothing here is imported by the portal itself: the bench has its own settings
module (bench.settings) and URLconf (bench.urls) that add a trivial baseline
view next to the real site.
"""
