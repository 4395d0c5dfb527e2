"""Issue 12: private attachments do not assume one host. They are stored and read only
through STORAGES["private"]: a folder by default (files 0600, folders 0700), or an
S3-compatible bucket through django-storages, tried here against moto's S3 server."""

import stat
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from consultations.models import Attachment
from consultations.storage import PrivateStorage
from portal.private_media import private_storage_settings
from tests.factories import QuestionFactory
from tests.portal.sample_files import pdf_bytes, png_bytes

BASE_DIR = Path(__file__).resolve().parents[2]
BUCKET = "portal-private-test"
S3_KEYS = {"PRIVATE_S3_ACCESS_KEY_ID": "testing-key", "PRIVATE_S3_SECRET_ACCESS_KEY": "testing-secret"}


@pytest.fixture
def ask_data(specialty):
    return {
        "specialty": str(specialty.pk),
        "title": "Rash after a new soap",
        "description": "Red itchy patches on both hands since Monday.",
        "age": "41",
        "sex": "female",
        "consent": "on",
    }


def ask_with_files(client, patient, ask_data, *files):
    client.force_login(patient)
    response = client.post(reverse("consultations:ask"), {**ask_data, "attachments": list(files)})
    assert response.status_code == 302, response.content.decode()[:2000]


def download(client, user, attachment) -> tuple[int, bytes]:
    client.force_login(user)
    response = client.get(reverse("consultations:attachment", args=[attachment.pk]))
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return response.status_code, content


