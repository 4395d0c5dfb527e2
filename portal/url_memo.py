"""reverse() of a URL name without arguments, worked out once per process.

reverse() walks the URL resolver on every call: about 25 us of CPU per link. The
base layout alone shows nine such links (home, the nav, the legal pages) on every
page, and the ask form's consent label three more, so a form page spent about a
third of a millisecond reversing names whose answer never changes while the
process runs. `reverse_plain` keeps each answer, keyed by everything reverse()
reads besides the name: the URLconf's resolver (a new one after
`clear_url_caches()`, as tests' settings overrides make), the script prefix, the
current app (the admin sites' namespaces) and the language.

Names with arguments are not kept (a question's link has a different id each
time; consultations/links.py covers the many-ids case).
"""

from django.urls import get_resolver, get_script_prefix, get_urlconf, reverse
from django.utils.translation import get_language

# A few hundred names x prefixes at most; should anything grow it past this, start over.
MAX_ENTRIES = 4000
_kept: dict[tuple, str] = {}


def resolving_key() -> tuple:
    """What reverse() reads besides the name and its arguments: the URLconf's resolver,
    the script prefix and the language. An answer kept under it stays right."""
    return (
        get_resolver(get_urlconf()),  # None: settings.ROOT_URLCONF's
        get_script_prefix(),
        get_language(),
    )


def reverse_plain(viewname: str, current_app: str | None = None) -> str:
    """`reverse(viewname, current_app=current_app)`, computed once per process and key."""
    key = (viewname, current_app, *resolving_key())
    try:
        return _kept[key]
    except KeyError:
        url = reverse(viewname, current_app=current_app)  # NoReverseMatch is not kept
        if len(_kept) >= MAX_ENTRIES:
            _kept.clear()
        _kept[key] = url
        return url
