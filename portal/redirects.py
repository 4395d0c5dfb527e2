"""The one rule for following a `next` address: only to this site, with the scheme
the request came in on. Every view that redirects to a `next` asks here, and every
link that carries one builds it with `with_next`, so the target survives intact."""

from django.utils.http import url_has_allowed_host_and_scheme, urlencode


def safe_next(request, candidate: str | None = None, default: str = "") -> str:
    """`candidate` (else `next` from the form, else from the query string) when it
    points at this site, else `default`."""
    if candidate is None:
        candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default


def with_next(url: str, next_url: str) -> str:
    """`url` with `next_url` as its encoded `next` parameter (its own query string kept whole)."""
    return f"{url}?{urlencode({'next': next_url})}" if next_url else url
