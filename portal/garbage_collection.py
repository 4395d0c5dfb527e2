"""The cycle collector's pace in the portal's long-running processes: gunicorn's web
workers (portal.wsgi) and Celery's pool processes (portal.celery).

CPython frees an object the moment nothing refers to it; its cycle collector is only
for objects that refer to each other. That collector looks at the newest container
objects (dicts, lists, instances) every 700 new ones, and every so often at every
object the process holds. A web or Celery worker holds about 120,000 objects for its
whole life (Django's apps, URL patterns and templates, Celery, the modules), and each
full collection walked them all again: an SLA sweep of 1,000 breaches spent about
110 ms of its ~570 ms of Python CPU in the collector, a patient's form GET and POST
about 0.9 ms of ~17 ms (docs/benchmarks.md, "Tenth pass").

`tune()`, once a process has loaded what it keeps:
- collects once, then freezes every object alive (`gc.freeze`): they move to a
  permanent generation that no collection walks again (they are still freed by
  reference counting should they go);
- collects the newest generation every GC_GEN0_THRESHOLD (10,000) new container
  objects instead of 700: most of a request's or a sweep batch's objects are gone by
  then, so fewer of them are carried into the older generations to be walked again.
  A cycle of garbage waits a little longer to be freed: a few MB at most per process.

With both, the sweep's collector time fell to about 13 ms and the form's to 0.4-0.5 ms.
GC_GEN0_THRESHOLD=0 leaves Python's own settings alone.
"""

import gc
import logging

from django.conf import settings

logger = logging.getLogger(__name__)


def tune() -> bool:
    """Freeze what the process holds now and slow the newest generation's collections
    (GC_GEN0_THRESHOLD); False, and nothing changed, when the setting is 0."""
    threshold = settings.GC_GEN0_THRESHOLD
    if not threshold:
        return False
    gc.collect()  # the garbage of start-up is freed, not frozen with the rest
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(threshold, older, oldest)
    logger.debug("Garbage collector: %d objects frozen, thresholds %s", gc.get_freeze_count(), gc.get_threshold())
    return True
