"""The deliverer's transport (httpx over httpcore on asyncio streams) against real servers on 127.0.0.1:
plain HTTP with keep-alive, TLS with a test CA, refused connections, timeouts, and a server that closes an
idle kept-alive connection."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpcore
import httpx
import pytest
import pytest_asyncio
import trustme

from monitor.config.rules import Webhook
from monitor.notify.transport import AsyncioBackend, Clients, Transport
from tests.servers import RawServer, read_head

WAIT = 10.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        self.server.seen.append((self.client_address[1], body))
        self.server.headers_seen.append({name.lower(): value for name, value in self.headers.items()})
        close = self.server.close_after_reply
        self.send_response(200)
        if "cookie" in self.path:
            self.send_header("set-cookie", "session=kept; Path=/")
        self.send_header("content-length", str(len(body)))
        if close:
            self.send_header("connection", "close")
        self.end_headers()
        self.wfile.write(body)  # echo
        if close:
            self.close_connection = True

    def setup(self) -> None:
        self.timeout = self.server.idle_timeout  # a kept-alive connection idle this long is closed
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[tuple[int, bytes]] = []
        self.headers_seen: list[dict[str, str]] = []
        self.close_after_reply = False
        self.idle_timeout: float | None = None
        self.closed = threading.Event()  # the server closed a connection
        if context is not None:
            self.socket = context.wrap_socket(self.socket, server_side=True)

    def shutdown_request(self, request: Any) -> None:
        """The connection shut down and closed (its FIN sent), then `closed` set: set in the handler's
        `finish`, before the socket was closed, it let the client reuse a connection about to close (a race
        that failed CI once)."""
        super().shutdown_request(request)
        self.closed.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


@pytest.fixture
def server() -> Iterator[_Server]:
    yield from _serve(None)


def _serve(context: ssl.SSLContext | None) -> Iterator[_Server]:
    server = _Server(context)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=Transport(), follow_redirects=False) as client:
        yield client


@pytest.mark.asyncio
async def test_posts_keep_one_connection_alive(client: httpx.AsyncClient, server: _Server) -> None:
    for n in range(3):
        response = await asyncio.wait_for(client.post(server.url, content=b"alert %d" % n), WAIT)
        assert (response.status_code, response.content) == (200, b"alert %d" % n)
    assert [body for _, body in server.seen] == [b"alert 0", b"alert 1", b"alert 2"]
    assert len({port for port, _ in server.seen}) == 1, "one kept-alive connection"


class _ClosesAtOnce(RawServer):
    """Answers each request 200 and closes the connection 10 ms later, without `Connection: close`."""

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            if read_head(conn) is None:
                return
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            time.sleep(0.01)  # then closes: after the client has read the response, while its loop is busy


@pytest.mark.asyncio
async def test_a_connection_closed_while_the_loop_was_busy_is_not_reused() -> None:
    """A receiver that closes each connection right after its response, without `Connection: close`, while
    the loop is busy (matching a burst): the close is not read by the loop yet, but the keep-alive check's
    poll sees it, so no POST goes out on the closed connection (a version that skipped the poll for a
    connection used in the last 0.5 s failed every other POST)."""
    server = _ClosesAtOnce()
    url = server.address + "/hook"
    statuses: list[int] = []
    async with httpx.AsyncClient(transport=Transport(connections=1)) as client:
        for _ in range(10):
            response = await asyncio.wait_for(client.post(url, content=b"x"), WAIT)
            statuses.append(response.status_code)
            time.sleep(0.05)  # the loop is busy (the scenario): the server's close arrives meanwhile
    server.close()
    assert statuses == [200] * 10


@pytest.mark.asyncio
async def test_the_pool_runs_on_the_asyncio_backend(monkeypatch: pytest.MonkeyPatch, server: _Server) -> None:
    connects: list[tuple[str, int]] = []
    original = AsyncioBackend.connect_tcp

    async def counted(self: AsyncioBackend, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        connects.append((host, port))
        return await original(self, host, port, *args, **kwargs)

    monkeypatch.setattr(AsyncioBackend, "connect_tcp", counted)
    async with httpx.AsyncClient(transport=Transport()) as client:
        assert (await asyncio.wait_for(client.post(server.url, content=b"x"), WAIT)).status_code == 200
    assert connects == [("127.0.0.1", server.server_address[1])]


@pytest.mark.asyncio
async def test_a_kept_alive_connection_the_server_closed_is_not_reused(
    client: httpx.AsyncClient, server: _Server
) -> None:
    server.idle_timeout = 0.2
    first = await asyncio.wait_for(client.post(server.url, content=b"one"), WAIT)
    assert await asyncio.to_thread(server.closed.wait, WAIT), "the server closes the idle connection"
    second = await asyncio.wait_for(client.post(server.url, content=b"two"), WAIT)
    assert (first.status_code, second.status_code) == (200, 200)
    assert len({port for port, _ in server.seen}) == 2, "the second request on a new connection"


@pytest.mark.asyncio
async def test_connection_close_from_the_server_is_honoured(client: httpx.AsyncClient, server: _Server) -> None:
    server.close_after_reply = True
    first = await asyncio.wait_for(client.post(server.url, content=b"one"), WAIT)
    server.close_after_reply = False
    second = await asyncio.wait_for(client.post(server.url, content=b"two"), WAIT)
    assert (first.status_code, second.status_code) == (200, 200)
    assert len({port for port, _ in server.seen}) == 2


@pytest.mark.asyncio
async def test_tls_with_a_trusted_certificate() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    for server in _serve(server_context):
        url = server.url.replace("http://", "https://")
        async with httpx.AsyncClient(transport=Transport(verify=client_context)) as client:
            response = await asyncio.wait_for(client.post(url, content=b"secret alert"), WAIT)
            assert (response.status_code, response.content) == (200, b"secret alert")
            assert response.extensions["http_version"] == b"HTTP/1.1"
        async with httpx.AsyncClient(transport=Transport()) as untrusting:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await asyncio.wait_for(untrusting.post(url, content=b"x"), WAIT)


@pytest.mark.asyncio
async def test_a_refused_connection_is_a_connect_error(client: httpx.AsyncClient) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(httpx.ConnectError):
        await asyncio.wait_for(client.post(f"http://127.0.0.1:{port}/hook", content=b"x"), WAIT)


@pytest.mark.asyncio
async def test_a_silent_server_is_a_read_timeout(client: httpx.AsyncClient) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(httpx.ReadTimeout):
            await asyncio.wait_for(client.post(url, content=b"x", timeout=0.3), WAIT)
        assert 0.25 <= loop.time() - start < 5


@pytest.mark.asyncio
async def test_a_response_closed_before_its_end_closes_its_connection(
    client: httpx.AsyncClient, server: _Server
) -> None:
    """What the deliverer does past its 64 KB cap: the connection, with unread bytes, is not pooled."""
    big = b"x" * 4_000_000
    async with client.stream("POST", server.url, content=big) as response:
        async for chunk in response.aiter_raw():
            assert chunk
            break
    second = await asyncio.wait_for(client.post(server.url, content=b"two"), WAIT)
    assert (second.status_code, second.content) == (200, b"two")
    assert len({port for port, _ in server.seen}) == 2, "the second request on a new connection"


# -- pool limits and proxies ------------------------------------------------------------------------------------
def test_the_pool_is_sized_and_idle_connections_expire() -> None:
    pool = Transport(connections=32)._pool
    assert isinstance(pool, httpcore.AsyncConnectionPool)
    assert (pool._max_connections, pool._max_keepalive_connections, pool._keepalive_expiry) == (32, 32, 5.0)


def test_a_proxied_transport_is_an_http_proxy_pool_on_the_asyncio_backend() -> None:
    pool = Transport(connections=4, proxy="http://user:pw@proxy.test:3128")._pool
    assert isinstance(pool, httpcore.AsyncHTTPProxy)
    assert pool._proxy_url.host == b"proxy.test" and pool._proxy_url.port == 3128
    assert isinstance(pool._network_backend, AsyncioBackend)
    assert pool._max_connections == 4


WEBHOOK = "https://hooks.example.com/x"


@pytest.mark.parametrize(
    ("environ", "url", "configured", "expected"),
    [
        ({}, WEBHOOK, None, None),
        ({"HTTPS_PROXY": "http://p:3128"}, WEBHOOK, None, "http://p:3128"),
        ({"https_proxy": "http://lower:1", "HTTPS_PROXY": "http://upper:2"}, WEBHOOK, None, "http://lower:1"),
        ({"HTTPS_PROXY": "p:3128"}, WEBHOOK, None, "http://p:3128"),
        ({"HTTP_PROXY": "http://p:3128"}, WEBHOOK, None, None),
        ({"HTTP_PROXY": "http://p:3128"}, "http://hooks.example.com/x", None, "http://p:3128"),
        ({"ALL_PROXY": "http://all:1"}, WEBHOOK, None, "http://all:1"),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "example.com"}, WEBHOOK, None, None),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": ".example.com"}, WEBHOOK, None, None),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "ample.com"}, WEBHOOK, None, "http://p:1"),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "*"}, WEBHOOK, None, None),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "other.org, hooks.example.com"}, WEBHOOK, None, None),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "hooks.example.com:8443"}, WEBHOOK, None, "http://p:1"),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "hooks.example.com:443"}, WEBHOOK, None, None),
        ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "10.0.0.0/8"}, "http://10.1.2.3/x", None, None),
        ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "::1"}, "http://[::1]:80/x", None, None),
        ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "2.3"}, "http://10.1.2.3/x", None, "http://p:1"),
        ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "10.1.2.3"}, "http://10.1.2.3/x", None, None),
        ({"ALL_PROXY": "socks5://p:1080"}, WEBHOOK, None, None),
        ({"ALL_PROXY": "socks5://p:1080", "HTTPS_PROXY": "http://p:1"}, WEBHOOK, None, "http://p:1"),
        ({"HTTPS_PROXY": "http://p:1"}, WEBHOOK, "direct", None),
        ({"HTTPS_PROXY": "http://p:1"}, WEBHOOK, "http://own:2", "http://own:2"),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "*"}, WEBHOOK, "http://own:2", "http://own:2"),
    ],
    ids=lambda value: str(value) if not isinstance(value, dict) else ",".join(f"{k}={v}" for k, v in value.items()),
)
def test_a_webhook_proxy_comes_from_its_setting_or_the_environment(
    environ: dict[str, str], url: str, configured: str | None, expected: str | None
) -> None:
    assert Clients(8, environ).proxy_for(url, configured) == expected


@pytest.mark.asyncio
async def test_clients_share_one_client_per_proxy() -> None:
    clients = Clients(8, {"HTTPS_PROXY": "http://p:1"})
    try:
        direct = Webhook.model_validate({"url": "https://a.example/x", "proxy": "direct"})
        via_env = [Webhook.model_validate({"url": f"https://{h}.example/x"}) for h in "bc"]
        assert clients(via_env[0]) is clients(via_env[1]) is not clients(direct)
    finally:
        await clients.aclose()


@pytest.mark.asyncio
async def test_clients_send_past_the_client_layers_on_one_kept_alive_connection(server: _Server) -> None:
    """`Clients.send` hands the request to the webhook's transport: the response comes back with its body
    unread and its request, and the pool keeps the connection for the next one."""
    clients = Clients(8, {})
    webhook = Webhook.model_validate({"url": server.url})
    try:
        async with asyncio.timeout(WAIT):
            for n in range(2):
                request = clients(webhook).build_request("POST", webhook.url, content=b"alert %d" % n, timeout=WAIT)
                response = await clients.send(webhook, request)
                assert not response.is_stream_consumed and response.request is request
                assert (response.status_code, await response.aread()) == (200, b"alert %d" % n)
                await response.aclose()
        assert len({port for port, _ in server.seen}) == 1
    finally:
        await clients.aclose()


@pytest.mark.asyncio
async def test_clients_send_errors_carry_their_request() -> None:
    """An error of the transport, raised past the client, still names its request, as the client's do."""
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/hook"
    clients = Clients(8, {})
    webhook = Webhook.model_validate({"url": url})
    try:
        request = clients(webhook).build_request("POST", url, content=b"x", timeout=WAIT)
        with pytest.raises(httpx.ConnectError) as raised:
            await asyncio.wait_for(clients.send(webhook, request), WAIT)
        assert raised.value.request is request
    finally:
        await clients.aclose()


