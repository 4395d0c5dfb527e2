"""A sink mail server for the bench: speaks SMTP over TCP, accepts every message, keeps none.

The catch-up phase (bench/catchup.py) hands its e-mails to this server through Django's
SMTP EmailBackend, the portal's production path: each message costs the sender the TCP
conversation a real mail server asks for (EHLO once per connection, then MAIL FROM,
RCPT TO, DATA and the message, each waiting for the server's reply), and the server
takes it at once without queueing it to disk. It stands for the fastest mail server the
portal could talk to. One process serves every connection, a thread per connection
with blocking sockets (as an MTA gives each its own process): measured on this machine
it costs a third of the CPU per message that an asyncio event loop did (about 100 µs
against 320 µs for the four commands of a message), CPU the two cores share with the
senders. It counts messages, recipients and message bytes, and reports them on the
local command XSTATS (an X-verb, RFC 5321 4.1.5), so the bench can check that every
e-mail arrived.

    python -m bench.smtp_sink --port 8025 [--host 127.0.0.1]

Supported: EHLO/HELO, MAIL FROM, RCPT TO, DATA (dot-stuffing removed, ends at a line
holding a single dot), RSET, NOOP, VRFY (252), HELP, QUIT; commands may be pipelined.
No AUTH, no STARTTLS. `Sink(keep=N)` keeps the last N messages (tests).
"""

import argparse
import collections
import signal
import socket
import socketserver
import sys
import threading
from dataclasses import dataclass, field

HOSTNAME = "bench-sink.invalid"
# RFC 5321 4.5.3.1: a command line is at most 512 octets; a little slack for clients.
MAX_COMMAND_LINE = 2048
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
EHLO_LINES = (HOSTNAME, "8BITMIME", "PIPELINING", f"SIZE {MAX_MESSAGE_BYTES}", "HELP")


@dataclass
class Message:
    mail_from: str
    recipients: list[str]
    # The content as sent, dot-stuffing removed, with its final CRLF.
    data: bytes


@dataclass
class Sink:
    """What the server received, for every connection."""

    keep: int = 0
    messages: int = 0
    recipients: int = 0
    bytes: int = 0
    connections: int = 0  # mail clients' connections (a first HELO/EHLO), not XSTATS polls
    kept: collections.deque = field(default_factory=collections.deque)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self):
        self.kept = collections.deque(maxlen=self.keep or None)

    def received(self, message: Message, size: int) -> int:
        """Count one message (`size` bytes as sent); its number."""
        with self.lock:
            self.messages += 1
            self.recipients += len(message.recipients)
            self.bytes += size
            if self.keep:
                self.kept.append(message)
            return self.messages

    def connected(self) -> None:
        with self.lock:
            self.connections += 1

    def stats(self) -> str:
        counts = {"messages": self.messages, "recipients": self.recipients, "bytes": self.bytes}
        return " ".join(f"{key}={value}" for key, value in {**counts, "connections": self.connections}.items())


def _address(argument: str, keyword: str) -> str | None:
    """`FROM:<a@b> SIZE=1` → "a@b"; None when it is not `keyword:<...>`."""
    head, colon, rest = argument.partition(":")
    if not colon or head.strip().upper() != keyword:
        return None
    rest = rest.strip()
    if not rest.startswith("<") or ">" not in rest:
        return None
    return rest[1 : rest.index(">")]


