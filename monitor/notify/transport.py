"""The deliverer's HTTP transport: httpx over httpcore, with httpcore's network layer on asyncio's own streams.

httpx's default network layer goes through anyio, and on a busy daemon that costs more CPU than the rest of
a POST: a cancel scope per read and write, and a fresh dict of socket attributes on every keep-alive check
of every pooled connection. `AsyncioBackend` implements httpcore's documented network-backend interface
(`httpcore.AsyncNetworkBackend`) on `asyncio.open_connection`: TCP, TLS by `start_tls`, timeouts by
`asyncio.timeout`, and the keep-alive check as one `poll` of the socket. Everything above it, HTTP/1.1,
the connection pool, HTTP proxies and CONNECT tunnels, TLS defaults (`httpx.create_ssl_context`), is httpx's
and httpcore's. About half the CPU per POST (benchmarks/README.md).

A custom transport turns off httpx's proxies from the environment, so `Clients` chooses each webhook's
proxy itself, from the webhook's `proxy:` or the environment's variables, with curl's NO_PROXY rules.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import select
import socket
import ssl
import urllib.parse
from collections.abc import Iterable, Mapping
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import httpcore
import httpx
import structlog

if TYPE_CHECKING:
    from monitor.config.rules import Webhook

log = structlog.get_logger(__name__)

SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]


class AsyncioStream(httpcore.AsyncNetworkStream):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._fd = writer.get_extra_info("socket").fileno()

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError:
            raise httpcore.ReadTimeout(f"no data within {timeout}s") from None
        except OSError as exc:
            raise httpcore.ReadError(str(exc) or type(exc).__name__) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            async with asyncio.timeout(timeout):
                self._writer.write(buffer)
                await self._writer.drain()
        except TimeoutError:
            raise httpcore.WriteTimeout(f"could not write within {timeout}s") from None
        except OSError as exc:
            raise httpcore.WriteError(str(exc) or type(exc).__name__) from exc

    async def aclose(self) -> None:
        self._writer.close()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"no TLS handshake within {timeout}s") from None
        except OSError as exc:  # ssl.SSLError included
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":  # an idle pooled connection that is readable was closed by the server
            return self._reader.at_eof() or _readable(self._fd)
        if info == "ssl_object":
            return self._writer.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._writer.get_extra_info("sockname")
        if info == "server_addr":
            return self._writer.get_extra_info("peername")
        if info == "socket":
            return self._writer.get_extra_info("socket")
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, local_addr=(local_address, 0) if local_address else None
                )
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"no connection within {timeout}s") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for option in socket_options or ():
            sock.setsockopt(*option)
        return AsyncioStream(reader, writer)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_unix_connection(path)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"no connection within {timeout}s") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        return AsyncioStream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


KEEPALIVE_EXPIRY = 5.0  # seconds an idle pooled connection is kept (httpx's default)


class Transport(httpx.AsyncHTTPTransport):
    """httpx's HTTP transport with its connection pool on `AsyncioBackend` (httpx's TLS defaults): up to
    `connections` connections, idle ones closed after KEEPALIVE_EXPIRY; through an HTTP proxy if given
    (plain HTTP forwarded, HTTPS tunnelled with CONNECT)."""

    def __init__(self, verify: ssl.SSLContext | bool = True, connections: int = 10, proxy: str | None = None) -> None:
        super().__init__(verify=verify)
        context = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify=verify)
        limits: dict[str, Any] = {
            "ssl_context": context,
            "max_connections": connections,
            "max_keepalive_connections": connections,
            "keepalive_expiry": KEEPALIVE_EXPIRY,
            "network_backend": AsyncioBackend(),
        }
        if proxy is None:
            self._pool = httpcore.AsyncConnectionPool(**limits)
            return
        url = httpx.Proxy(proxy)
        self._pool = httpcore.AsyncHTTPProxy(
            proxy_url=httpcore.URL(scheme=url.url.raw_scheme, host=url.url.raw_host, port=url.url.port, target=b"/"),
            proxy_ssl_context=context if url.url.scheme == "https" else None,  # verified as webhooks are
            proxy_auth=url.raw_auth,
            proxy_headers=url.headers.raw,
            **limits,
        )


class Clients:
    """The deliverer's HTTP clients: one direct, one per proxy, made when first needed, each with a pool of
    `connections`. A webhook's proxy is its own `proxy:` (`direct`: none), else the environment's
    (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY, read once, as curl and httpx read them)."""

    def __init__(self, connections: int, environ: Mapping[str, str] | None = None) -> None:
        self.connections = connections
        self._proxies = _environment_proxies(os.environ if environ is None else environ)
        self._context = httpx.create_ssl_context()  # tens of milliseconds (the CA bundle): once, at start-up
        self._clients: dict[str | None, httpx.AsyncClient] = {}
        self._transports: dict[str | None, Transport] = {}
        self._chosen: dict[tuple[str, str | None], str | None] = {}
        self._client(None)

    def __call__(self, webhook: Webhook) -> httpx.AsyncClient:
        return self._client(self._proxy(webhook))

    async def send(self, webhook: Webhook, request: httpx.Request) -> httpx.Response:
        """Send a request built by the webhook's client (`build_request`), its response's body unread: straight
        to the client's transport, past httpx's client layers (auth, redirects, cookies, event hooks), which
        cost about a fifth of a POST's CPU (benchmarks/post.py) and do nothing for a webhook. Redirects are not
        followed either way; a receiver's cookies are neither kept nor sent (a jar that refuses them all). A URL
        with `user:password@` goes through the client, which turns them into basic auth. Unlike the client's,
        the response has no `elapsed` and no `next_request`; its errors carry the request, as the client's do."""
        proxy = self._proxy(webhook)
        client = self._client(proxy)
        if request.url.userinfo:
            return await client.send(request, stream=True, follow_redirects=False)
        try:
            response = await self._transports[proxy].handle_async_request(request)
        except httpx.RequestError as exc:
            exc.request = request
            raise
        response.request = request
        return response

    def _proxy(self, webhook: Webhook) -> str | None:
        key = (webhook.url, webhook.proxy)
        if key not in self._chosen:
            self._chosen[key] = self.proxy_for(webhook.url, webhook.proxy)
        return self._chosen[key]

    def _client(self, proxy: str | None) -> httpx.AsyncClient:
        client = self._clients.get(proxy)
        if client is None:
            transport = self._transports[proxy] = Transport(self._context, connections=self.connections, proxy=proxy)
            client = self._clients[proxy] = httpx.AsyncClient(
                follow_redirects=False, transport=transport, cookies=CookieJar(DefaultCookiePolicy(allowed_domains=[]))
            )
        return client

    def proxy_for(self, url: str, configured: str | None = None) -> str | None:
        """The proxy URL for a webhook URL, or None to connect directly."""
        if configured is not None:
            return None if configured == DIRECT else configured
        parts = urllib.parse.urlsplit(url)
        proxy = self._proxies.get(parts.scheme) or self._proxies.get("all")
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
        if proxy is None or _bypassed(parts.hostname or "", port, self._proxies.get("no", "")):
            return None
        return proxy if "://" in proxy else f"http://{proxy}"

    @staticmethod
    async def warm() -> None:
        """Load now what httpcore loads on a pool's first request: its locks, events and semaphores are anyio's,
        and anyio imports its asyncio backend when first used (tens of milliseconds, on the first alert's
        path otherwise). anyio's public API, used as httpcore uses it."""
        async with anyio.Lock():
            pass
        event = anyio.Event()
        event.set()
        with anyio.move_on_after(1):
            await event.wait()
        async with anyio.Semaphore(1):
            pass
        with anyio.CancelScope(shield=True):
            await anyio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()  # and its transport
        self._clients.clear()
        self._transports.clear()


