"""The catch-up's sink mail server (bench/smtp_sink.py) speaks SMTP: Django's SMTP backend
delivers through it, and it counts what arrived."""

import socket
import subprocess
import sys
import threading
import time

import pytest
from django.core.mail import EmailMessage, get_connection

from bench import processes, smtp_sink

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


@pytest.fixture
def sink():
    """A sink served by a thread of this process, keeping what it receives."""
    received = smtp_sink.Sink(keep=100)
    server = smtp_sink.Server(received, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    received.port = server.server_address[1]
    yield received
    server.shutdown()
    server.server_close()
    thread.join(10)


def backend(port: int):
    return get_connection(SMTP_BACKEND, host="127.0.0.1", port=port, timeout=5)


def test_djangos_smtp_backend_delivers_through_the_sink_with_the_body_intact(sink):
    body = "Line one\n.starts with a dot\n.\n..two dots\nend."
    messages = [
        EmailMessage("Hello", body, "from@example.com", ["a@example.com"]),
        EmailMessage("Two", "second", "from@example.com", ["b@example.com", "c@example.com"], cc=["d@example.com"]),
    ]
    connection = backend(sink.port)
    assert connection.send_messages(messages) == 2
    assert (sink.messages, sink.recipients, sink.connections) == (2, 4, 1)
    first, second = sink.kept
    assert first.mail_from == "from@example.com" and first.recipients == ["a@example.com"]
    # The dots the client stuffed are gone; every line arrived as it was written.
    assert body.replace("\n", "\r\n").encode() + b"\r\n" in first.data
    assert b"Subject: Hello\r\n" in first.data
    assert second.recipients == ["b@example.com", "c@example.com", "d@example.com"]
    assert sink.bytes == len(first.data) + len(second.data) + first.data.count(b"\r\n.")


def test_one_connection_carries_many_messages_and_xstats_counts_them(sink):
    connection = backend(sink.port)
    connection.open()
    for n in range(25):
        EmailMessage(f"n{n}", "body", "from@example.com", [f"to{n}@example.com"], connection=connection).send()
    connection.close()
    stats = smtp_sink.read_stats("127.0.0.1", sink.port)
    assert stats["messages"] == 25 and stats["recipients"] == 25
    # The mail client's connection; the XSTATS one is the bench's poll, not counted.
    assert stats["connections"] == 1


def converse(port: int, lines: list[bytes]) -> list[str]:
    """Send each line and read one reply (all of a multi-line one) after it."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        reader = sock.makefile("rb")
        replies = [reader.readline().decode()]
        for line in lines:
            sock.sendall(line)
            reply = reader.readline().decode()
            while reply[3:4] == "-":
                reply = reader.readline().decode()
            replies.append(reply.strip())
        return replies


def codes(replies: list[str]) -> list[str]:
    return [reply[:3] for reply in replies]


def test_reply_codes_follow_the_protocol(sink):
    replies = converse(
        sink.port,
        [
            b"MAIL FROM:<a@example.com>\r\n",  # before HELO
            b"EHLO\r\n",  # no domain
            b"EHLO client.example\r\n",
            b"RCPT TO:<b@example.com>\r\n",  # before MAIL
            b"DATA\r\n",  # before RCPT
            b"MAIL FROM a@example.com\r\n",  # bad syntax
            b"MAIL FROM:<a@example.com> BODY=8BITMIME\r\n",
            b"MAIL FROM:<a@example.com>\r\n",  # nested
            b"RCPT TO:<b@example.com>\r\n",
            b"RSET\r\n",
            b"DATA\r\n",  # the reset dropped the recipient
            b"NOOP\r\n",
            b"VRFY someone\r\n",
            b"BOGUS\r\n",
            b"HELO client.example\r\n",
            b"QUIT\r\n",
        ],
    )
    assert codes(replies) == [
        "220",
        "503",
        "501",
        "250",
        "503",
        "503",
        "501",
        "250",
        "503",
        "250",
        "250",
        "503",
        "250",
        "252",
        "500",
        "250",
        "221",
    ]
    assert sink.messages == 0


def test_pipelined_commands_and_an_empty_message(sink):
    with socket.create_connection(("127.0.0.1", sink.port), timeout=5) as sock:
        reader = sock.makefile("rb")
        reader.readline()
        # PIPELINING: every command up to DATA in one write, the replies in order.
        sock.sendall(b"HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<x@example.com>\r\nRCPT TO:<y@example.com>\r\nDATA\r\n")
        assert [reader.readline()[:3] for _ in range(5)] == [b"250", b"250", b"250", b"250", b"354"]
        # An empty message, then the next transaction in the same write.
        sock.sendall(b".\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<z@example.com>\r\nDATA\r\n")
        assert [reader.readline()[:3] for _ in range(4)] == [b"250", b"250", b"250", b"354"]
        # A message split across writes, its terminator too.
        for part in (b"Subject: x\r\n\r\n..dot\r\n", b"last\r", b"\n.", b"\r\n"):
            sock.sendall(part)
            time.sleep(0.01)
        assert reader.readline()[:3] == b"250"
    assert (sink.messages, sink.recipients) == (2, 3)
    empty, split = sink.kept
    assert empty.mail_from == "" and empty.data == b""
    assert split.data == b"Subject: x\r\n\r\n.dot\r\nlast\r\n"


def test_the_sink_runs_as_its_own_process_and_reports_on_stop():
    port = processes.free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.smtp_sink", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert "listening" in server.stdout.readline()
        sent = backend(port).send_messages(
            [EmailMessage("s", "b", "f@example.com", [f"t{n}@example.com"]) for n in range(3)]
        )
        assert sent == 3
        assert smtp_sink.read_stats("127.0.0.1", port)["messages"] == 3
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=10)
    assert server.returncode == 0 and "messages=3 recipients=3" in output
