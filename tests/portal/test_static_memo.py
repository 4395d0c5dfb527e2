"""The static storages keep each file's URL once asked, every answer still the one
Django's and WhiteNoise's storages give (portal/static_storage.py)."""

import json
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.staticfiles.storage import StaticFilesStorage as DjangoStaticFilesStorage
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.management import call_command
from django.template import Context, Template
from django.templatetags.static import static
from django.test import override_settings
from whitenoise.storage import CompressedManifestStaticFilesStorage as WhiteNoiseManifestStorage

from portal import static_storage

PATHS = ["portal/site.css", "portal/site.js", "vendor/bootstrap/bootstrap.min.css", "portal/a file&name.css"]


def storages(backend: str) -> dict:
    return {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": f"portal.static_storage.{backend}"},
    }


def render(source: str, **context) -> str:
    return Template("{% load static %}" + source).render(Context(context))


def test_the_portal_serves_static_urls_through_the_keeping_storages():
    assert isinstance(staticfiles_storage, static_storage.StaticFilesStorage)  # tests' settings
    source = (Path(django_settings.BASE_DIR) / "portal" / "settings.py").read_text()
    for backend in ("StaticFilesStorage", "CompressedManifestStaticFilesStorage"):  # development, production
        assert f'"portal.static_storage.{backend}"' in source
        assert issubclass(getattr(static_storage, backend), static_storage.KeptURLsMixin)


def test_every_answer_is_the_plain_storages(settings):
    django_storage = DjangoStaticFilesStorage()
    for path in PATHS:
        expected = django_storage.url(path)
        assert static(path) == expected
        assert staticfiles_storage.kept_urls[(path, settings.DEBUG)] == expected
        assert render("{% static path %}", path=path) == expected
    assert render("{% static 'portal/site.js' as link %}[{{ link }}]") == "[/static/portal/site.js]"


def test_the_storage_works_each_path_out_once(monkeypatch):
    asked = []
    original = DjangoStaticFilesStorage.url

    def counting(self, name):
        asked.append(name)
        return original(self, name)

    monkeypatch.setattr(DjangoStaticFilesStorage, "url", counting)
    with override_settings(STORAGES=storages("StaticFilesStorage")):  # a new storage, nothing kept yet
        template = Template("{% load static %}{% static 'portal/site.css' %} {% static 'portal/site.js' %}")
        for _ in range(3):
            assert template.render(Context()) == "/static/portal/site.css /static/portal/site.js"
        assert asked == ["portal/site.css", "portal/site.js"]


@pytest.fixture
def manifest_root(tmp_path):
    (tmp_path / "staticfiles.json").write_text(
        json.dumps({"version": "1.1", "hash": "x", "paths": {"portal/site.css": "portal/site.0123456789ab.css"}})
    )
    return tmp_path


def test_manifest_names_debug_and_settings_changes_are_honoured(manifest_root):
    plain = static("portal/site.css")
    assert plain == "/static/portal/site.css"
    manifest = storages("CompressedManifestStaticFilesStorage")
    with override_settings(STORAGES=manifest, STATIC_ROOT=manifest_root, DEBUG=False):
        assert isinstance(staticfiles_storage, static_storage.CompressedManifestStaticFilesStorage)
        assert static("portal/site.css") == "/static/portal/site.0123456789ab.css"
        assert static("portal/site.css") == WhiteNoiseManifestStorage().url("portal/site.css")
        with override_settings(DEBUG=True):  # the manifest storage's unhashed names, unless forced
            assert static("portal/site.css") == "/static/portal/site.css"
            assert staticfiles_storage.url("portal/site.css", force=True) == "/static/portal/site.0123456789ab.css"
        assert static("portal/site.css") == "/static/portal/site.0123456789ab.css"
        with override_settings(STATIC_URL="/assets/"):
            assert static("portal/site.css") == "/assets/portal/site.0123456789ab.css"
        # A name missing from the manifest fails as WhiteNoise's storage fails, and is not kept.
        with pytest.raises(ValueError, match="Missing staticfiles manifest entry"):
            static("portal/missing.css")
        assert not any(name == "portal/missing.css" for name, _ in staticfiles_storage.kept_urls)
    assert static("portal/site.css") == plain


def test_collectstatic_starts_the_kept_answers_over(tmp_path):
    root = tmp_path / "static"
    root.mkdir()
    stale = {"vendor/bootstrap/bootstrap.min.css": "vendor/bootstrap/bootstrap.min.000000000000.css"}
    (root / "staticfiles.json").write_text(json.dumps({"version": "1.1", "hash": "x", "paths": stale}))
    with override_settings(STORAGES=storages("CompressedManifestStaticFilesStorage"), STATIC_ROOT=root, DEBUG=False):
        assert static("vendor/bootstrap/bootstrap.min.css") == "/static/vendor/bootstrap/bootstrap.min.000000000000.css"
        call_command("collectstatic", interactive=False, verbosity=0)  # the same storage writes a new manifest
        hashed = static("vendor/bootstrap/bootstrap.min.css")
    assert hashed != "/static/vendor/bootstrap/bootstrap.min.000000000000.css"
    assert (root / hashed.removeprefix("/static/")).exists()


def test_a_full_memo_starts_over(monkeypatch, settings):
    monkeypatch.setattr(static_storage, "MAX_KEPT_URLS", 2)
    with override_settings(STORAGES=storages("StaticFilesStorage")):
        for path in ("a.css", "b.css", "c.css"):
            assert static(path) == f"/static/{path}"
        assert list(staticfiles_storage.kept_urls) == [("c.css", settings.DEBUG)]
