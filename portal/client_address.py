"""The client's IP address, as login protection, rate limits and both access logs
(the Access log rows and gunicorn's request log, deploy/gunicorn.conf.py) record it.

Behind TRUSTED_PROXY_COUNT reverse proxies, each proxy appends the address it
saw to X-Forwarded-For, so the client is the entry that many places from the
right; anything further left was written by the client and can be forged.
"""

import ipaddress

from django.conf import settings


def client_ip(request) -> str:
    return client_address(request.META)


def client_address(environ) -> str:
    """The client's address from a WSGI environ (a Django request's META is one)."""
    remote = environ.get("REMOTE_ADDR", "")
    hops = settings.TRUSTED_PROXY_COUNT
    if hops <= 0:
        return remote
    forwarded = [part.strip() for part in environ.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if len(forwarded) < hops:
        return remote  # not through all our proxies: only the direct peer is known
    candidate = forwarded[-hops]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote
