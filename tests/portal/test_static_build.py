"""The production static build: every file collects through the manifest storage.

With PRODUCTION=true the static files go through WhiteNoise's
CompressedManifestStaticFilesStorage, which rewrites every url() and
sourceMappingURL in CSS and JS and fails the whole build on one that points at a
file that is not shipped. Without a manifest every page answers 500, so the
build is pinned here on every run (issue 12).
"""

import json

from django.core.management import call_command
from django.templatetags.static import static
from django.test import override_settings

MANIFEST_STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "portal.static_storage.CompressedManifestStaticFilesStorage"},
}


def test_collectstatic_with_the_manifest_storage_succeeds_and_hashes_the_vendored_files(tmp_path):
    with override_settings(STATIC_ROOT=tmp_path / "static", STORAGES=MANIFEST_STORAGES):
        call_command("collectstatic", interactive=False, verbosity=0)
        manifest = json.loads((tmp_path / "static" / "staticfiles.json").read_text())
        assert "vendor/bootstrap/bootstrap.min.css" in manifest["paths"]
        assert "vendor/bootstrap/bootstrap.bundle.min.js" in manifest["paths"]
        hashed = static("vendor/bootstrap/bootstrap.min.css")
    assert hashed != "/static/vendor/bootstrap/bootstrap.min.css"
    assert (tmp_path / "static" / hashed.removeprefix("/static/")).exists()
