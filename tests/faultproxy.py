"""A small fault-injecting HTTP/1.1 reverse proxy for tests, on loopback.

It sits in front of a real S3 server and forwards every request byte for byte (the
Host header included, so SigV4 signatures stay valid), one fresh upstream connection
per request, while keeping the client's connection alive. A programmable plan of
faults decides, request by request, to answer with an S3 error instead, to reset the
connection part-way through the response body, to stall (accept and never answer), to
cut the connection part-way through the request body (``cut``: a connection lost
mid-upload), or to add latency (``delay``: once per request, or after every so many
bytes of body each way, a slow link). It counts the body bytes it relays each way
(``body_bytes``), so a test can act when a transfer is part-way through.

``TcpCutter`` (at the end) is the same idea one level down: a plain TCP relay that
resets a connection after N bytes in one direction (an SSH session dropped mid-stream).

Every blocking call has a timeout and every loop checks the stop flag, so ``stop()``
ends it promptly whatever the clients do.
"""

from __future__ import annotations

import re
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Self, cast
from urllib.parse import urlsplit

IO_TIMEOUT = 30.0
"""Longest any single socket read or write may block."""
IDLE_TIMEOUT = 60.0
"""A client connection that sends nothing for this long is closed."""
MAX_HEAD = 64 * 1024
_MESSAGES = {
    "SlowDown": "Please reduce your request rate.",
    "InternalError": "We encountered an internal error. Please try again.",
    "ServiceUnavailable": "Service is unable to handle request.",
}


@dataclass
class Fault:
    """One rule of the plan. ``kind`` is "status", "reset", "stall", "cut", "delay", "flip" or
    "flip-request".

    A rule matches a request by method and a regex searched in the request target
    (path and query) and, optionally, in one header's value. ``times=None`` means
    every matching request; otherwise the rule applies to the next ``times`` matches.
    """

    kind: str
    method: str | None = None
    path: str = ""
    header: tuple[str, str] | None = None
    times: int | None = 1
    status: int = 503
    code: str = "SlowDown"
    message: str = "Please reduce your request rate."
    after_bytes: int = 0
    applied: int = 0
    seconds: float = 0.0
    """``delay``: the added latency (per request, or per ``per_bytes`` of body)."""
    per_bytes: int = 0
    """``delay``: 0 adds ``seconds`` once, before the request goes upstream; N > 0 adds it
    after every N bytes of request body and of response body."""

    def matches(self, req: Request) -> bool:
        if self.times is not None and self.applied >= self.times:
            return False
        if self.method is not None and req.method != self.method.upper():
            return False
        if not re.search(self.path, req.target):
            return False
        if self.header is not None:
            name, pattern = self.header
            if not re.search(pattern, req.header(name) or ""):
                return False
        return True


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    headers: list[tuple[str, str]]

    def header(self, name: str) -> str | None:
        low = name.lower()
        return next((v for k, v in self.headers if k.lower() == low), None)


@dataclass(frozen=True)
class Seen:
    """A request the proxy received, and what it did with it ("forward" or the fault kind)."""

    method: str
    target: str
    range: str | None
    action: str


@dataclass
class _Conn:
    sock: socket.socket
    buf: bytearray = field(default_factory=bytearray)


class _Closed(Exception):
    """The peer went away (or the proxy is stopping)."""


_STREAMED = ("cut", "delay")
"""Fault kinds whose request body is relayed upstream piece by piece as it arrives."""


@dataclass
class _Pace:
    """A ``delay`` fault's pacing of one exchange: sleep ``seconds`` after every
    ``per_bytes`` of body, request and response counted together."""

    seconds: float
    per_bytes: int
    since: int = 0


class _LoopbackServer:
    """A listener on 127.0.0.1 with a thread per connection, all of them ended by ``stop()``:
    the sockets in ``_conns`` are shut down to wake threads blocked on them, and every
    wait checks ``_stop``. Subclasses say what to do with each accepted client."""

    def __init__(self, port: int = 0) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", port))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]

    def start(self) -> Self:
        self._spawn(self._accept_loop)
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            conns = list(self._conns)
        for s in conns:  # wake threads blocked in recv; each closes its own sockets
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        for t in list(self._threads):
            t.join(timeout=5)
        self._listener.close()

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads = [x for x in self._threads if x.is_alive()]
            self._threads.append(t)
        t.start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._accepted(client)

    def _accepted(self, client: socket.socket) -> None:
        raise NotImplementedError