@pytest.mark.asyncio
@pytest.mark.parametrize("userinfo", ["", "hook:s3cret@"])
async def test_a_receivers_cookie_is_not_sent_back(server: _Server, userinfo: str) -> None:
    """A webhook is no browser session: a cookie one receiver sets is neither kept nor sent on (to it or to
    another webhook of the same host), whichever way the request goes. A URL's user:password becomes basic
    auth (through httpx's client)."""
    clients = Clients(8, {})
    url = server.url.replace("http://", f"http://{userinfo}")
    webhook = Webhook.model_validate({"url": url + "?cookie"})
    try:
        async with asyncio.timeout(WAIT):
            for _ in range(2):
                request = clients(webhook).build_request("POST", webhook.url, content=b"x", timeout=WAIT)
                response = await clients.send(webhook, request)
                assert "session=kept" in response.headers["set-cookie"]
                await response.aread()
                await response.aclose()
        assert [headers.get("cookie") for headers in server.headers_seen] == [None, None]
        authorization = {headers.get("authorization") for headers in server.headers_seen}
        assert authorization == ({"Basic aG9vazpzM2NyZXQ="} if userinfo else {None})
    finally:
        await clients.aclose()


_FIRST_POST = """
import asyncio, sys
from monitor.notify.transport import Clients

async def main(url: str, warm: bool) -> None:
    clients = Clients(2)
    if warm:
        await Clients.warm()
    before = set(sys.modules)
    client = clients._client(None)
    response = await client.post(url, content=b"{}")
    assert response.status_code == 200, response
    await clients.aclose()
    print(" ".join(sorted(set(sys.modules) - before)))

asyncio.run(main(sys.argv[1], sys.argv[2] == "warm"))
"""


@pytest.mark.parametrize("warm", [True, False])
def test_after_warm_the_first_post_loads_no_module(server: _Server, warm: bool) -> None:
    """`Clients.warm` (at the daemon's start-up) loads what the first POST would load: anyio's asyncio backend
    and the rest, tens of milliseconds on the first alert's path. In a fresh interpreter; without the warm-up
    the same POST loads them (the test can see them)."""
    done = subprocess.run(
        [sys.executable, "-c", _FIRST_POST, server.url, "warm" if warm else "cold"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = done.stdout.split()
    if warm:
        assert loaded == []
    else:
        assert "anyio._backends._asyncio" in loaded
