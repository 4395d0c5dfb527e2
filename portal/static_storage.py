"""The static files' storages, with each file's URL worked out once per storage.

A static file's URL never changes while a process runs: the manifest (production's
hashed names) is read when the storage is made, and the URL prefix is fixed then too.
Yet Django asks the storage again on every `{% static %}`: 30 us of CPU with the plain
storage and 42 us with the manifest one, and every page shows five to seven of them
(the layout's styles, scripts and icon). These storages keep each answer, keyed by
the path and `DEBUG` (under which the manifest storage gives unhashed names).

Nothing else changes: a name missing from the manifest raises as before and is not
kept (with WHITENOISE_MANIFEST_STRICT off, which the portal never sets, the first
answer for such a name would be kept); `url(name, force=True)` always asks; and
collectstatic (which rewrites the manifest in this very storage) starts the kept
answers over. Tests' settings overrides make a new storage, so a new set of answers.
"""

from django.conf import settings
from django.contrib.staticfiles.storage import StaticFilesStorage as DjangoStaticFilesStorage
from whitenoise.storage import CompressedManifestStaticFilesStorage as WhiteNoiseManifestStorage

# Every static file's path at most; should anything grow it past this, start over.
MAX_KEPT_URLS = 4000


class KeptURLsMixin:
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.kept_urls: dict[tuple[str, bool], str] = {}

    def url(self, name, *args, **kwargs):
        if args or kwargs:  # the manifest storage's force=True: asked every time
            return super().url(name, *args, **kwargs)
        key = (name, settings.DEBUG)
        try:
            return self.kept_urls[key]
        except KeyError:
            url = super().url(name)
            if len(self.kept_urls) >= MAX_KEPT_URLS:
                self.kept_urls.clear()
            self.kept_urls[key] = url
            return url


class StaticFilesStorage(KeptURLsMixin, DjangoStaticFilesStorage):
    """Development and tests: files under their own names."""


class CompressedManifestStaticFilesStorage(KeptURLsMixin, WhiteNoiseManifestStorage):
    """Production: WhiteNoise's hashed, compressed files."""

    def post_process(self, *args, **kwargs):
        self.kept_urls.clear()
        try:
            yield from super().post_process(*args, **kwargs)
        finally:
            self.kept_urls.clear()
