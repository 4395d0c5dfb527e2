"""Settings for the benchmark: the portal's own settings, plus a baseline view.

`python -m bench.run` points DATABASE_URL, REDIS_URL and CACHE_KEY_PREFIX at
the bench's own PostgreSQL database and Redis db before this module is read;
everything else is the portal's production-shaped configuration.
"""

from portal.settings import *  # noqa: F403
from portal.settings import LOGGING

ROOT_URLCONF = "bench.urls"
# Measured as in production: no debug toolbar, no SQL logging, no tracebacks.
DEBUG = False

# The load test and the asking benchmark submit many questions per patient;
# the per-patient hourly limit would turn most of them into friendly 429
# pages. The limiter still runs (its cache round trip is part of what is
# measured); only its ceiling is out of reach.
if "RATE_LIMITS" in globals():
    RATE_LIMITS = {**RATE_LIMITS, "ask": (1_000_000_000, 3600)}  # noqa: F405

# The one-time code step is a login-time cost, not a page cost; sessions are
# created directly by the bench for doctors and staff.
REQUIRE_2FA = False

# Quiet web and worker processes: their logs are not part of the measurement.
LOGGING = {**LOGGING, "root": {**LOGGING["root"], "level": "WARNING"}}