DIRECT = "direct"  # a webhook's `proxy:` that connects directly whatever the environment says


def _bypassed(host: str, port: int | None, no_proxy: str) -> bool:
    """Whether NO_PROXY names the host, as curl reads it: `*` for every host; `example.com` or `.example.com`
    for it and its subdomains; an IP address or a CIDR range; `host:port` for one port only."""
    host = host.lower().strip("[]")
    for entry in no_proxy.lower().replace(" ", "").split(","):
        name, _, only = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry == "*" or ("/" in entry and _in_network(host, entry)):
            return True
        if not name or (only and only != str(port)):
            continue
        name = name.lstrip(".").strip("[]")
        if host == name or (not _is_address(host) and host.endswith("." + name)):  # an address: exactly
            return True
    return False


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _in_network(host: str, cidr: str) -> bool:
    try:
        return ipaddress.ip_address(host) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:  # not an address, or not a range
        return False


def _environment_proxies(environ: Mapping[str, str]) -> dict[str, str]:
    """`<scheme>_proxy` variables by scheme ("no" for NO_PROXY), lower case winning, as curl reads them
    (but from `environ`: the daemon's environment at start-up, or a test's). A proxy of a scheme other than
    http or https (socks5://) is left out with a warning: sent a CONNECT, it would only time out."""
    found: dict[str, str] = {}
    for name, value in environ.items():
        if value and name[-6:].lower() == "_proxy":
            found.setdefault(name[:-6].lower(), value)
    for name, value in environ.items():  # lower case wins
        if value and name.endswith("_proxy"):
            found[name[:-6]] = value
    for scheme, value in list(found.items()):
        if scheme != "no" and "://" in value and not value.lower().startswith(("http://", "https://")):
            log.warning("proxy_ignored", variable=f"{scheme}_proxy", why="only http:// and https:// proxies")
            del found[scheme]
    return found


def _readable(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))
