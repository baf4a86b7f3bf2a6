"""Raw socket servers on 127.0.0.1 for tests: `RawServer` serves each connection in a thread of its own;
`Proxy` is a small forward proxy on it: CONNECT tunnels (HTTPS) and absolute-form requests (HTTP).

The proxy records each request as (method, target): the request head is read, then bytes are piped both
ways until either side closes.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from urllib.parse import urlsplit


def read_head(conn: socket.socket) -> bytes | None:
    """What the client sent up to the end of its request head (and what came with it); None if it closed first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    return data


class RawServer:
    """Listens on 127.0.0.1 (a free port) and hands each connection to `_handle` in a thread of its own."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self._lock = threading.Lock()
        self.errors: list[Exception] = []
        threading.Thread(target=self._serve, name=type(self).__name__, daemon=True).start()

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def close(self) -> None:
        """Stop listening: shut down first, which wakes the accepting thread (a bare close() leaves the socket
        listening in the kernel until that thread's accept() returns: a later test's stray connection was
        then handled here, and its error failed that test)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle_safely, args=(conn,), daemon=True).start()

    def _handle_safely(self, conn: socket.socket) -> None:
        """`_handle`, its errors kept in `errors` (a malformed request is the client's problem, not a failure
        of whichever test runs when the thread ends)."""
        try:
            self._handle(conn)
        except Exception as exc:  # a test server: kept for the test to look at
            self.errors.append(exc)
            with contextlib.suppress(OSError):
                conn.close()

    def _handle(self, conn: socket.socket) -> None:
        raise NotImplementedError


class Proxy(RawServer):
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        super().__init__()

    @property
    def url(self) -> str:
        return self.address

    def _handle(self, client: socket.socket) -> None:
        with client:
            received = read_head(client)
            if received is None:
                return
            head, _, rest = received.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ")
            with self._lock:
                self.seen.append((method, target))
            if method == "CONNECT":
                host, port = target.rsplit(":", 1)
                with socket.create_connection((host, int(port)), timeout=10) as upstream:
                    client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    _pipe(client, upstream, rest)
                return
            parts = urlsplit(target)  # absolute form: http://host:port/path
            origin = parts.path + (f"?{parts.query}" if parts.query else "")
            headers = [line for line in lines[1:] if not line.lower().startswith(("proxy-", "connection:"))]
            forwarded = "\r\n".join([f"{method} {origin} {version}", *headers, "Connection: close", "", ""])
            with socket.create_connection((parts.hostname, parts.port or 80), timeout=10) as upstream:
                upstream.sendall(forwarded.encode("latin-1") + rest)
                _pipe(client, upstream, b"", close_after_reply=True)


def _pipe(client: socket.socket, upstream: socket.socket, pending: bytes, close_after_reply: bool = False) -> None:
    """Copy bytes both ways until a side closes (with `close_after_reply`: until the upstream closes)."""
    if pending:
        upstream.sendall(pending)
    pair = {client: upstream, upstream: client}
    while True:
        readable, _, _ = select.select(list(pair), [], [], 30)
        if not readable:
            return
        for side in readable:
            data = side.recv(65536)
            if not data:
                if side is upstream or not close_after_reply:
                    return
                continue
            pair[side].sendall(data)
