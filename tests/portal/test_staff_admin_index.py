"""The staff admin's front page groups models by task, with the technical records under
one "System" section, and the admin writes dates as the rest of the product does
(issue 15, "Doctors and staff")."""

import re
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import formats

from consultations.models import SweepRun
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def sections(html: str) -> dict[str, list[str]]:
    """{section caption: [model names]} of the admin index."""
    found = {}
    for block in re.findall(r"<caption>(.*?)</table>", html, re.S):
        caption = re.sub(r"<[^>]+>", "", block.split("</caption>")[0]).strip()
        found[caption] = [
            re.sub(r"<[^>]+>", "", name).strip() for name in re.findall(r'<th scope="row"[^>]*>(.*?)</th>', block, re.S)
        ]
    return found


def test_internals_are_grouped_under_system_last(client, staff):
    client.force_login(staff)
    index = sections(client.get(reverse("admin:index")).content.decode())
    assert list(index) == [
        "Questions and the guarantee",
        "Doctors and specialties",
        "Articles and newsletter",
        "Users and permissions",
        "System (technical records)",
    ]
    assert index["System (technical records)"] == [
        "E-mail outbox",
        "SLA sweep runs",
        "Login lockouts",
        "Sign-in log",
        "Failed sign-ins",
        "Authenticator apps (two-factor)",
        "Article view counters",
    ]
    assert index["Questions and the guarantee"][0] == "Questions"
    # Each model once: the two "access logs" now have names that say which is which.
    names = [name for models in index.values() for name in models]
    assert len(names) == len(set(names)) and "Access logs" not in names


def test_staff_see_only_sections_they_have_something_in(client):
    editor = UserFactory(email="editor@example.com", is_staff=True)
    editor.user_permissions.add(*Permission.objects.filter(codename__in=["view_article", "view_tag"]))
    client.force_login(editor)
    assert sections(client.get(reverse("admin:index")).content.decode()) == {
        "Articles and newsletter": ["Articles", "Tags"]
    }


def test_an_app_page_keeps_djangos_own_list(client, staff):
    client.force_login(staff)
    page = client.get(reverse("admin:app_list", args=["axes"])).content.decode()
    assert "System (technical records)" not in page and "Access attempts" in page


def test_admin_dates_read_like_the_rest_of_the_product(client, staff):
    SweepRun.objects.create(started_at=datetime(2026, 12, 2, 0, 55, tzinfo=UTC), host="web-1")
    client.force_login(staff)
    html = client.get(reverse("admin:consultations_sweeprun_changelist")).content.decode()
    assert "2 Dec 2026, 00:55" in html
    assert formats.date_format(datetime(2026, 12, 2, 0, 55), "DATETIME_FORMAT") == "2 Dec 2026, 00:55"
