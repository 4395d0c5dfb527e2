"""One process's memory of the shared cache (Redis) failing, for the cache's users on the
way of a signed-in request: the session and user copies (portal.sessions,
portal.user_copy), the duty roster (consultations.cover_cache) and the rate limits
(portal.ratelimit).

Each of them falls back when the cache fails (the database, or no limit). Against a
Redis that hangs rather than refuses, every try costs REDIS_TIMEOUT_SECONDS, so after a
failure all of them skip the cache for Outage.RETRY_AFTER_SECONDS: a page pays one
timeout, not one per use (an ask POST made five, and took over 3 s). Writes that must not
go unseen (marking a changed user's copy, deleting a signed-out session's copy) still try
and fail loudly.
"""

import logging

from articles.cache import Outage

outage = Outage("Redis (the shared cache)", logging.getLogger(__name__))
