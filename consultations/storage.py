"""Where patients' attachments are kept: the `private` entry of STORAGES.

By default a folder on this machine (PRIVATE_MEDIA_ROOT); with
PRIVATE_STORAGE_BACKEND=s3, an S3-compatible bucket through django-storages, so
web servers and workers on different hosts read and write the same files.
Code reaches the files only through `Attachment.file` (a Django storage),
never through a path.
"""

from django.conf import settings
from django.core.files.storage import FileSystemStorage, storages
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.functional import LazyObject, cached_property, empty

PRIVATE_STORAGE_ALIAS = "private"


class PrivateStorage(FileSystemStorage):
    """Attachments on this machine: under PRIVATE_MEDIA_ROOT, outside the public media
    folder, and never given a URL: only the access-checked view serves them.

    Files are 0600 and folders 0700 whatever the process umask (Django's
    FILE_UPLOAD_PERMISSIONS default, 0644, suits the public media only): no
    other account on the server, nginx included, can read a patient's file.
    STORAGES["private"]["OPTIONS"] may set other modes if a deployment needs them.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("base_url", None)
        kwargs.setdefault("file_permissions_mode", 0o600)
        kwargs.setdefault("directory_permissions_mode", 0o700)
        super().__init__(**kwargs)

    @cached_property
    def base_location(self):
        return self._value_or_setting(self._location, settings.PRIVATE_MEDIA_ROOT)

    def _clear_cached_properties(self, setting, **kwargs):
        super()._clear_cached_properties(setting, **kwargs)
        if setting == "PRIVATE_MEDIA_ROOT":
            self.__dict__.pop("base_location", None)
            self.__dict__.pop("location", None)

    def url(self, name):
        raise NotImplementedError("Attachments are served only by the access-checked view.")


class ConfiguredPrivateStorage(LazyObject):
    """STORAGES["private"], looked up when first used and again after STORAGES changes."""

    def _setup(self):
        self._wrapped = storages[PRIVATE_STORAGE_ALIAS]


configured_private_storage = ConfiguredPrivateStorage()


def private_storage():
    """The attachments' storage (a callable, so migrations record no backend)."""
    return configured_private_storage


@receiver(setting_changed)
def _reset_private_storage(*, setting, **kwargs):
    if setting == "STORAGES":
        configured_private_storage._wrapped = empty
