"""STORAGES["private"] from the environment: where patients' attachments are kept.

- PRIVATE_STORAGE_BACKEND=filesystem (default): a folder, PRIVATE_MEDIA_ROOT. Every
  process that handles attachments (web servers; workers do not) must see the same
  folder: one machine, or a shared volume mounted on each web host.
- PRIVATE_STORAGE_BACKEND=s3: an S3-compatible bucket through django-storages
  (AWS S3, MinIO, Ceph, Garage...), shared by every host without a shared disk.

Imported while settings load: reads the environment only.
"""

from django.core.exceptions import ImproperlyConfigured

from portal.env import env_str

# Attachments are readable by the portal's own user only (FILE_UPLOAD_PERMISSIONS-style).
FILE_PERMISSIONS = 0o600
DIRECTORY_PERMISSIONS = 0o700

S3_ADDRESSING_STYLES = ("auto", "path", "virtual")


def private_storage_settings() -> dict:
    backend = env_str("PRIVATE_STORAGE_BACKEND", "filesystem").strip().lower()
    if backend == "filesystem":
        return {
            # The folder is PRIVATE_MEDIA_ROOT, read when used (tests point it elsewhere).
            "BACKEND": "consultations.storage.PrivateStorage",
            "OPTIONS": {"file_permissions_mode": FILE_PERMISSIONS, "directory_permissions_mode": DIRECTORY_PERMISSIONS},
        }
    if backend == "s3":
        return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": s3_options()}
    raise ImproperlyConfigured(f"PRIVATE_STORAGE_BACKEND must be filesystem or s3, not {backend!r}")


def s3_options() -> dict:
    bucket = env_str("PRIVATE_S3_BUCKET").strip()
    if not bucket:
        raise ImproperlyConfigured("PRIVATE_S3_BUCKET must be set when PRIVATE_STORAGE_BACKEND=s3")
    addressing_style = env_str("PRIVATE_S3_ADDRESSING_STYLE", "auto").strip().lower()
    if addressing_style not in S3_ADDRESSING_STYLES:
        raise ImproperlyConfigured(
            f"PRIVATE_S3_ADDRESSING_STYLE must be one of {', '.join(S3_ADDRESSING_STYLES)}, not {addressing_style!r}"
        )
    options = {
        "bucket_name": bucket,
        # Under this prefix in the bucket; the names below it are random.
        "location": env_str("PRIVATE_S3_PREFIX", "private").strip("/"),
        # Empty: AWS itself, the region's endpoint.
        "endpoint_url": env_str("PRIVATE_S3_ENDPOINT_URL").strip() or None,
        "region_name": env_str("PRIVATE_S3_REGION").strip() or None,
        # Empty: boto3's own chain (AWS_ACCESS_KEY_ID..., an instance or pod role).
        "access_key": env_str("PRIVATE_S3_ACCESS_KEY_ID").strip() or None,
        "secret_key": env_str("PRIVATE_S3_SECRET_ACCESS_KEY").strip() or None,
        "addressing_style": None if addressing_style == "auto" else addressing_style,
        # No ACL header: objects stay as private as the bucket (keep public access blocked).
        "default_acl": None,
        # The access-checked view streams the files; were a URL ever asked for, it is signed and expires.
        "querystring_auth": True,
        # Never replace an existing object; a clash gets a new name.
        "file_overwrite": False,
    }
    return options
