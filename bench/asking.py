"""Patients asking through the real form: login, GET the form (CSRF token), POST.

Used twice: the asking benchmark (20 patients, submissions per second and the
confirmation e-mail written for each) and the load test of issue 7 (50
patients for 60 s: no 5xx, and exactly as many stored questions as
successful responses).
"""

import io
import math
import random

from bench.common import progress, resolve_path
from bench.data import PASSWORD
from bench.load import Attachment, measure_asking

ORIENTATION_TAG = 0x0112
# A phone photo as a patient sends one after the browser or app shrank it: 3 megapixels,
# taken sideways (the EXIF tag says "turn it"), with camera details to strip.
PHOTO_SIZE = (2048, 1536)


def bench_photo(size: tuple[int, int] = PHOTO_SIZE, seed: int = 1) -> Attachment:
    """A JPEG with a photo's texture (gradients plus sensor noise, about 0.8 MB at quality 85)
    that the portal must turn upright and re-encode without its metadata."""
    from PIL import Image, ImageFilter

    width, height = size
    rng = random.Random(seed)
    noise = Image.frombytes("L", (width // 4, height // 4), rng.randbytes(width // 4 * height // 4))
    noise = noise.resize(size).filter(ImageFilter.GaussianBlur(1))
    ramp = Image.linear_gradient("L").resize(size)
    image = Image.merge("RGB", (ramp, noise, ramp.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = 6
    exif[0x010F] = "Bench Phone Maker"  # Make
    exif[0x0110] = "Bench Phone 1"  # Model
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85, exif=exif)
    return Attachment(f"photo-{width}x{height}.jpg", buffer.getvalue(), "image/jpeg")


def photo_label(attachment: Attachment) -> str:
    return f"{attachment.name} ({math.ceil(len(attachment.content) / 1024)} KB)"


def _counts(database_url: str | None = None) -> tuple[int, int]:
    """Questions and confirmation e-mails stored, in this tree's database or, for a server of
    an older checkout on a database of its own (bench.ask_profile --own-database), in that one."""
    if database_url is None:
        from consultations.models import Notification, Question

        return Question.objects.count(), Notification.objects.filter(kind="question_received").count()
    import psycopg

    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT (SELECT count(*) FROM consultations_question),"
            " (SELECT count(*) FROM consultations_notification WHERE kind = 'question_received')"
        ).fetchone()


def ask_questions(
    base_url: str,
    patients: list[str],
    concurrency: int,
    seconds: float,
    attachment: Attachment | None = None,
    on_start=None,
    database_url: str | None = None,
) -> dict:
    """`concurrency` patients asking for `seconds`; every question carries `attachment` when given.
    `on_start()` is called when every patient is signed in and the measured asking begins.
    `database_url`: the server's database when it is not this process's (see `_counts`)."""
    ask_path = resolve_path("consultations:ask")
    login_path = resolve_path("login")
    questions_before, confirmations_before = _counts(database_url)
    what = f" with {photo_label(attachment)}" if attachment else ", text only"
    progress(f"  {concurrency} patients asking for {seconds:.0f} s through {ask_path}{what}")
    result = measure_asking(
        base_url, patients, PASSWORD, concurrency, seconds, ask_path, login_path, attachment, on_start
    )
    questions_after, confirmations_after = _counts(database_url)
    stored = questions_after - questions_before
    confirmations = confirmations_after - confirmations_before
    server_errors = sum(n for outcome, n in result.outcomes.items() if outcome.startswith("HTTP 5"))
    figures = {
        "path": ask_path,
        **result.as_dict(),
        "successes": result.ok,
        "stored_questions": stored,
        "confirmation_notifications": confirmations,
        "server_errors": server_errors,
        "attachment": photo_label(attachment) if attachment else None,
    }
    progress(
        f"    {result.per_second:.1f} submissions/s; {result.requests} posted, {result.ok} succeeded, "
        f"{stored} stored, {confirmations} confirmations written, {result.errors} errors"
    )
    if result.first_error:
        progress(f"    first error: {result.first_error}")
    return figures


def load_test_verdict(figures: dict) -> dict:
    """Issue 7's load test: no 5xx, stored questions equal successful responses."""
    return {
        "no_server_errors": figures["server_errors"] == 0,
        "stored_equals_successes": figures["stored_questions"] == figures["successes"],
        "passed": figures["server_errors"] == 0
        and figures["stored_questions"] == figures["successes"]
        and figures["successes"] > 0,
    }


LOAD_TEST_CLIENTS = 50
LOAD_TEST_SECONDS = 60.0


def load_test(base_url: str, patients: list[str], seconds: float = LOAD_TEST_SECONDS) -> dict:
    figures = ask_questions(base_url, patients[:LOAD_TEST_CLIENTS], LOAD_TEST_CLIENTS, seconds)
    figures["verdict"] = load_test_verdict(figures)
    return figures


def load_test_summary(figures: dict) -> str:
    verdict = figures["verdict"]
    return (
        f"Load test: {figures['concurrency']} patients for {figures['seconds']:.0f} s: "
        f"{figures['requests']} requests, {figures['successes']} successes, {figures['stored_questions']} stored rows, "
        f"{figures['errors']} errors ({figures['server_errors']} 5xx) -> {'PASS' if verdict['passed'] else 'FAIL'}"
        + ("" if verdict["no_server_errors"] else "; server errors seen")
        + ("" if verdict["stored_equals_successes"] else "; stored rows differ from successes")
    )