class FaultProxy(_LoopbackServer):
    def __init__(self, upstream: str, port: int = 0) -> None:
        """``port``: where to listen (0: any free port); a given one lets a test stop the
        proxy and start another in its place, as the same endpoint."""
        parts = urlsplit(upstream)
        assert parts.scheme == "http" and parts.hostname and parts.port, upstream
        super().__init__(port)
        self._upstream = (parts.hostname, parts.port)
        self._faults: list[Fault] = []
        self._seen: list[Seen] = []
        self._body_up = 0  # request body bytes sent upstream (framing included)
        self._body_down = 0  # response body bytes sent to clients
        self.endpoint = f"http://127.0.0.1:{self.port}"

    # -- the plan ---------------------------------------------------------------------
    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def fail(
        self,
        times: int | None = 1,
        *,
        status: int = 503,
        code: str = "SlowDown",
        message: str | None = None,
        method: str | None = None,
        path: str = "",
        header: tuple[str, str] | None = None,
    ) -> Fault:
        """Answer matching requests with ``status`` and an S3 XML error body."""
        text = message or _MESSAGES.get(code, "The server could not handle the request.")
        return self.add(Fault("status", method, path, header, times, status, code, text))

    def reset(
        self,
        times: int | None = 1,
        *,
        after_bytes: int,
        method: str | None = "GET",
        path: str = "",
        header: tuple[str, str] | None = None,
    ) -> Fault:
        """Forward matching requests, then reset the connection after ``after_bytes`` of body."""
        return self.add(Fault("reset", method, path, header, times, after_bytes=after_bytes))

    def stall(
        self,
        times: int | None = 1,
        *,
        method: str | None = None,
        path: str = "",
        header: tuple[str, str] | None = None,
    ) -> Fault:
        """Read matching requests and never answer (until the client gives up or the proxy stops)."""
        return self.add(Fault("stall", method, path, header, times))

    def flip(
        self,
        times: int | None = 1,
        *,
        at: int,
        method: str | None = "GET",
        path: str = "",
        header: tuple[str, str] | None = None,
    ) -> Fault:
        """Forward matching requests, with the response body's byte at offset ``at``
        inverted (framing included, for a chunked body): bytes damaged on the way."""
        return self.add(Fault("flip", method, path, header, times, after_bytes=at))

    def flip_request(
        self,
        times: int | None = 1,
        *,
        at: int,
        method: str | None = "PUT",
        path: str = "",
        header: tuple[str, str] | None = None,
    ) -> Fault:
        """Forward matching requests with the request body's byte at offset ``at``
        inverted (framing included): an upload damaged on the way to the server."""
        return self.add(Fault("flip-request", method, path, header, times, after_bytes=at))

    def cut(
        self,
        times: int | None = 1,
        *,
        after_bytes: int,
        method: str | None = "PUT",
        path: str = "",
        header: tuple[str, str] | None = None,
    ) -> Fault:
        """Relay matching requests' bodies upstream as they arrive, then, after
        ``after_bytes`` of body (at most all but its last byte, so the server never has a
        whole request), reset the client's connection and drop the upstream one: a
        connection lost mid-upload. A request without a body is cut before it is sent."""
        return self.add(Fault("cut", method, path, header, times, after_bytes=after_bytes))

    def delay(
        self,
        seconds: float,
        times: int | None = None,
        *,
        per_bytes: int = 0,
        method: str | None = None,
        path: str = "",
        header: tuple[str, str] | None = None,
    ) -> Fault:
        """Forward matching requests late: ``seconds`` once before each goes upstream, or,
        with ``per_bytes``, ``seconds`` after every ``per_bytes`` of its request body and
        of its response body (a slow link: about per_bytes/seconds bytes/s per connection)."""
        return self.add(Fault("delay", method, path, header, times, seconds=seconds, per_bytes=per_bytes))

    def body_bytes(self) -> tuple[int, int]:
        """(request body bytes sent upstream, response body bytes sent to clients) so far."""
        with self._lock:
            return self._body_up, self._body_down

    def wait_body_bytes(self, *, up: int = 0, down: int = 0, timeout: float = 20.0) -> bool:
        """Wait until at least ``up`` request and ``down`` response body bytes went through;
        False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sent_up, sent_down = self.body_bytes()
            if sent_up >= up and sent_down >= down:
                return True
            time.sleep(0.01)
        return False

    def _count(self, up: int = 0, down: int = 0) -> None:
        with self._lock:
            self._body_up += up
            self._body_down += down

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def seen(self, method: str | None = None, path: str = "", action: str | None = None) -> list[Seen]:
        with self._lock:
            items = list(self._seen)
        return [
            s
            for s in items
            if (method is None or s.method == method.upper())
            and re.search(path, s.target)
            and (action is None or s.action == action)
        ]

    def _decide(self, req: Request) -> Fault | None:
        with self._lock:
            fault = next((f for f in self._faults if f.matches(req)), None)
            if fault is not None:
                fault.applied += 1
            self._seen.append(
                Seen(req.method, req.target, req.header("Range"), fault.kind if fault else "forward")
            )
            return fault

    # -- life cycle -------------------------------------------------------------------
    def _accepted(self, client: socket.socket) -> None:
        client.settimeout(IO_TIMEOUT)
        with self._lock:
            self._conns.add(client)
        self._spawn(self._serve, client)

    # -- one client connection ------------------------------------------------------------
    def _serve(self, client: socket.socket) -> None:
        conn = _Conn(client)
        try:
            while not self._stop.is_set():
                if not conn.buf and not self._wait_readable(client, IDLE_TIMEOUT):
                    return
                head = self._read_head(conn)
                if head is None:
                    return  # clean close between requests
                req, raw_head = head
                fault = self._decide(req)
                if fault is not None and fault.kind in _STREAMED:
                    if not self._forward_streamed(conn, req, raw_head, fault):
                        return
                    continue
                body = self._read_body(conn, req.headers)
                if fault is None:
                    keep = self._forward(client, req, raw_head, body, None)
                elif fault.kind == "status":
                    self._send_error(client, req, fault)
                    keep = True
                elif fault.kind == "reset":
                    keep = self._forward(client, req, raw_head, body, fault.after_bytes)
                elif fault.kind == "flip":
                    flipping = cast(socket.socket, _FlipBody(client, fault.after_bytes))
                    keep = self._forward(flipping, req, raw_head, body, None)
                elif fault.kind == "flip-request":
                    damaged = bytearray(body)
                    if fault.after_bytes < len(damaged):
                        damaged[fault.after_bytes] ^= 0xFF
                    keep = self._forward(client, req, raw_head, bytes(damaged), None)
                else:  # stall: hold the connection, answer nothing
                    self._stall(client)
                    return
                if not keep:
                    return
        except (_Closed, OSError):
            return
        finally:
            with self._lock:
                self._conns.discard(client)
            _close(client)

    def _wait_readable(self, sock: socket.socket, limit: float) -> bool:
        deadline = time.monotonic() + limit
        while not self._stop.is_set() and time.monotonic() < deadline:
            ready, _, _ = select.select([sock], [], [], 0.2)
            if ready:
                return True
        return False

    def _stall(self, client: socket.socket) -> None:
        """Never answer; return when the client closes or the proxy stops."""
        while self._wait_readable(client, IDLE_TIMEOUT * 10):
            try:
                if not client.recv(65536):
                    return
            except OSError:
                return

    def _recv(self, conn: _Conn) -> bool:
        if self._stop.is_set():
            raise _Closed
        data = conn.sock.recv(256 * 1024)
        if not data:
            return False
        conn.buf += data
        return True

    def _read_head(self, conn: _Conn) -> tuple[Request, bytes] | None:
        while b"\r\n\r\n" not in conn.buf:
            if len(conn.buf) > MAX_HEAD:
                raise _Closed
            if not self._recv(conn):
                if conn.buf:
                    raise _Closed
                return None
        end = conn.buf.index(b"\r\n\r\n") + 4
        raw = bytes(conn.buf[:end])
        del conn.buf[:end]
        lines = raw[:-4].decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])]
        return Request(method.upper(), target, headers), raw

    def _take(self, conn: _Conn, n: int) -> bytes:
        while len(conn.buf) < n:
            if not self._recv(conn):
                raise _Closed
        data = bytes(conn.buf[:n])
        del conn.buf[:n]
        return data

    def _take_line(self, conn: _Conn) -> bytes:
        while b"\r\n" not in conn.buf:
            if not self._recv(conn):
                raise _Closed
        end = conn.buf.index(b"\r\n") + 2
        return self._take(conn, end)

    def _read_body(self, conn: _Conn, headers: list[tuple[str, str]]) -> bytes:
        """The raw request body, framing included (so it forwards unchanged)."""
        values = {k.lower(): v for k, v in headers}
        if "chunked" in values.get("transfer-encoding", "").lower():
            return self._read_chunked(conn)
        return self._take(conn, int(values.get("content-length", "0") or 0))

    def _read_chunked(self, conn: _Conn) -> bytes:
        out = bytearray()
        while True:
            line = self._take_line(conn)
            out += line
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    trailer = self._take_line(conn)
                    out += trailer
                    if trailer == b"\r\n":
                        return bytes(out)
            out += self._take(conn, size + 2)

    def _send_error(self, client: socket.socket, req: Request, fault: Fault) -> None:
        resource = req.target.split("?", 1)[0]
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{fault.code}</Code><Message>{fault.message}</Message>"
            f"<Resource>{resource}</Resource><RequestId>faultproxy</RequestId></Error>"
        ).encode()
        reason = {500: "Internal Server Error", 503: "Service Unavailable"}.get(fault.status, "Error")
        head = (
            f"HTTP/1.1 {fault.status} {reason}\r\n"
            "Content-Type: application/xml\r\n"
            "x-amz-request-id: faultproxy\r\n"
            f"Content-Length: {0 if req.method == 'HEAD' else len(body)}\r\n\r\n"
        ).encode()
        client.sendall(head if req.method == "HEAD" else head + body)

    def _forward(
        self, client: socket.socket, req: Request, raw_head: bytes, body: bytes, reset_after: int | None
    ) -> bool:
        """Send the request upstream, stream the answer back; return whether to keep the
        client connection. With ``reset_after``, reset the client after that much body."""
        with socket.create_connection(self._upstream, timeout=IO_TIMEOUT) as up:
            with self._lock:
                self._conns.add(up)
            try:
                return self._exchange(client, req, up, raw_head + body, reset_after)
            finally:
                with self._lock:
                    self._conns.discard(up)

    def _exchange(
        self, client: socket.socket, req: Request, up: socket.socket, request: bytes, reset_after: int | None
    ) -> bool:
        up.sendall(request)
        self._count(up=len(request) - request.index(b"\r\n\r\n") - 4)
        return self._relay_response(client, req, _Conn(up), reset_after)

    def _relay_response(
        self,
        client: socket.socket,
        req: Request,
        upc: _Conn,
        reset_after: int | None,
        pace: _Pace | None = None,
    ) -> bool:
        """Stream the upstream's answer to the client (paced by a ``delay`` fault's
        ``per_bytes``); return whether to keep the client connection."""
        status_head = self._read_head_response(upc)
        client.sendall(status_head)
        status, headers = _parse_response_head(status_head)
        values = {k.lower(): v for k, v in headers}
        budget = [reset_after]

        def send(data: bytes) -> None:
            if budget[0] is not None:
                if len(data) >= budget[0]:
                    client.sendall(data[: budget[0]])
                    self._count(down=budget[0])
                    _reset(client)
                    raise _Closed
                budget[0] -= len(data)
            self._send_paced(client, data, pace, up=False)

        no_body = req.method == "HEAD" or status in (204, 304) or 100 <= status < 200
        if no_body:
            pass
        elif "chunked" in values.get("transfer-encoding", "").lower():
            self._relay_chunked(upc, send)
        elif "content-length" in values:
            left = int(values["content-length"])
            while left:
                if not upc.buf and not self._recv(upc):
                    raise _Closed
                piece = bytes(upc.buf[:left])
                del upc.buf[: len(piece)]
                left -= len(piece)
                send(piece)
        else:  # delimited by the upstream closing
            while True:
                if upc.buf:
                    send(bytes(upc.buf))
                    upc.buf.clear()
                if not self._recv(upc):
                    return False
        if budget[0] is not None:  # the body was shorter than the reset point
            _reset(client)
            raise _Closed
        return (
            values.get("connection", "").lower() != "close"
            and (req.header("Connection") or "").lower() != "close"
        )

    def _read_head_response(self, upc: _Conn) -> bytes:
        while True:
            head = self._read_head_raw(upc)
            if not head.startswith(b"HTTP/1.1 100") and not head.startswith(b"HTTP/1.0 100"):
                return head

    def _read_head_raw(self, upc: _Conn) -> bytes:
        while b"\r\n\r\n" not in upc.buf:
            if len(upc.buf) > MAX_HEAD or not self._recv(upc):
                raise _Closed
        end = upc.buf.index(b"\r\n\r\n") + 4
        head = bytes(upc.buf[:end])
        del upc.buf[:end]
        return head

    def _relay_chunked(self, upc: _Conn, send: Callable[[bytes], None]) -> None:
        while True:
            line = self._take_line(upc)
            send(line)
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while True:
                    trailer = self._take_line(upc)
                    send(trailer)
                    if trailer == b"\r\n":
                        return
            send(self._take(upc, size + 2))

    # -- cut and delay: the request body relayed as it arrives ----------------------------
    def _forward_streamed(self, conn: _Conn, req: Request, raw_head: bytes, fault: Fault) -> bool:
        """Forward one request for a ``cut`` or ``delay`` fault; return whether to keep
        the client connection (a cut never does)."""
        pace = (
            _Pace(fault.seconds, fault.per_bytes) if fault.kind == "delay" and fault.per_bytes > 0 else None
        )
        if fault.kind == "delay" and pace is None:
            self._pause(fault.seconds)
        with self._connect_upstream(small_buffer=pace is not None) as up:
            with self._lock:
                self._conns.add(up)
            try:
                if fault.kind == "cut":
                    self._send_cut(conn, req, raw_head, up, fault.after_bytes)
                up.sendall(raw_head)
                for piece in self._body_pieces(conn, req.headers):
                    self._send_paced(up, piece, pace, up=True)
                return self._relay_response(conn.sock, req, _Conn(up), None, pace)
            finally:
                with self._lock:
                    self._conns.discard(up)

    def _connect_upstream(self, *, small_buffer: bool) -> socket.socket:
        """A connection to the upstream. ``small_buffer``: a 64 KiB receive buffer (set
        before connecting, so the kernel does not grow it): when the answer is paced, the
        server is held back too, instead of having written megabytes into loopback
        buffers already (a server killed then would seem to finish sending)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.settimeout(IO_TIMEOUT)
            if small_buffer:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            sock.connect(self._upstream)
        except OSError:
            sock.close()
            raise
        return sock

    def _send_cut(self, conn: _Conn, req: Request, raw_head: bytes, up: socket.socket, after: int) -> None:
        """Send the head and at most ``after`` bytes of the body (never all of it), then
        reset both connections. Always raises ``_Closed``."""
        values = {k.lower(): v for k, v in req.headers}
        chunked = "chunked" in values.get("transfer-encoding", "").lower()
        pieces: Iterator[bytes]
        if chunked:
            whole = self._read_chunked(conn)
            total, pieces = len(whole), iter([whole])
        else:
            total, pieces = int(values.get("content-length", "0") or 0), self._body_pieces(conn, req.headers)
        if total > 0:  # a head announcing a body is never a whole request on its own
            up.sendall(raw_head)
            left = min(after, total - 1)
            for piece in pieces:
                if left <= 0:
                    break
                part = piece[:left]
                up.sendall(part)
                self._count(up=len(part))
                left -= len(part)
        _reset(conn.sock)
        _reset(up)
        raise _Closed

    def _body_pieces(self, conn: _Conn, headers: list[tuple[str, str]]) -> Iterator[bytes]:
        """The raw request body (framing included) in the pieces it arrives in; a chunked
        body is read whole first (it is one piece)."""
        values = {k.lower(): v for k, v in headers}
        if "chunked" in values.get("transfer-encoding", "").lower():
            yield self._read_chunked(conn)
            return
        left = int(values.get("content-length", "0") or 0)
        while left:
            if not conn.buf and not self._recv(conn):
                raise _Closed
            piece = bytes(conn.buf[:left])
            del conn.buf[: len(piece)]
            left -= len(piece)
            yield piece

    def _send_paced(self, sock: socket.socket, data: bytes, pace: _Pace | None, *, up: bool) -> None:
        """``sendall``, counted; with ``pace``, a pause after every ``per_bytes``."""
        at = 0
        while at < len(data):
            n = len(data) - at if pace is None else min(len(data) - at, pace.per_bytes - pace.since)
            sock.sendall(data[at : at + n])
            if up:
                self._count(up=n)
            else:
                self._count(down=n)
            at += n
            if pace is None:
                continue
            pace.since += n
            if pace.since >= pace.per_bytes:
                pace.since = 0
                self._pause(pace.seconds)

    def _pause(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise _Closed


class _FlipBody:
    """A client socket whose first ``sendall`` (the response head) goes out as is, and
    whose later ones (the body) have the byte at offset ``at`` of the body inverted."""

    def __init__(self, sock: socket.socket, at: int) -> None:
        self._sock = sock
        self._at = at
        self._head_sent = False

    def sendall(self, data: bytes) -> None:
        if not self._head_sent:
            self._head_sent = True
        elif 0 <= self._at < len(data):
            damaged = bytearray(data)
            damaged[self._at] ^= 0xFF
            self._at, data = -1, bytes(damaged)
        elif self._at >= 0:
            self._at -= len(data)
        self._sock.sendall(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def _parse_response_head(head: bytes) -> tuple[int, list[tuple[str, str]]]:
    lines = head[:-4].decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])]
    return status, headers


