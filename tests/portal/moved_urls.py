"""A URLconf where the legal pages live elsewhere, for tests/portal/test_url_memo.py."""

from django.http import HttpResponse
from django.urls import path


def page(request):
    return HttpResponse("moved")


urlpatterns = [path("elsewhere/terms/", page, name="terms")]
