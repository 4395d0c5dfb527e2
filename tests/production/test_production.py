"""Production smoke test (issue 12): the `make run-prod` shape, through nginx over HTTPS.

Started once for the module by deploy/run_prod.py (tests/production/conftest.py):
nginx -> two gunicorn -> PostgreSQL + Redis, two Celery workers and two beats,
PRODUCTION=true, static files collected with the manifest. What a clinic's
first day needs must answer 2xx with HSTS and Secure cookies, with no 5xx and
no traceback in any process's output; nginx must refuse oversized bodies and
absorb slow uploads; two beats and two workers must escalate each question once
even when one worker and one beat are killed.
"""

import re
import socket
import ssl
import statistics
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from datetime import timedelta
from http.client import HTTPSConnection

import pytest
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from consultations import demo, sla
from consultations.models import (
    Escalation,
    EscalationLevel,
    Notification,
    NotificationStatus,
    Question,
    QuestionStatus,
    Specialty,
    SweepRun,
)
from consultations.outbox_send import CLAIM_BATCH
from portal.models import User
from tests.consultations.sweep_support import unsaved_questions
from tests.integration.conftest import _header, read_emails, wait_for
from tests.portal.sample_files import png_bytes
from tests.production.conftest import NoRedirects, requires_production_tools

pytestmark = [pytest.mark.production, pytest.mark.integration, requires_production_tools]

PASSWORD = demo.DEMO_PASSWORD
HSTS = "max-age=31536000; includeSubDomains; preload"
# nginx's access log line: ... "METHOD PATH HTTP/x" STATUS ...
NGINX_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) [^"]*" (?P<status>\d{3}) ')


def confirmed_device(email: str) -> TOTPDevice:
    """A paired authenticator app, as after the 2FA set-up; the test computes its codes."""
    user = User.objects.get(email=email)
    TOTPDevice.objects.filter(user=user).delete()
    return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)


def current_code(device: TOTPDevice) -> str:
    device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def sign_in(client, login_path: str, email: str, device: TOTPDevice | None = None) -> None:
    response = client.submit(login_path, {"username": email, "password": PASSWORD})
    assert response.status == 302, f"signing in as {email} answered {response.status}"
    if device is None:
        return
    # REQUIRE_2FA is on in production: the next page asks for a code from the app.
    page = client.get(response.location.removeprefix(client.base_url))
    while page.status == 302:
        page = client.get(page.location.removeprefix(client.base_url))
    assert page.status == 200 and 'name="token"' in page.body, "the 2FA code page was not shown"
    verify_path = "/accounts/2fa/verify/?next=" + re.search(r'name="next" value="([^"]*)"', page.body).group(1)
    verified = client.post(verify_path, {"csrfmiddlewaretoken": client.token(page), "token": current_code(device)})
    assert verified.status == 302, f"the 2FA code was refused ({verified.status})"


def assert_secure_cookies(response) -> None:
    cookies = response.set_cookies()
    assert cookies, "no cookie was set"
    for cookie in cookies:
        attributes = [part.strip().lower() for part in cookie.split(";")]
        assert "secure" in attributes and "httponly" in attributes, cookie


