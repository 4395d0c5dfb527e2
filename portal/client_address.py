"""The client's IP address, as login protection and rate limits count it.

Behind TRUSTED_PROXY_COUNT reverse proxies, each proxy appends the address it
saw to X-Forwarded-For, so the client is the entry that many places from the
right; anything further left was written by the client and can be forged.
"""

import ipaddress

from django.conf import settings


def client_ip(request) -> str:
    remote = request.META.get("REMOTE_ADDR", "")
    hops = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if hops <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if len(forwarded) < hops:
        return remote  # not through all our proxies: only the direct peer is known
    candidate = forwarded[-hops]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote
