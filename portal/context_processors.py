from django.conf import settings
from django.urls import reverse
from django.utils import formats
from django.utils.functional import SimpleLazyObject

from consultations.access import work_links


def portal(request):
    """Values every page shows: the guarantee window, the site name, and the header's
    links to a doctor's or staff member's tools (looked up only when a page shows them).
    The hours come as text, localized here once: as a number every `{{ SLA_ANSWER_HOURS }}`
    of a page (three on the ask form) ran Django's number formatting again."""
    hours = settings.SLA_ANSWER_HOURS
    user = getattr(request, "user", None)
    return {
        "SITE_NAME": "Ask a Doctor",
        "SLA_ANSWER_HOURS": formats.localize(int(hours) if float(hours).is_integer() else hours),
        "WORK_LINKS": SimpleLazyObject(
            lambda: [(label, reverse(name)) for label, name in work_links(user)] if user is not None else []
        ),
    }