def test_a_clinic_day_through_nginx_over_https(prod_shape):
    """Issue 12 acceptance: home, article, login, ask with an attachment, a doctor answers
    (after a TOTP code), the staff dashboard: all 2xx over HTTPS, HSTS, Secure cookies."""
    doctor_device = confirmed_device(demo.DOCTOR_EMAIL)
    staff_device = confirmed_device(demo.STAFF_EMAIL)
    visitor = prod_shape.client()

    home = visitor.get("/")
    assert home.status == 200 and home.headers["Strict-Transport-Security"] == HSTS
    articles = visitor.get("/articles/")
    assert articles.status == 200
    article_path = re.search(r'href="(/articles/[a-z0-9-]+/)"', articles.body).group(1)
    article = visitor.get(article_path)
    assert article.status == 200 and article.headers["Strict-Transport-Security"] == HSTS
    # A static file through nginx from the manifest build (hashed name, cached for a year).
    css_path = re.search(r'href="(/static/[^"]+\.[0-9a-f]{12}\.css)"', article.body).group(1)
    css = visitor.get(css_path)
    assert css.status == 200 and "immutable" in css.headers["Cache-Control"]

    # The patient signs in and asks with a photo.
    patient = prod_shape.client()
    login_page = patient.get("/accounts/login/")
    assert login_page.status == 200
    assert_secure_cookies(login_page)
    signed_in = patient.post(
        "/accounts/login/",
        {"csrfmiddlewaretoken": patient.token(login_page), "username": demo.PATIENT_EMAIL, "password": PASSWORD},
    )
    assert signed_in.status == 302
    assert_secure_cookies(signed_in)
    title = f"Itchy patch after gardening {uuid.uuid4().hex[:6]}"
    dermatology = Specialty.objects.get(slug="dermatology")
    asked = patient.submit(
        "/questions/ask/",
        {
            "specialty": dermatology.pk,
            "title": title,
            "description": "A red itchy patch on my wrist since I weeded the garden on Saturday.",
            "age": "41",
            "sex": "female",
            "consent": "on",
        },
        files={"attachments": ("wrist.png", "image/png", png_bytes())},
    )
    assert asked.status == 302 and re.search(r"/questions/\d+/submitted/$", asked.location), asked.body[:500]
    assert patient.get(asked.location.removeprefix(patient.base_url)).status == 200
    question = Question.objects.get(title=title)
    assert question.attachments.count() == 1

    # The doctor signs in to the workbench with a TOTP code and answers.
    doctor = prod_shape.client()
    sign_in(doctor, "/doctor/login/", demo.DOCTOR_EMAIL, doctor_device)
    change = f"/doctor/consultations/question/{question.pk}/change/"
    answered = doctor.submit(
        change, {"body": "This looks like contact dermatitis: wear gloves and use a mild cream.", "intent": "answer"}
    )
    assert answered.status == 302, answered.body[:500]
    question.refresh_from_db()
    assert question.status == QuestionStatus.ANSWERED
    assert doctor.get("/doctor/consultations/question/").status == 200

    thread = patient.get(f"/questions/{question.pk}/")
    assert thread.status == 200 and "contact dermatitis" in thread.body

    # Staff: the SLA dashboard.
    staff = prod_shape.client()
    sign_in(staff, "/accounts/login/", demo.STAFF_EMAIL, staff_device)
    dashboard = staff.get("/staff/sla/")
    assert dashboard.status == 200 and dashboard.headers["Strict-Transport-Security"] == HSTS

    for client in (visitor, patient, doctor, staff):
        for method, path, status in client.responses:
            assert status in (200, 302), f"{method} {path} answered {status}"


def test_plain_http_redirects_to_https_but_healthz_reaches_django(prod_shape):
    """Load balancers probe /healthz over plain HTTP; everything else is sent to HTTPS by nginx."""
    opener = urllib.request.build_opener(NoRedirects)
    try:
        opener.open(prod_shape.http_url + "/articles/?page=1", timeout=10)
        pytest.fail("plain HTTP was served")
    except urllib.error.HTTPError as redirect:
        assert redirect.code == 301
        assert redirect.headers["Location"] == prod_shape.https_url + "/articles/?page=1"
        assert "Cross-Origin-Opener-Policy" not in redirect.headers  # nginx's own answer
    try:
        with opener.open(prod_shape.http_url + "/healthz", timeout=10) as response:
            status, headers = response.status, response.headers
    except urllib.error.HTTPError as error:
        status, headers = error.code, error.headers
    # Answered by Django, not redirected by nginx.
    assert headers.get("Cross-Origin-Opener-Policy") == "same-origin", "nginx did not pass /healthz to Django"
    exempt = prod_shape.production_setting("SECURE_REDIRECT_EXEMPT")
    print(f"GET http://.../healthz answered {status}; SECURE_REDIRECT_EXEMPT = {exempt}")
    if "healthz" in exempt:
        assert status == 200
    else:  # Django's own HTTPS redirect, until it exempts /healthz
        assert status == 301


