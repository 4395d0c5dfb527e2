"""Issue 15 "pictures you can see", in a real browser at 390 × 844 and 1280 × 800: the
patient and the doctor see the photo's thumbnail and open it full size; another patient
and another specialty's doctor get 404; a patient sends a follow-up with a photo.
Screenshots go to var/screenshots/ (not committed)."""

import io
import re
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from consultations import services, uploads
from tests.factories import PASSWORD, DoctorFactory, SpecialtyFactory, UserFactory
from tests.portal.sample_files import upload

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parent.parent.parent / "var" / "screenshots"
SIZES = {"phone": (390, 844), "laptop": (1280, 800)}


def photo_bytes(size=(1600, 1200)) -> bytes:
    """A landscape "photo": a skin-coloured field with a red patch, easy to recognise in a screenshot."""
    image = Image.new("RGB", size, (224, 182, 150))
    ImageDraw.Draw(image).ellipse((500, 350, 1100, 850), fill=(200, 60, 60))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def new_page(chromium, live_server, size):
    width, height = SIZES[size]
    context = chromium.new_context(
        base_url=live_server.url,
        timezone_id="Europe/Paris",
        locale="en-GB",
        viewport={"width": width, "height": height},
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda message: message.type == "error" and page.console_errors.append(message.text))
    page.on("pageerror", lambda error: page.console_errors.append(str(error)))
    return page


def site_log_in(page, email):
    page.goto("/accounts/login/")
    page.get_by_label("E-mail address").fill(email)
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def doctor_log_in(page, email):
    page.goto("/doctor/")
    page.wait_for_url(re.compile(r"/doctor/login/"))
    page.locator("#id_username").fill(email)
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/doctor/consultations/question/"))


def assert_shown(img):
    """The image has loaded and decoded to real pixels, and is on screen at a visible size."""
    img.scroll_into_view_if_needed()
    img.page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())
    natural = img.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert natural == [320, 240]
    box = img.bounding_box()
    assert box["width"] >= 100 and box["height"] >= 100


def assert_fits(page):
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{page.url} is {overflow}px wider than the viewport"


def screenshot(page, name, size):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"pictures-{name}-{size}.png"), full_page=True)


@pytest.fixture
def case():
    dermatology = SpecialtyFactory(name="Dermatology", slug="dermatology")
    cardiology = SpecialtyFactory(name="Cardiology", slug="cardiology")
    DoctorFactory(
        user=UserFactory(email="dana.derm@example.com"), display_name="Dr. Dana Derm", specialties=[dermatology]
    )
    DoctorFactory(
        user=UserFactory(email="carl.cardio@example.com"), display_name="Dr. Carl Cardio", specialties=[cardiology]
    )
    patient = UserFactory(email="paula@example.com", time_zone="Europe/Paris")
    UserFactory(email="otto@example.com")
    files = uploads.prepare_attachments([upload("Paula rash arm.jpg", photo_bytes())])
    return services.submit_question(
        patient=patient,
        specialty=dermatology,
        title="Rash after a new soap",
        description="A red itchy patch on my forearm for a week.",
        age=34,
        sex="female",
        files=files,
    )


