from django.conf import settings


def portal(request):
    """Values every page shows: the guarantee window and the site name."""
    hours = settings.SLA_ANSWER_HOURS
    return {
        "SITE_NAME": "Ask a Doctor",
        "SLA_ANSWER_HOURS": int(hours) if float(hours).is_integer() else hours,
    }