def test_the_monitoring_probe_sees_the_broker_and_the_sweep(prod_shape):
    """/healthz/sla over HTTPS: the shape's Redis broker and beats keep it green."""
    response = prod_shape.client().get("/healthz/sla")

    assert (response.status, response.body) == (200, "ok\n")


def raw_post(shape, path: str, size: int, chunked: bool = False) -> tuple[int, float]:
    """POST `size` zero bytes to `path`, announced by Content-Length or sent chunked without
    one; stop sending as soon as nginx answers. nginx's status and the seconds it took."""
    started = time.monotonic()
    port = int(shape.https_url.rsplit(":", 1)[1])
    with shape.tls.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="127.0.0.1") as sock:
        sock.settimeout(30)
        length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/octet-stream\r\n"
        sock.sendall(f"{head}{length}\r\n\r\n".encode())
        chunk = b"\0" * 65536
        sent, answer = 0, b""
        while sent < size and not answer:
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            except OSError:
                break  # nginx answered and closed
            sent += len(chunk)
            sock.settimeout(0)  # has nginx answered yet? (reading also takes TLS records that are not data)
            try:
                answer = sock.recv(4096)
            except ssl.SSLWantReadError:
                pass
            sock.settimeout(30)
        if not answer:
            answer = sock.recv(4096)
    return int(answer.split(b" ", 2)[1]), time.monotonic() - started


def test_a_60_mb_post_gets_413_from_nginx_and_never_reaches_django(prod_shape):
    """Issue 12 acceptance: refused by the proxy before reaching Django (gunicorn never logs it)."""
    marker = uuid.uuid4().hex
    declared, took_declared = raw_post(prod_shape, f"/accounts/login/?big={marker}", 60 * 1024 * 1024)
    chunked, took_chunked = raw_post(prod_shape, f"/questions/ask/?chunked={marker}", 60 * 1024 * 1024, chunked=True)
    print(
        f"60 MB POST: {declared} in {took_declared:.2f} s (Content-Length), {chunked} in {took_chunked:.2f} s (chunked)"
    )
    assert declared == 413 and chunked == 413

    # nginx writes its access line as each request ends: wait for both (not a fixed sleep).
    def refused():
        return [line for line in prod_shape.lines("nginx") if marker in line and NGINX_LINE.search(line)]

    nginx = wait_for(lambda: found if len(found := refused()) >= 2 else None, "nginx to log both POSTs", 10)
    assert len(nginx) == 2 and all(" 413 " in line and "upstream=- " in line for line in nginx), nginx
    for web in ("web-1", "web-2"):
        assert not [line for line in prod_shape.lines(web) if marker in line], f"{web} saw the oversized POST"


def articles_timings(connection: HTTPSConnection, count: int) -> list[float]:
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        connection.request("GET", "/articles/")
        response = connection.getresponse()
        response.read()
        assert response.status == 200
        timings.append(time.perf_counter() - started)
    return timings


