"""The portal's URLconf plus a trivial view: the framework's ceiling on this machine.

The baseline goes through the same gunicorn, middleware stack and settings as
the real pages, so page throughput divided by its throughput says how much of
the framework's capacity a page leaves.
"""

from django.http import HttpResponse
from django.urls import path

from portal.urls import urlpatterns as portal_urlpatterns


def trivial(request):
    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns = [path("bench/trivial/", trivial, name="bench_trivial"), *portal_urlpatterns]
