"""What checking and storing the costliest accepted image attachments takes: time and peak memory.

    .venv/bin/python -m bench.upload_cost [--pixels N]

Makes the worst files the upload rules accept (a PNG of solid colour with an
alpha channel, a tiny file that decodes to the most bytes; a CMYK JPEG that
must be turned and converted), then, each in a fresh process, runs
`uploads.prepare_attachments` on one of them and on five at once (one
request's worth) and prints the wall time and the growth of the process's
peak resident memory (VmHWM: Pillow allocates outside Python's allocator, so
tracemalloc would not see the pixels; and ru_maxrss would carry over the peak
of the parent that made the images).
"""

import argparse
import io
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ORIENTATION_TAG = 0x0112


def make_files(folder: Path, pixels: int) -> dict[str, Path]:
    from PIL import Image

    # A phone's 4:3 frame, lying on its side as the sensor saw it (the EXIF tag says "turn it").
    width = math.isqrt(pixels * 4 // 3)
    height = pixels // width
    size = f"{width}x{height}"
    files = {}
    image = Image.new("RGBA", (width, height), (30, 120, 200, 128))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    files[f"png-rgba-{size}"] = buffer.getvalue()
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = 6
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", exif=exif)
    files[f"png-rgba-rotated-{size}"] = buffer.getvalue()
    del image
    image = Image.new("CMYK", (width, height), (10, 80, 20, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif, quality=75)
    files[f"jpeg-cmyk-rotated-{size}"] = buffer.getvalue()
    del image
    paths = {}
    for name, data in files.items():
        path = folder / name
        path.write_bytes(data)
        paths[name] = path
    return paths


def peak_rss_kb() -> int:
    """This process's peak resident memory so far (Linux's VmHWM, which starts afresh at exec)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure(path: str, copies: int) -> dict:
    """In this (fresh) process: prepare `copies` uploads of the file, as one request would."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from django.core.exceptions import ValidationError
    from django.core.files.uploadedfile import SimpleUploadedFile

    from consultations import uploads

    data = Path(path).read_bytes()
    files = [SimpleUploadedFile(f"photo{n}", data) for n in range(copies)]
    before = peak_rss_kb()
    started = time.perf_counter()
    try:
        prepared = uploads.prepare_attachments(files)
        outcome = f"accepted, {sum(len(f.read()) for f, _ in prepared) // 1024} KB stored"
    except ValidationError as error:
        outcome = "refused: " + " ".join(error.messages)[:120]
    seconds = time.perf_counter() - started
    peak_mb = (peak_rss_kb() - before) / 1024
    return {"seconds": round(seconds, 2), "peak_mb": round(peak_mb), "outcome": outcome}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pixels", type=int, default=None, help="pixels of the test images (default: the cap)")
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure[0], int(args.measure[1]))))
        return
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from consultations import uploads

    pixels = args.pixels or getattr(uploads, "MAX_DECODED_PIXELS", uploads.MAX_IMAGE_PIXELS)
    with tempfile.TemporaryDirectory() as folder:
        paths = make_files(Path(folder), pixels)
        print(
            f"Caps: {uploads.MAX_IMAGE_PIXELS:,} pixels, "
            f"{getattr(uploads, 'MAX_DECODED_PIXELS', uploads.MAX_IMAGE_PIXELS):,} decoded; "
            f"test images {pixels:,} pixels"
        )
        for name, path in paths.items():
            for copies in (1, 5):
                result = subprocess.run(
                    [sys.executable, "-m", "bench.upload_cost", "--measure", str(path), str(copies)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                row = json.loads(result.stdout.strip().splitlines()[-1])
                size_kb = path.stat().st_size // 1024
                print(
                    f"{name} ({size_kb} KB) x{copies}: {row['seconds']} s, peak +{row['peak_mb']} MB, {row['outcome']}"
                )


if __name__ == "__main__":
    main()