def test_ten_slow_uploads_do_not_slow_the_article_list(prod_shape):
    """Issue 12 acceptance: ten uploads trickling in at 100 KB/s each are buffered by nginx and
    hold no gunicorn worker: /articles/ stays within 2x its unloaded p50 (measured just before
    and just after the uploads, so that a change in the machine's load counts on both sides)."""
    host, port = "127.0.0.1", int(prod_shape.https_url.rsplit(":", 1)[1])
    connection = HTTPSConnection(host, port, context=prod_shape.tls, timeout=30)
    articles_timings(connection, 20)  # warm: every gunicorn worker has rendered or cached the page
    before = articles_timings(connection, 60)

    marker = uuid.uuid4().hex
    stop = threading.Event()
    sent = Counter()

    def slow_upload(number: int) -> None:
        sock = prod_shape.tls.wrap_socket(socket.create_connection((host, port)), server_hostname=host)
        with sock:
            sock.sendall(
                f"POST /questions/ask/?slow={marker}-{number} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Content-Type: application/octet-stream\r\nContent-Length: {10 * 1024 * 1024}\r\n\r\n".encode()
            )
            while not stop.wait(0.08):
                sock.sendall(b"x" * 8192)  # about 100 KB/s
                sent[number] += 8192

    uploads = [threading.Thread(target=slow_upload, args=(n,), daemon=True) for n in range(10)]
    for upload in uploads:
        upload.start()
    time.sleep(1.5)
    loaded = statistics.median(articles_timings(connection, 60))
    stop.set()
    for upload in uploads:
        upload.join(timeout=10)
    after = articles_timings(connection, 60)
    connection.close()
    unloaded = statistics.median(before + after)
    before_ms, after_ms = statistics.median(before) * 1000, statistics.median(after) * 1000
    print(
        f"/articles/ p50 through nginx: {unloaded * 1000:.1f} ms unloaded (before {before_ms:.1f}, after "
        f"{after_ms:.1f}), {loaded * 1000:.1f} ms with ten slow "
        f"uploads in progress ({sum(sent.values()) / 1024:.0f} KB sent by them; ratio {loaded / unloaded:.2f})"
    )
    assert len(sent) == 10 and min(sent.values()) > 0
    assert loaded <= 2 * unloaded
    for web in ("web-1", "web-2"):
        assert not [line for line in prod_shape.lines(web) if marker in line], f"{web} saw an unfinished upload"


QUESTIONS = 1000


