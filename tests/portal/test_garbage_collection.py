"""portal.garbage_collection: a web or Celery worker freezes what it holds once loaded and
collects its newest objects less often; cycles made later are still collected."""

import gc
import importlib
import os
import subprocess
import sys
import weakref

import pytest
from celery.signals import worker_process_init

from portal import garbage_collection


class Node:
    """An object in a reference cycle: only the cycle collector frees it."""

    def __init__(self):
        self.me = self


@pytest.fixture
def collector():
    """The test process's collector, put back as it was afterwards."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def cycle_garbage() -> weakref.ref:
    """A reference cycle nobody else refers to; the weak reference says when it is freed."""
    return weakref.ref(Node())


def test_tune_freezes_what_the_process_holds_and_collects_the_newest_generation_less_often(collector, settings):
    settings.GC_GEN0_THRESHOLD = 10_000
    _, older, oldest = gc.get_threshold()
    kept = Node()
    garbage_before = cycle_garbage()

    assert garbage_collection.tune()

    assert garbage_before() is None  # freed by the collection before the freeze, not frozen
    assert gc.get_freeze_count() > 1_000
    assert gc.get_threshold() == (10_000, older, oldest)
    assert kept.me is kept


def test_cycles_made_after_tuning_are_still_collected(collector, settings):
    settings.GC_GEN0_THRESHOLD = 10_000
    garbage_collection.tune()

    garbage_after = cycle_garbage()
    assert garbage_after() is not None
    gc.collect()
    assert garbage_after() is None


def test_a_threshold_of_0_leaves_pythons_own_settings(collector, settings):
    settings.GC_GEN0_THRESHOLD = 0
    thresholds, frozen = gc.get_threshold(), gc.get_freeze_count()

    assert garbage_collection.tune() is False

    assert (gc.get_threshold(), gc.get_freeze_count()) == (thresholds, frozen)


def test_each_celery_pool_process_tunes_its_collector_when_it_starts(monkeypatch):
    calls = []
    monkeypatch.setattr(garbage_collection, "tune", lambda: calls.append("tuned"))

    worker_process_init.send(sender=None)

    assert calls == ["tuned"]


def test_each_web_worker_tunes_its_collector_once_the_application_is_loaded(collector, monkeypatch):
    calls = []
    monkeypatch.setattr(garbage_collection, "tune", lambda: calls.append("tuned"))
    # Imported afresh (and forgotten afterwards), so the test process itself is never tuned.
    monkeypatch.delitem(sys.modules, "portal.wsgi", raising=False)

    wsgi = importlib.import_module("portal.wsgi")

    assert calls == ["tuned"]
    assert callable(wsgi.application)


@pytest.mark.parametrize("value", ["-1", str(2**31)])
def test_a_threshold_python_cannot_take_stops_start_up(value):
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings", "GC_GEN0_THRESHOLD": value},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "GC_GEN0_THRESHOLD must be 0" in result.stderr
