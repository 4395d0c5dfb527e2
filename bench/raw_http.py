"""A small HTTP/1.1 client for the asking load: a new connection per request, cookies kept.

The asking benchmark's patients run in the bench's own process, on the same two cores
as the server they measure, so every millisecond the client spends is a millisecond
the server does not get (the closed loop's latency follows the whole machine's time
per question). aiohttp's request machinery (connector, request and response objects,
cookie jar, form encoding) took about 1 ms of CPU per request there; this client does
what the load needs and no more: it writes the request in one go, reads the response
until the server closes the connection (gunicorn's sync workers close every one, so
there is no keep-alive to gain), and keeps the cookies the server sets.

It is a measurement tool, not a browser: HTTP only, no redirects followed, gzip
and deflate the only encodings it can read (the portal compresses nothing itself),
cookies by name only (one host, no paths, no Secure flag, no expiry but Max-Age=0).
A response the server sends before reading a large body and then resets the
connection (gunicorn drains 64 KiB before closing) may be lost to the reset: the
request is then recorded as ConnectionResetError, not as the status it got.
"""

import asyncio
import uuid
import zlib
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit


class BadResponse(Exception):
    """The server's answer could not be read as HTTP/1.1."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names; the last of a repeated header
    body: bytes

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


# What a failed request can raise: the caller records it as a failed request.
REQUEST_ERRORS = (TimeoutError, OSError, BadResponse)

# What a current desktop browser sends with every request, so the server parses and
# checks as many headers as it does for a patient (aiohttp sent four).
BROWSER_HEADERS = (
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
    "Accept-Language: en-GB,en;q=0.9",
    "Accept-Encoding: gzip, deflate",
)


class Client:
    """One visitor: its own cookies, a new connection for every request."""

    def __init__(self, base_url: str, timeout: float):
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"an http:// address is needed, not {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.host_header = parts.netloc
        self.timeout = timeout
        self.cookies: dict[str, str] = {}

    async def get(self, path: str, timeout: float | None = None) -> Response:
        return await self._request("GET", path, timeout=timeout)

    async def post(self, path: str, body: bytes, content_type: str, timeout: float | None = None) -> Response:
        return await self._request("POST", path, body, content_type, timeout)

    async def _request(
        self, method: str, path: str, body: bytes = b"", content_type: str = "", timeout: float | None = None
    ) -> Response:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host_header}", "Connection: close", *BROWSER_HEADERS]
        if self.cookies:
            lines.append("Cookie: " + "; ".join(f"{name}={value}" for name, value in self.cookies.items()))
        if method != "GET":
            # A form posted from the page at `path` (the bench's forms post to themselves).
            origin = f"http://{self.host_header}"
            lines += [f"Origin: {origin}", f"Referer: {origin}{path}"]
            lines += [f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        async with asyncio.timeout(timeout or self.timeout):
            reader, writer = await asyncio.open_connection(self.host, self.port)
            try:
                writer.write(request)
                raw = await reader.read()  # to the end: the server closes the connection
            finally:
                writer.close()
        response = parse_response(raw)
        self._keep_cookies(response.set_cookies)
        return response.response

    def _keep_cookies(self, set_cookies: list[str]) -> None:
        for header in set_cookies:
            pair, _, attributes = header.partition(";")
            name, _, value = pair.strip().partition("=")
            if "max-age=0" in attributes.lower().replace(" ", ""):
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value


@dataclass
class _Parsed:
    response: Response
    set_cookies: list[str]


def parse_response(raw: bytes) -> _Parsed:
    """Status, headers and body of a whole HTTP/1.1 response (Content-Length, chunked, or to the end).
    Anything that cannot be read as one raises BadResponse."""
    try:
        return _parse(raw)
    except (ValueError, zlib.error) as error:
        raise BadResponse(f"unreadable response ({error}): {raw[:80]!r}") from error


def _parse(raw: bytes) -> _Parsed:
    head, separator, body = raw.partition(b"\r\n\r\n")
    if not separator:
        raise BadResponse(f"no end of headers in {len(raw)} bytes: {raw[:80]!r}")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    version, _, rest = status_line.partition(" ")
    if not version.startswith("HTTP/1.") or not (rest[:3].isascii() and rest[:3].isdigit()):
        raise BadResponse(f"not an HTTP/1.x status line: {status_line[:80]!r}")
    headers: dict[str, str] = {}
    set_cookies: list[str] = []
    for line in header_lines:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        if name == "set-cookie":
            set_cookies.append(value)
        headers[name] = value
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _dechunk(body)
    elif "content-length" in headers:
        length = int(headers["content-length"])
        if len(body) < length:
            raise BadResponse(f"body cut short: {len(body)} of {length} bytes")
        body = body[:length]
    encoding = headers.get("content-encoding", "identity").lower()
    if encoding in ("gzip", "deflate"):
        body = zlib.decompress(body, 47)  # 47: a gzip or zlib header, whichever it has
    elif encoding != "identity":
        raise BadResponse(f"a body in {encoding!r}, which this client did not ask for")
    return _Parsed(Response(int(rest[:3]), headers, body), set_cookies)


def _dechunk(body: bytes) -> bytes:
    parts, at = [], 0
    while True:
        end = body.find(b"\r\n", at)
        if end < 0:
            raise BadResponse("chunked body cut short")
        size = int(body[at:end].split(b";")[0], 16)
        if size == 0:
            return b"".join(parts)
        parts.append(body[end + 2 : end + 2 + size])
        at = end + 2 + size + 2


def urlencoded(values: dict[str, str]) -> tuple[bytes, str]:
    """A form's values as a browser posts them without files."""
    return urlencode(values).encode(), "application/x-www-form-urlencoded"


def multipart(values: dict[str, str], files: list[tuple[str, str, bytes, str]]) -> tuple[bytes, str]:
    """A form's values and files (field name, file name, content, content type) as multipart/form-data."""
    boundary = f"bench-{uuid.uuid4().hex}"
    parts = []
    for name, value in values.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for field_name, file_name, content, content_type in files:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field_name}"; filename="{file_name}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n".encode()
            + content
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
