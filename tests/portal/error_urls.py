"""The portal's URLs plus views that fail, for the error page tests."""

from django.db import InterfaceError, OperationalError
from django.urls import path

from portal.urls import handler500
from portal.urls import urlpatterns as portal_urlpatterns

SECRET_DETAIL = "postgres://portal:hunter2@db.internal:5432/portal"


def database_gone(request):
    raise OperationalError(f"could not connect to server {SECRET_DETAIL}")


def connection_closed(request):
    raise InterfaceError("connection already closed")


def bug(request):
    raise ValueError(f"unexpected value near {SECRET_DETAIL}")


urlpatterns = [
    path("fail/database/", database_gone),
    path("fail/closed/", connection_closed),
    path("fail/bug/", bug),
    *portal_urlpatterns,
]

__all__ = ["handler500", "urlpatterns"]