def set_env(monkeypatch, **values):
    for name in ("PRIVATE_STORAGE_BACKEND", "PRIVATE_S3_BUCKET", "PRIVATE_S3_ENDPOINT_URL", "PRIVATE_S3_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


# --- The default: a folder ----------------------------------------------------------------------


def test_the_default_is_a_private_folder_with_owner_only_permissions(monkeypatch):
    set_env(monkeypatch)

    assert private_storage_settings() == {
        "BACKEND": "consultations.storage.PrivateStorage",
        "OPTIONS": {"file_permissions_mode": 0o600, "directory_permissions_mode": 0o700},
    }


@pytest.mark.django_db
def test_an_uploaded_attachment_is_stored_owner_only(client, patient, ask_data, settings):
    ask_with_files(client, patient, ask_data, SimpleUploadedFile("rash.png", png_bytes(), "image/png"))

    stored = Path(Attachment.objects.get().file.path)
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    private = Path(settings.PRIVATE_MEDIA_ROOT)
    for folder in stored.parents:
        if folder == private:
            break
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


@pytest.mark.django_db
def test_attachments_follow_whatever_storages_private_names(client, patient, ask_data, settings, tmp_path):
    """No code assumes the folder: another storage in STORAGES["private"] gets the files."""
    elsewhere = tmp_path / "elsewhere"
    settings.STORAGES = {
        **settings.STORAGES,
        "private": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": elsewhere}},
    }

    ask_with_files(client, patient, ask_data, SimpleUploadedFile("letter.pdf", pdf_bytes(), "application/pdf"))

    attachment = Attachment.objects.get()
    assert isinstance(attachment.file.storage._wrapped, FileSystemStorage)
    assert not isinstance(attachment.file.storage._wrapped, PrivateStorage)
    assert (elsewhere / attachment.file.name).read_bytes() == pdf_bytes()
    assert not Path(settings.PRIVATE_MEDIA_ROOT).exists()
    assert download(client, patient, attachment) == (200, pdf_bytes())


# --- S3-compatible storage: the settings ----------------------------------------------------------


def test_s3_settings_from_the_environment(monkeypatch):
    set_env(
        monkeypatch,
        PRIVATE_STORAGE_BACKEND="s3",
        PRIVATE_S3_BUCKET="clinic-attachments",
        PRIVATE_S3_ENDPOINT_URL="https://s3.example.net",
        PRIVATE_S3_REGION="eu-central-1",
        PRIVATE_S3_ADDRESSING_STYLE="path",
        **S3_KEYS,
    )

    config = private_storage_settings()

    assert config["BACKEND"] == "storages.backends.s3.S3Storage"
    assert config["OPTIONS"] == {
        "bucket_name": "clinic-attachments",
        "location": "private",
        "endpoint_url": "https://s3.example.net",
        "region_name": "eu-central-1",
        "access_key": "testing-key",
        "secret_key": "testing-secret",
        "addressing_style": "path",
        "default_acl": None,
        "querystring_auth": True,
        "file_overwrite": False,
    }


def test_s3_without_a_bucket_is_refused(monkeypatch):
    set_env(monkeypatch, PRIVATE_STORAGE_BACKEND="s3")

    with pytest.raises(ImproperlyConfigured, match="PRIVATE_S3_BUCKET"):
        private_storage_settings()


def test_an_unknown_backend_is_refused(monkeypatch):
    set_env(monkeypatch, PRIVATE_STORAGE_BACKEND="nfs")

    with pytest.raises(ImproperlyConfigured, match="PRIVATE_STORAGE_BACKEND"):
        private_storage_settings()


def test_start_up_stops_when_the_s3_bucket_is_missing(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "VAR_DIR": str(tmp_path), "PRIVATE_STORAGE_BACKEND": "s3", "PYTHONPATH": "."}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode != 0
    assert "PRIVATE_S3_BUCKET must be set" in result.stderr


# --- S3-compatible storage: against a real S3 server (moto's, on loopback) -----------------------


@pytest.fixture(scope="module")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=S3_KEYS["PRIVATE_S3_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_KEYS["PRIVATE_S3_SECRET_ACCESS_KEY"],
    ).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture
def s3_private_storage(s3_endpoint, settings, monkeypatch):
    """STORAGES["private"] exactly as PRIVATE_STORAGE_BACKEND=s3 builds it."""
    set_env(
        monkeypatch,
        PRIVATE_STORAGE_BACKEND="s3",
        PRIVATE_S3_BUCKET=BUCKET,
        PRIVATE_S3_ENDPOINT_URL=s3_endpoint,
        PRIVATE_S3_REGION="us-east-1",
        PRIVATE_S3_PREFIX="clinic/private",
        **S3_KEYS,
    )
    settings.STORAGES = {**settings.STORAGES, "private": private_storage_settings()}
    return boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=S3_KEYS["PRIVATE_S3_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_KEYS["PRIVATE_S3_SECRET_ACCESS_KEY"],
    )


@pytest.mark.django_db
def test_an_attachment_goes_to_the_bucket_and_comes_back_through_the_view(
    client, patient, doctor, ask_data, settings, s3_private_storage
):
    ask_with_files(client, patient, ask_data, SimpleUploadedFile("letter.pdf", pdf_bytes(), "application/pdf"))

    attachment = Attachment.objects.get()
    key = f"clinic/private/{attachment.file.name}"
    stored = s3_private_storage.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert stored == pdf_bytes()
    # Nothing on this machine's disk: another host reads the same object.
    assert not Path(settings.PRIVATE_MEDIA_ROOT).exists()
    assert download(client, patient, attachment) == (200, pdf_bytes())
    assert download(client, doctor.user, attachment) == (200, pdf_bytes())


@pytest.mark.django_db
def test_objects_in_the_bucket_are_not_public(patient, specialty, s3_private_storage):
    attachment = Attachment.objects.create(
        question=QuestionFactory(patient=patient, specialty=specialty),
        file=ContentFile(png_bytes(), name="ignored"),
        original_name="rash.png",
        content_type="image/png",
        size=len(png_bytes()),
    )

    acl = s3_private_storage.get_object_acl(Bucket=BUCKET, Key=f"clinic/private/{attachment.file.name}")
    assert all("AllUsers" not in grant["Grantee"].get("URI", "") for grant in acl["Grants"])


@pytest.mark.django_db
def test_an_object_missing_from_the_bucket_is_a_404_not_an_error(client, patient, specialty, s3_private_storage):
    attachment = Attachment.objects.create(
        question=QuestionFactory(patient=patient, specialty=specialty),
        file=ContentFile(pdf_bytes(), name="ignored"),
        original_name="scan.pdf",
        content_type="application/pdf",
        size=len(pdf_bytes()),
    )
    s3_private_storage.delete_object(Bucket=BUCKET, Key=f"clinic/private/{attachment.file.name}")

    status, _ = download(client, patient, attachment)

    assert status == 404
