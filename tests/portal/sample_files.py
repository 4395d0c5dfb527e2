"""Small real files for upload tests: images made with Pillow, a minimal PDF, impostors."""

import io

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

GPS_IFD = 0x8825
MAKE_TAG = 0x010F
ORIENTATION_TAG = 0x0112


def png_bytes(size=(32, 24), colour=(30, 120, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_with_location(size=(40, 20), orientation: int = 1) -> bytes:
    """A JPEG carrying a GPS position, a camera make and a comment, like a phone photo."""
    exif = Image.Exif()
    exif[MAKE_TAG] = "SecretCam"
    exif[ORIENTATION_TAG] = orientation
    exif[GPS_IFD] = {1: "N", 2: (52.0, 13.0, 0.0), 3: "E", 4: (13.0, 24.0, 0.0)}
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format="JPEG", exif=exif, comment=b"home address")
    return buffer.getvalue()


def pdf_bytes() -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
        b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )


ELF_BYTES = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 200
WINDOWS_EXE_BYTES = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 200
HTML_BYTES = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"
SVG_BYTES = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def upload(name: str, content: bytes, content_type: str = "application/octet-stream") -> SimpleUploadedFile:
    """An upload whose declared type is irrelevant: the portal must look at the bytes."""
    return SimpleUploadedFile(name, content, content_type=content_type)


def png_upload(name: str = "rash.png") -> SimpleUploadedFile:
    return upload(name, png_bytes(), "image/png")
