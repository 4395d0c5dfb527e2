"""A writable copy of a demo content folder, for tests that break a data file on purpose."""

import shutil
from pathlib import Path


def content_copy(tmp_path: Path, monkeypatch, module, *caches):
    """Copy `module.CONTENT_DIR` under tmp_path, point the module at the copy and empty its
    loaders' caches; yield the copy, then empty the caches again (monkeypatch restores the path)."""
    copy = tmp_path / "demo_content"
    shutil.copytree(module.CONTENT_DIR, copy)
    monkeypatch.setattr(module, "CONTENT_DIR", copy)
    for cached in caches:
        cached.cache_clear()
    yield copy
    for cached in caches:
        cached.cache_clear()
