from django.conf import settings
from django.urls import reverse
from django.utils.functional import SimpleLazyObject

from consultations.access import work_links


def portal(request):
    """Values every page shows: the guarantee window, the site name, and the header's
    links to a doctor's or staff member's tools (looked up only when a page shows them)."""
    hours = settings.SLA_ANSWER_HOURS
    user = getattr(request, "user", None)
    return {
        "SITE_NAME": "Ask a Doctor",
        "SLA_ANSWER_HOURS": int(hours) if float(hours).is_integer() else hours,
        "WORK_LINKS": SimpleLazyObject(
            lambda: [(label, reverse(name)) for label, name in work_links(user)] if user is not None else []
        ),
    }