def test_two_beats_and_two_workers_escalate_1000_questions_exactly_once_despite_kills(prod_shape):
    """Issue 12 acceptance: 1,000 questions falling past due over 12 s, both beats and both
    workers running; one worker and one beat are SIGKILLed mid-run (the supervisor starts them
    again). Each question is breached exactly once and every e-mail goes out."""
    specialty = Specialty.objects.get(slug="dermatology")
    patient = User.objects.get(email=demo.PATIENT_EMAIL)
    doctor = User.objects.get(email=demo.DOCTOR_EMAIL).doctor_profile
    now = timezone.now()
    rows = []
    for number in range(QUESTIONS):
        due = now + timedelta(seconds=3 + 12 * number / QUESTIONS)
        started = due - sla.answer_window()
        rows += unsaved_breaching(number, specialty, patient, doctor, started)
    question_ids = [question.pk for question in Question.objects.bulk_create(rows)]
    breaches = Escalation.objects.filter(question_id__in=question_ids, level=EscalationLevel.BREACHED)
    first_run = SweepRun.objects.order_by("-pk").values_list("pk", flat=True).first() or 0

    deadline = time.monotonic() + 30
    while breaches.count() < QUESTIONS // 4 and time.monotonic() < deadline:
        time.sleep(0.2)
    killed_at = breaches.count()
    killed = {name: prod_shape.kill(name) for name in ("worker-1", "beat-1")}
    restart_deadline = time.monotonic() + 10
    while time.monotonic() < restart_deadline and not all(len(prod_shape.pids(n)) >= 2 for n in killed):
        time.sleep(0.2)
    assert all(len(prod_shape.pids(n)) >= 2 for n in killed), "the supervisor did not restart the killed processes"

    deadline = time.monotonic() + 90
    while breaches.count() < QUESTIONS and time.monotonic() < deadline:
        time.sleep(0.5)
    all_breached = timezone.now()
    notifications = Notification.objects.filter(question_id__in=question_ids)
    deadline = time.monotonic() + 90
    while notifications.exclude(status=NotificationStatus.SENT).exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    last_due = max(row.clock_due_at for row in rows)
    print(
        f"killed worker-1 and beat-1 after {killed_at} of {QUESTIONS} breaches; the last question was breached "
        f"{(all_breached - last_due).total_seconds():.1f} s after it fell due, every e-mail sent "
        f"{(timezone.now() - last_due).total_seconds():.1f} s after"
    )

    assert Counter(breaches.values_list("question_id", flat=True)) == {pk: 1 for pk in question_ids}
    assert not Escalation.objects.filter(question_id__in=question_ids).exclude(level=EscalationLevel.BREACHED).exists()
    assert not Question.objects.filter(pk__in=question_ids).exclude(sweep_error="").exists()
    assert not SweepRun.objects.filter(pk__gt=first_run, errors__gt=0).exists()
    # Both beats kept sending sweeps, the restarted one too.
    for beat in ("beat-1", "beat-2"):
        assert sum("Sending due task sla-sweep" in line for line in prod_shape.lines(beat)) >= 3

    assert not notifications.exclude(status=NotificationStatus.SENT).exists(), "e-mails left unsent"
    expected = Counter(notifications.values_list("to_email", "subject"))
    assert sum(expected.values()) >= 2 * QUESTIONS
    messages = read_emails(prod_shape.mail_dir())
    written = Counter((message["To"], _header(message, "Subject")) for message in messages)
    sent = Counter({pair: count for pair, count in written.items() if pair in expected})
    assert set(sent) == set(expected), "an e-mail never went out"
    # The one documented at-least-once window (README, "The outbox"; consultations/
    # outbox_send.py): e-mails a sender handed over before it was killed and before it
    # marked them sent go out again once their lease ends: at most a batch (CLAIM_BATCH)
    # per pool process of the killed worker (WORKER_CONCURRENCY, 2 in deploy/Procfile.prod),
    # or a second's worth if that is fewer; each again with its row's Message-ID, so a
    # mail client that deduplicates shows one copy. (Before e-mails were sent in batches
    # the bound was one per pool process; a kill mid-batch then gave up to 138 here.)
    duplicates = sum(sent.values()) - sum(expected.values())
    print(f"{sum(expected.values())} e-mails expected, {sum(sent.values())} written ({duplicates} duplicates)")
    assert 0 <= duplicates <= 2 * CLAIM_BATCH
    message_ids: dict[tuple, set] = {}
    for message in messages:
        message_ids.setdefault((message["To"], _header(message, "Subject")), set()).add(message["Message-ID"])
    assert all(len(ids) == 1 for ids in message_ids.values()), "a copy sent again carried another Message-ID"


def unsaved_breaching(number, specialty, patient, doctor, started):
    rows = unsaved_questions(1, specialty=specialty, patient=patient, started_at=started, claimed_by=doctor)
    rows[0].title = f"Bulk question {number}"
    rows[0].warned_at = started  # warned long ago: only the breach is owed
    return rows


def test_no_server_error_and_no_traceback_in_any_process_output(prod_shape):
    """Issue 12 acceptance: after everything above, no 5xx in nginx's log (from the moment the
    shape was up) and no traceback in the output of any process since it started (nginx, both
    gunicorn, both workers, both beats, and the set-up commands)."""
    access_log = "\n".join(prod_shape.lines("nginx", since_ready=True))
    statuses = Counter(match["status"] for match in NGINX_LINE.finditer(access_log))
    print(f"nginx answered: {dict(sorted(statuses.items()))}")
    assert statuses and not [status for status in statuses if status.startswith("5")]
    output = prod_shape.output()
    assert "Traceback" not in output, output[output.index("Traceback") - 2000 : output.index("Traceback") + 3000]
    assert not re.search(r"\[(ERROR|CRITICAL)", output)