def _reset(sock: socket.socket) -> None:
    """Close with RST rather than FIN (SO_LINGER with a zero timeout)."""
    with suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    _close(sock)


def _close(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.close()


@contextmanager
def running(upstream: str, port: int = 0) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream, port).start()
    try:
        yield proxy
    finally:
        proxy.stop()


# -- a TCP relay that drops a connection after N bytes ---------------------------------


class TcpCutter(_LoopbackServer):
    """A TCP relay on loopback in front of ``upstream_port`` (an sshd, say). It counts the
    bytes it relays each way, and can reset a connection, both sides with RST, once
    ``up_after`` bytes went client -> server or ``down_after`` bytes server -> client on
    it: a link that dies part-way through a stream. ``times``: how many connections to
    cut (None: every one); ``set_cut`` changes the plan for connections opened later.

    One thread per connection; every wait is a 0.2 s select that checks the stop flag, so
    ``stop()`` ends it promptly."""

    def __init__(
        self,
        upstream_port: int,
        *,
        up_after: int | None = None,
        down_after: int | None = None,
        times: int | None = None,
    ) -> None:
        super().__init__()
        self._upstream = ("127.0.0.1", upstream_port)
        self._plan: tuple[int | None, int | None, int | None] = (up_after, down_after, times)
        self.up_bytes = 0
        self.down_bytes = 0
        self.connections = 0
        self.cuts = 0

    def set_cut(
        self, up_after: int | None = None, down_after: int | None = None, times: int | None = None
    ) -> None:
        with self._lock:
            self._plan = (up_after, down_after, times)

    def _accepted(self, client: socket.socket) -> None:
        with self._lock:
            up_after, down_after, times = self._plan
            cut = times is None or self.cuts < times  # a cut already spent does not repeat
            self.connections += 1
        self._spawn(self._relay, client, up_after if cut else None, down_after if cut else None)

    def _relay(self, client: socket.socket, up_after: int | None, down_after: int | None) -> None:
        try:
            server = socket.create_connection(self._upstream, timeout=IO_TIMEOUT)
        except OSError:
            _reset(client)
            return
        with self._lock:
            self._conns.update((client, server))
        budgets = {client: up_after, server: down_after}
        peer = {client: server, server: client}
        open_ends = {client, server}
        try:
            while open_ends and not self._stop.is_set():
                ready, _, _ = select.select(list(open_ends), [], [], 0.2)
                for src in ready:
                    data = src.recv(65536)
                    if not data:  # half-close: pass the FIN on
                        open_ends.discard(src)
                        with suppress(OSError):
                            peer[src].shutdown(socket.SHUT_WR)
                        continue
                    budget = budgets[src]
                    if budget is not None and len(data) >= budget:
                        peer[src].sendall(data[:budget])
                        self._tally(src is client, budget)
                        with self._lock:
                            self.cuts += 1
                        return
                    if budget is not None:
                        budgets[src] = budget - len(data)
                    peer[src].sendall(data)
                    self._tally(src is client, len(data))
        except OSError:
            return
        finally:
            with self._lock:
                self._conns.difference_update((client, server))
            _reset(client)
            _reset(server)

    def _tally(self, up: bool, n: int) -> None:
        with self._lock:
            if up:
                self.up_bytes += n
            else:
                self.down_bytes += n


@contextmanager
def tcp_cutter(
    upstream_port: int,
    *,
    up_after: int | None = None,
    down_after: int | None = None,
    times: int | None = None,
) -> Iterator[TcpCutter]:
    relay = TcpCutter(upstream_port, up_after=up_after, down_after=down_after, times=times).start()
    try:
        yield relay
    finally:
        relay.stop()
