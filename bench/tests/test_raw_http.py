"""The asking load's HTTP client (bench/raw_http.py), against a real socket server."""

import asyncio
import io
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from django.core.files.uploadhandler import MemoryFileUploadHandler
from django.http.multipartparser import MultiPartParser

from bench import raw_http
from bench.forms import RepeatedForm, find_form


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[dict] = []

    def log_message(self, *args):
        pass

    def _answer(self, status: int, body: bytes, headers: list[tuple[str, str]] = (), chunked: bool = False):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Connection", "close")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (body[:5], body[5:]):
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def do_GET(self):
        _Handler.seen.append({"method": "GET", "path": self.path, "headers": dict(self.headers)})
        if self.path == "/login/":
            self._answer(
                200,
                b"<p>form</p>",
                [("Set-Cookie", "csrftoken=abc; Path=/; SameSite=Lax"), ("Set-Cookie", "old=1; Path=/")],
            )
        elif self.path == "/chunked/":
            self._answer(200, "héllo, world".encode(), chunked=True)
        else:
            self._answer(404, b"nothing here")

    def do_POST(self):
        length = int(self.headers["Content-Length"])
        body = self.rfile.read(length)
        _Handler.seen.append({"method": "POST", "path": self.path, "headers": dict(self.headers), "body": body})
        self._answer(
            302,
            b"",
            [
                ("Location", "/questions/7/"),
                ("Set-Cookie", "sessionid=s1; HttpOnly; Path=/"),
                ("Set-Cookie", 'old=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/'),
            ],
        )


def run(coroutine):
    """`asyncio.run` in a thread of its own: in the whole suite the browser tests before these
    leave an event loop running in the main thread (Playwright's sync API)."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


@pytest.fixture
def server():
    _Handler.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_get_then_a_post_keep_and_drop_cookies_as_a_browser_would(server):
    async def visit():
        client = raw_http.Client(server, timeout=5)
        page = await client.get("/login/")
        cookies_after_get = dict(client.cookies)
        posted = await client.post("/login/", *raw_http.urlencoded({"email": "a@b.example", "password": "p w&"}))
        return page, cookies_after_get, posted, dict(client.cookies)

    page, cookies_after_get, posted, cookies_after_post = run(visit())
    assert (page.status, page.text()) == (200, "<p>form</p>")
    assert cookies_after_get == {"csrftoken": "abc", "old": "1"}
    assert posted.status == 302 and posted.headers["location"] == "/questions/7/"
    assert cookies_after_post == {"csrftoken": "abc", "sessionid": "s1"}  # "old" deleted by Max-Age=0
    post = _Handler.seen[1]
    assert parse_qs(post["body"].decode()) == {"email": ["a@b.example"], "password": ["p w&"]}
    assert post["headers"]["Cookie"] == "csrftoken=abc; old=1"
    assert post["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    # A browser's headers, and a same-origin form post's Origin and Referer (Django's CSRF check reads them).
    assert post["headers"]["Origin"] == server
    assert post["headers"]["Referer"] == f"{server}/login/"
    assert "Mozilla/5.0" in post["headers"]["User-Agent"] and post["headers"]["Accept-Language"]


def test_a_chunked_body_is_put_back_together(server):
    response = run(raw_http.Client(server, timeout=5).get("/chunked/"))
    assert response.text() == "héllo, world"


def test_a_refused_connection_is_a_request_error():
    async def visit():
        return await raw_http.Client("http://127.0.0.1:9", timeout=5).get("/")

    with pytest.raises(raw_http.REQUEST_ERRORS):
        run(visit())


def test_a_response_that_is_not_http_is_refused():
    with pytest.raises(raw_http.BadResponse):
        raw_http.parse_response(b"SSH-2.0-OpenSSH\r\n\r\n")
    for unreadable in (
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
        "HTTP/1.1 ²00 OK\r\n\r\n".encode(),
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nnope",
    ):
        with pytest.raises(raw_http.BadResponse):
            raw_http.parse_response(unreadable)


def test_a_multipart_body_carries_the_values_and_the_file():
    body, content_type = raw_http.multipart(
        {"title": "Itchy elbow", "age": "40"}, [("attachments", "photo.jpg", b"\xff\xd8jpeg bytes", "image/jpeg")]
    )
    meta = {"CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(len(body))}
    values, files = MultiPartParser(meta, io.BytesIO(body), [MemoryFileUploadHandler()], "utf-8").parse()
    assert values.dict() == {"title": "Itchy elbow", "age": "40"}
    upload = files["attachments"]
    assert (upload.name, upload.content_type, upload.read()) == ("photo.jpg", "image/jpeg", b"\xff\xd8jpeg bytes")


def test_the_repeated_form_is_found_from_its_marker_as_by_a_full_scan():
    logout = '<form method="post" action="/logout/"><input type="hidden" name="csrfmiddlewaretoken" value="t"></form>'
    ask = (
        '<form method="post" action=""><input type="hidden" name="csrfmiddlewaretoken" value="t">'
        '<input name="title"></form>'
    )
    for page in (logout + ask, ask + logout, '<script>name="title"</script>' + logout + ask):
        reader = RepeatedForm("title")
        assert reader.find(page) == find_form(page, "title")
        assert reader._block(page).startswith('<form method="post" action="">')