class Session:
    """One client connection: a line-by-line state machine fed what the socket received
    (`data_received`), replies in order through `write`; `closed` after QUIT."""

    def __init__(self, sink: Sink, write):
        self.sink = sink
        self.write = write
        self.closed = False
        self.buffer = bytearray()
        self.in_data = False
        self.too_big = False
        self.greeted = False
        self.mail_from: str | None = None
        self.rcpts: list[str] = []

    def greet(self) -> None:
        self.write(f"220 {HOSTNAME} ESMTP bench sink\r\n".encode())

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        replies = []
        while not self.closed:
            if self.in_data:
                if not self._take_data(replies):
                    break
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0:
                if len(self.buffer) > MAX_COMMAND_LINE:
                    self.buffer.clear()
                    replies.append("500 5.5.2 Line too long")
                break
            line = bytes(self.buffer[:end])
            del self.buffer[: end + 2]
            reply = self._command(line)
            replies.append(reply)
            if reply.startswith("221"):
                self.closed = True
        if replies:
            self.write(("\r\n".join(replies) + "\r\n").encode())

    # --- DATA ---------------------------------------------------------------------------

    def _take_data(self, replies: list) -> bool:
        """The message so far is self.buffer, preceded by an implied CRLF (so a dot on
        the first line is found like any other). True once its end was found."""
        end = self.buffer.find(b"\r\n.\r\n")
        if end < 0:
            if len(self.buffer) > MAX_MESSAGE_BYTES:
                # Keep the tail, which may hold the start of the terminator.
                del self.buffer[:-4]
                self.too_big = True
            return False
        content = bytes(self.buffer[2 : end + 2])
        del self.buffer[: end + 5]
        self.in_data = False
        if self.too_big:
            self.too_big = False
            replies.append("552 5.3.4 Message too big")
        else:
            unstuffed = (b"\r\n" + content).replace(b"\r\n.", b"\r\n")[2:] if self.sink.keep else b""
            number = self.sink.received(Message(self.mail_from, self.rcpts, unstuffed), len(content))
            replies.append(f"250 2.0.0 Ok: queued as {number}")
        self.mail_from, self.rcpts = None, []
        return True

    # --- commands -----------------------------------------------------------------------

    def _command(self, line: bytes) -> str:
        text = line.decode("utf-8", "replace")
        verb, _, argument = text.partition(" ")
        verb = verb.upper()
        handler = getattr(self, f"_do_{verb}", None) if verb.isalpha() else None
        if handler is None:
            return "500 5.5.2 Command not recognized"
        return handler(argument.strip())

    def _reset(self) -> None:
        self.mail_from, self.rcpts = None, []

    def _count_client(self) -> None:
        """A mail client's connection counts at its first HELO/EHLO: the bench's own XSTATS
        polls (a connection each, four a second in the catch-up) say neither."""
        if not self.greeted:
            self.sink.connected()
        self.greeted = True

    def _do_EHLO(self, argument: str) -> str:
        if not argument:
            return "501 5.5.4 Syntax: EHLO hostname"
        self._count_client()
        self._reset()
        lines = [f"250-{line}" for line in EHLO_LINES[:-1]]
        return "\r\n".join([*lines, f"250 {EHLO_LINES[-1]}"])

    def _do_HELO(self, argument: str) -> str:
        if not argument:
            return "501 5.5.4 Syntax: HELO hostname"
        self._count_client()
        self._reset()
        return f"250 {HOSTNAME}"

    def _do_MAIL(self, argument: str) -> str:
        if not self.greeted:
            return "503 5.5.1 Error: send HELO/EHLO first"
        if self.mail_from is not None:
            return "503 5.5.1 Error: nested MAIL command"
        address = _address(argument, "FROM")
        if address is None:
            return "501 5.5.4 Syntax: MAIL FROM:<address>"
        self.mail_from = address
        return "250 2.1.0 Ok"

    def _do_RCPT(self, argument: str) -> str:
        if self.mail_from is None:
            return "503 5.5.1 Error: need MAIL command"
        address = _address(argument, "TO")
        if not address:
            return "501 5.5.4 Syntax: RCPT TO:<address>"
        self.rcpts.append(address)
        return "250 2.1.5 Ok"

    def _do_DATA(self, argument: str) -> str:
        if argument:
            return "501 5.5.4 Syntax: DATA"
        if not self.rcpts:
            return "503 5.5.1 Error: need RCPT command"
        self.in_data = True
        # The implied CRLF before the first line (see _take_data).
        self.buffer[:0] = b"\r\n"
        return "354 End data with <CR><LF>.<CR><LF>"

    def _do_RSET(self, argument: str) -> str:
        self._reset()
        return "250 2.0.0 Ok"

    def _do_NOOP(self, argument: str) -> str:
        return "250 2.0.0 Ok"

    def _do_VRFY(self, argument: str) -> str:
        return "252 2.0.0 Cannot VRFY user, but will accept message"

    def _do_HELP(self, argument: str) -> str:
        return "214 2.0.0 EHLO HELO MAIL RCPT DATA RSET NOOP VRFY QUIT XSTATS"

    def _do_QUIT(self, argument: str) -> str:
        return "221 2.0.0 Bye"

    def _do_XSTATS(self, argument: str) -> str:
        return f"250 {self.sink.stats()}"


class _Connection(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        session = Session(self.server.sink, sock.sendall)
        session.greet()
        while not session.closed:
            data = sock.recv(65536)
            if not data:
                return
            session.data_received(data)


class Server(socketserver.ThreadingTCPServer):
    """`Server(sink, host, port)`; `serve_forever()` until `shutdown()`."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, sink: Sink, host: str, port: int):
        self.sink = sink
        super().__init__((host, port), _Connection)


def parse_stats(reply: str) -> dict[str, int]:
    """XSTATS's reply text → {"messages": …, "recipients": …, "bytes": …, "connections": …}."""
    return {key: int(value) for key, value in (part.split("=") for part in reply.split())}


def read_stats(host: str, port: int, timeout: float = 10) -> dict[str, int]:
    """Ask a running sink what it has received (over SMTP itself)."""
    import smtplib

    with smtplib.SMTP(host, port, timeout=timeout) as client:
        code, reply = client.docmd("XSTATS")
        if code != 250:
            raise RuntimeError(f"XSTATS answered {code} {reply!r}")
        return parse_stats(reply.decode())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    sink = Sink()
    server = Server(sink, args.host, args.port)
    # SIGTERM ends serve_forever from another thread (shutdown waits for the loop to stop).
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"bench sink listening on {args.host}:{args.port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    server.server_close()
    print(f"bench sink stopping: {sink.stats()}", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