@pytest.mark.parametrize("size", SIZES)
def test_thumbnails_visible_to_patient_and_doctor_and_refused_to_others(chromium, live_server, case, size):
    attachment = case.attachments.get()
    thumbnail_url = f"/questions/attachments/{attachment.pk}/thumbnail/"
    picture_url = f"/questions/attachments/{attachment.pk}/picture/"

    page = new_page(chromium, live_server, size)
    try:
        site_log_in(page, "paula@example.com")
        page.goto(f"/questions/{case.pk}/")
        thumb = page.get_by_role("img", name="Photo 1 of 1")
        assert thumb.get_attribute("src") == thumbnail_url
        assert_shown(thumb)
        assert_fits(page)
        screenshot(page, "patient-question", size)
        assert page.console_errors == []
        page.get_by_role("link", name="Photo 1 of 1", exact=True).click()
        page.wait_for_url(re.compile(re.escape(picture_url) + "$"))
        # Chrome's own viewer shows it (scaled to fit); the sandbox CSP blocks only the
        # viewer's inline styles, which Chrome reports as console errors.
        assert page.evaluate("document.images.length && document.images[0].naturalWidth") == 1600
        screenshot(page, "patient-full-size", size)
    finally:
        page.context.close()

    page = new_page(chromium, live_server, size)
    try:
        doctor_log_in(page, "dana.derm@example.com")
        page.goto(f"/doctor/consultations/question/{case.pk}/change/")
        thumb = page.get_by_role("img", name="Photo 1 of 1")
        assert_shown(thumb)
        assert "Paula" not in page.content()
        assert_fits(page)
        screenshot(page, "doctor-question", size)
        page.get_by_role("link", name="View full size").click()
        page.wait_for_url(re.compile(re.escape(picture_url) + "$"))
        assert page.evaluate("document.images.length && document.images[0].naturalWidth") == 1600
    finally:
        page.context.close()

    for email, log_in in (("otto@example.com", site_log_in), ("carl.cardio@example.com", doctor_log_in)):
        page = new_page(chromium, live_server, size)
        try:
            log_in(page, email)
            for url in (thumbnail_url, picture_url, f"/questions/attachments/{attachment.pk}/"):
                assert page.goto(url).status == 404, f"{email} reached {url}"
        finally:
            page.context.close()

    page = new_page(chromium, live_server, size)
    try:
        page.goto(thumbnail_url)
        assert "/accounts/login/" in page.url
    finally:
        page.context.close()


@pytest.mark.parametrize("size", SIZES)
def test_a_follow_up_with_a_photo(chromium, live_server, case, size, tmp_path):
    doctor = case.specialty.doctors.get()
    services.post_answer(case, doctor, "This looks like contact dermatitis. Stop the new soap for two weeks.")
    photo = tmp_path / "neck today.jpg"
    photo.write_bytes(photo_bytes())
    refused = tmp_path / "notes.txt"
    refused.write_text("not a picture")

    page = new_page(chromium, live_server, size)
    try:
        site_log_in(page, "paula@example.com")
        page.goto(f"/questions/{case.pk}/")
        # A refused file first: the message stays, the file must be attached again.
        page.get_by_label("Your message").fill("It spread to my neck today, photo attached.")
        page.get_by_label("Photos or documents (optional)").set_input_files(str(refused))
        page.get_by_role("button", name="Send", exact=True).click()
        page.get_by_text("is not a JPEG, PNG or PDF file").wait_for()
        assert page.get_by_label("Your message").input_value() == "It spread to my neck today, photo attached."
        # The refused form comes back with its errors (200): nothing on the console.
        assert page.console_errors == []
        page.get_by_label("Photos or documents (optional)").set_input_files(str(photo))
        page.get_by_role("button", name="Send", exact=True).click()
        page.get_by_text("Your message was sent to the doctor.").wait_for()
        follow_up = page.locator("article.reply-follow_up")
        assert "It spread to my neck today" in follow_up.inner_text()
        assert_shown(follow_up.get_by_role("img", name="Photo 1 of 1"))
        assert_fits(page)
        screenshot(page, "patient-follow-up", size)
        assert page.console_errors == []
    finally:
        page.context.close()

    page = new_page(chromium, live_server, size)
    try:
        doctor_log_in(page, "dana.derm@example.com")
        page.goto(f"/doctor/consultations/question/{case.pk}/change/")
        reply = page.locator("article.reply-follow_up")
        assert_shown(reply.get_by_role("img", name="Photo 1 of 1"))
        assert "neck today.jpg" not in page.content()
        screenshot(page, "doctor-follow-up", size)
    finally:
        page.context.close()
