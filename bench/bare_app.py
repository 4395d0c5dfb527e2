"""The bare-Django baseline: one file, its own settings, no database.

Served by its own gunicorn with the same arguments as the portal's (see
bench/processes.py), it gives the framework's ceiling on this machine in the
same run: `/ok/` returns "ok", `/page/` renders a template of about 15 KB
(a heading, a navigation list and paragraphs from a loop, auto-escaped
variables, the way a content page is built). Only Security, Common and
Clickjacking middleware run, with the portal's security header settings, so
the difference to a portal page is what the portal's own stack and work cost.

Run alone: `gunicorn bench.bare_app` (no environment needed).
"""

from pathlib import Path

from django.conf import settings

HERE = Path(__file__).resolve().parent
PARAGRAPHS = 34

settings.configure(
    DEBUG=False,
    SECRET_KEY="bench-bare-app-not-secret",  # noqa: S106 - serves two fixed pages, signs nothing
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    ],
    INSTALLED_APPS=[],
    DATABASES={},
    TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": [HERE / "bare_templates"]}],
    SECURE_CONTENT_TYPE_NOSNIFF=True,
    SECURE_REFERRER_POLICY="same-origin",
    SECURE_CROSS_ORIGIN_OPENER_POLICY="same-origin",
    X_FRAME_OPTIONS="DENY",
    USE_TZ=True,
    LOGGING_CONFIG=None,
)

import django  # noqa: E402 - settings first

django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.shortcuts import render  # noqa: E402
from django.urls import path  # noqa: E402


def ok(request):
    return HttpResponse(b"ok", content_type="text/plain")


def page(request):
    context = {
        "title": "How to tell a cold from the flu & when to see a doctor",
        "sections": [f"Section {n}" for n in range(1, 9)],
        "paragraphs": [
            {
                "heading": f"Part {n}: what <matters> most",
                "text": "Most colds clear up within a week or ten days; rest, fluids and patience help. "
                "See a doctor when a fever lasts more than three days, breathing is hard, or symptoms "
                f"come back worse after getting better (note {n}).",
            }
            for n in range(PARAGRAPHS)
        ],
    }
    return render(request, "page.html", context)


urlpatterns = [path("ok/", ok), path("page/", page)]
application = get_wsgi_application()
