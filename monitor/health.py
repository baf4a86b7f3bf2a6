"""Health and metrics on a local port: `/healthz`, `/readyz`, `/metrics` (Prometheus text format), and
`POST /-/reload` (the rules, as SIGHUP does).

A deliberately small HTTP/1.1 responder on asyncio streams: four routes, one request a connection. Requests
are parsed by h11; connections, their time and their size are bounded (README, "Health"). It knows the daemon
only through callables (`Health`, the reload), so this module never imports monitor.daemon.
"""

from __future__ import annotations

import asyncio
import os
import platform
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING

import h11
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor import __version__
from monitor.errors import ConfigError

if TYPE_CHECKING:
    from monitor.config.settings import HttpSettings
    from monitor.store import Store

log = structlog.get_logger(__name__)
MAX_REQUEST_BYTES = 8192  # the request line and headers together; a probe's request is about 100 bytes
ACCEPT_BATCH = 16  # the most connections accepted in one turn of the loop, before the cap applies to them
# Connections the kernel holds until they are accepted (capped by net.core.somaxconn, 4096 on current kernels).
# Deeper than a flood of 2,000: with 1,024 the queue overflowed once or twice a run of the slowloris test, and a
# probe whose SYN was dropped waited for its retransmission, 1 s (seen in CI: a /healthz answer in 1.04 s).
LISTEN_BACKLOG = 4096
LINGER_SECONDS = 1.0  # after an answer, how long the client may take to close (its unread input is discarded)
# a browser sends one of these with every request a web page makes (Origin on every POST, same-origin too):
# no page may make the daemon reload (cross-site forms, DNS rebinding)
_FROM_A_PAGE = {b"origin", b"referer", b"sec-fetch-site", b"sec-fetch-mode"}
REFUSALS_LOGGED_EVERY = 60.0  # seconds: refused requests are one log line at most this often


Reload = Callable[[], Awaitable[list[str]]]  # reloads the rules; the problems that refused the new file


@dataclass(frozen=True, slots=True)
class Health:
    """What /readyz asks the daemon, as callables that read the outcome of its own checks (the observer and
    the state store are checked every 2 s in a thread: a hung share or store never hangs /readyz)."""

    started: Callable[[], bool]
    observer_ok: Callable[[], bool]
    scheduler_running: Callable[[], bool]
    store_ok: Callable[[], bool]
    missing_folders: Callable[[], list[str]]

    def problems(self) -> list[str]:
        """What keeps the daemon from being ready; empty when it is."""
        if not self.started():
            return ["starting"]
        found = [f"watched folder missing: {folder}" for folder in self.missing_folders()]
        if not self.observer_ok():
            found.append("observer not running")
        if not self.scheduler_running():
            found.append("scheduler not running")
        if not self.store_ok():
            found.append("state store not writable")
        return found


class Metrics:
    """The daemon's Prometheus metrics, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.articles = Counter("monitor_articles", "Article files processed, by outcome", ["outcome"], registry=r)
        self.rejections = Counter("monitor_rejections", "Article files rejected, by reason", ["reason"], registry=r)
        self.matches = Counter("monitor_matches", "Rule matches, by rule", ["rule"], registry=r)
        self.attempts = Counter(
            "monitor_delivery_attempts", "Delivery attempts, by outcome and webhook", ["outcome", "webhook"], registry=r
        )
        self.latency = Histogram(
            "monitor_file_to_delivery_seconds",
            "From an article file's last write to its alert's successful delivery",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
            registry=r,
        )
        self.observer_restarts = Counter("monitor_observer_restarts", "Observer restarts", registry=r)
        self.handed_over = Counter(
            "monitor_deliveries_handed_over",
            "Deliveries leased in the transaction of the ingest batch that queued them and handed straight to the "
            "deliverer (the others are taken from the outbox)",
            registry=r,
        )
        self.reload_failures = Counter("monitor_reload_failures", "Rules reloads refused", registry=r)
        self.reload_ok = Gauge(
            "monitor_config_last_reload_successful", "Whether the last rules reload succeeded (1) or not", registry=r
        )
        self.reload_ok.set(1)  # the rules in force at start-up loaded
        self.reload_time = Gauge(
            "monitor_config_last_reload_success_timestamp_seconds",
            "When the rules in force were loaded (Unix time)",
            registry=r,
        )
        self.reload_time.set_to_current_time()
        build = Gauge("monitor_build_info", "The running version, always 1", ["version", "python"], registry=r)
        build.labels(__version__, platform.python_version()).set(1)
        ProcessCollector(registry=r)  # process_cpu_seconds_total, process_resident_memory_bytes, ... (Linux)
        self.queue_overflows = Counter("monitor_queue_overflows", "Paths dropped by a full queue", registry=r)
        self.reconciles = Counter("monitor_reconcile_scans", "Reconcile scans of the watched folders done", registry=r)
        self.pruned = Counter(
            "monitor_pruned_rows", "Rows deleted by the retention prune, by table", ["table"], registry=r
        )
        self.http_refused = Counter(
            "monitor_http_refused", "Health port connections refused or dropped, by reason", ["reason"], registry=r
        )


class StateCollector(Collector):
    """Gauges read at scrape time: the ingest queue and the outbox backlog by state."""

    def __init__(self, queued: Callable[[], int], store: Store) -> None:
        self.queued, self.store = queued, store
        self._query = threading.Lock()  # scrapes at once take turns: one connection (monitor.daemon.CONNECTIONS)

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("monitor_queue_depth", "Paths waiting to be read", value=self.queued())
        backlog = GaugeMetricFamily("monitor_outbox", "Deliveries in the outbox, by state", labels=["state"])
        with self._query:
            counts = self.store.count_deliveries_by_state()
        for state, count in counts.items():
            backlog.add_metric([state], count)
        yield backlog


class HealthServer:
    """The HTTP/1.1 responder, bounded against slow and hostile clients: at most `max_connections` at once,
    one deadline for the whole request, a cap on its size, GET and HEAD only but for `POST /-/reload` (off
    when `reload` is None: http.reload, README "Health"). One request a connection."""

    def __init__(self, health: Health, settings: HttpSettings, metrics: Metrics, reload: Reload | None) -> None:
        self.health = health
        self.host, self.port = settings.host, settings.port
        self.max_connections = settings.max_connections
        self.deadline = settings.request_timeout.total_seconds()
        self.registry = metrics.registry
        self.refusals = _Refusals(metrics.http_refused)
        self.reload = reload
        self._reloads = asyncio.Lock()  # POSTs take turns; those that come while one waits share it
        self._queued: asyncio.Future[list[str]] | None = None  # the reload that waits its turn
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.WriteTransport] = set()  # every connection
        self._waiting: dict[asyncio.WriteTransport, None] = {}  # those waiting for their client, oldest first

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(self._handle, self.host, self.port, backlog=ACCEPT_BATCH)
        except OSError as exc:  # before any article is read: one line, exit status 1
            raise ConfigError(f"http.port: cannot listen on {self.host}:{self.port}: {exc.strerror}") from None
        for listening in self._server.sockets:  # asyncio's backlog is both: the kernel's queue made deeper
            with socket.socket(fileno=os.dup(listening.fileno())) as same:
                same.listen(LISTEN_BACKLOG)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("health_listening", address=f"http://{self.host}:{self.port}")

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for transport in self._open:
                transport.abort()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        transport = writer.transport
        await asyncio.sleep(0)  # one turn of the loop: a request sent at once is here now, see _admit
        if not self._admit(transport):
            transport.abort()
            return
        try:
            await self._serve(reader, writer)
        except OSError:  # the client went away, or did not take its answer in time (TimeoutError)
            pass
        finally:
            self._open.discard(transport)
            self._waiting.pop(transport, None)
            transport.abort()  # the descriptor is freed now, whatever the client does

    def _admit(self, transport: asyncio.WriteTransport) -> bool:
        """Take a new connection. When every place is taken, the connection that has waited longest for
        its client loses its place, or, when every place is busy answering, the new one is refused. A real
        probe sends its request at once: it is read in the step that admits it, so it never waits and is
        never the one dropped; an idle or dripping client waits, and is."""
        if len(self._open) >= self.max_connections:
            if not self._waiting:
                self.refusals.add("full")
                return False
            oldest = next(iter(self._waiting))
            del self._waiting[oldest]
            self._open.discard(oldest)
            oldest.abort()  # its handler reads the end of its input and returns
            self.refusals.add("dropped")
        self._open.add(transport)
        self._waiting[transport] = None
        return True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(self.deadline):
                request = await _read_request(reader)
        except TimeoutError:
            request = _Refusal(408, "timeout")
        self._waiting.pop(writer.transport, None)
        if request is None or writer.transport.is_closing():  # closed without asking anything, or dropped
            return
        if isinstance(request, _Refusal):
            self.refusals.add(request.reason)
            answer, head_only = _Answer(request.status, f"{HTTPStatus(request.status).phrase}\n".encode()), False
        else:
            answer, head_only = await self._answer(request), request.method == b"HEAD"
        async with asyncio.timeout(self.deadline):
            writer.write(answer.encode(head_only))
            writer.write_eof()
            await writer.drain()
        self._waiting[writer.transport] = None  # lingering: its place can be taken
        async with asyncio.timeout(LINGER_SECONDS):  # closing with unread input would reset the connection
            while await reader.read(4096):  # and could throw the answer away before the client read it
                pass

    async def _answer(self, request: h11.Request) -> _Answer:
        path = request.target.decode("ascii").split("?", 1)[0]
        if path == "/-/reload":
            return await self._reload(request)
        if request.method not in (b"GET", b"HEAD"):
            self.refusals.add("method")
            return _Answer(405, b"method not allowed\n", allow="GET, HEAD")
        if path == "/healthz":
            return _Answer(200, b"ok\n")
        if path == "/readyz":
            problems = await asyncio.to_thread(self.health.problems)
            if problems:
                return _Answer(503, ("\n".join(problems) + "\n").encode())
            return _Answer(200, b"ready\n")
        if path == "/metrics":
            body = await asyncio.to_thread(generate_latest, self.registry)
            return _Answer(200, body, content_type="text/plain; version=0.0.4")
        return _Answer(404, b"not found\n")

    async def _reload(self, request: h11.Request) -> _Answer:
        """`POST /-/reload`: the rules reloaded as on SIGHUP; 500 with each problem (file:line) when the new
        file is refused (the rules in force stay). Refused: another method (405), reload switched off, and a
        browser's request from a web page (it sends Origin: a page must not make the daemon reload) (403)."""
        if request.method != b"POST":
            self.refusals.add("method")
            return _Answer(405, b"method not allowed: POST /-/reload\n", allow="POST")
        if self.reload is None:
            self.refusals.add("reload_off")
            return _Answer(403, b"reload is off (http.reload); SIGHUP reloads\n")
        if any(name.lower() in _FROM_A_PAGE for name, _ in request.headers):
            self.refusals.add("origin")
            return _Answer(403, b"refused: a request from a web page (Origin, Referer, Sec-Fetch-*)\n")
        if not self.health.started():  # the stages a reload swaps rules in are not all there yet
            return _Answer(503, b"starting: reload once ready (SIGHUP is kept until then)\n", retry_after=1)
        try:
            problems = await self._shared_reload()
        except Exception as exc:  # an answer whatever happens: the client is told, the loop logs no stray task
            log.exception("reload_failed", via="POST /-/reload")
            return _Answer(500, f"reload failed: {exc!r}\n".encode())
        if problems:
            return _Answer(
                500, ("rules not reloaded, the rules in force stay:\n" + "\n".join(problems) + "\n").encode()
            )
        return _Answer(200, b"reloaded\n")

    async def _shared_reload(self) -> list[str]:
        """At most one reload runs and one waits, however many POSTs come at once: those that come while one
        waits share it (it starts after them, so it reads the file they mean). A client that goes away does
        not cancel it."""
        if self._queued is None:
            self._queued = asyncio.ensure_future(self._reload_in_turn())
        return await asyncio.shield(self._queued)

    async def _reload_in_turn(self) -> list[str]:
        async with self._reloads:
            self._queued = None  # from now on a new POST waits for the next one: this one may have read
            assert self.reload is not None  # its file already
            return await self.reload()


@dataclass(frozen=True, slots=True)
class _Refusal:
    status: int
    reason: str  # the label of monitor_http_refused_total


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: bytes
    content_type: str = "text/plain"
    allow: str | None = None
    retry_after: int | None = None

    def encode(self, head_only: bool) -> bytes:
        """The response; without its body for HEAD (Content-Length still says the body's size)."""
        lines = [
            f"HTTP/1.1 {self.status} {HTTPStatus(self.status).phrase}",
            f"Content-Type: {self.content_type}",
            f"Content-Length: {len(self.body)}",
            "Connection: close",
        ]
        if self.allow:
            lines.append(f"Allow: {self.allow}")
        if self.retry_after is not None:
            lines.append(f"Retry-After: {self.retry_after}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
        return head if head_only else head + self.body


async def _read_request(reader: asyncio.StreamReader) -> h11.Request | _Refusal | None:
    """The request's line and headers, parsed by h11; a refusal when they are malformed or too large (414
    when not even the request line ended); None when the client closed before sending anything."""
    parser = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_BYTES)
    line_ended = False
    while True:
        try:
            event = parser.next_event()
        except h11.RemoteProtocolError as exc:
            if exc.error_status_hint == 431:
                return _Refusal(431 if line_ended else 414, "too_large")
            return _Refusal(exc.error_status_hint, "malformed")
        if event is not h11.NEED_DATA:
            return event if isinstance(event, h11.Request) else None
        data = await reader.read(4096)
        line_ended = line_ended or b"\n" in data
        parser.receive_data(data)


class _Refusals:
    """Refused requests and dropped connections: counted by reason (a metric), and logged as one line at
    most once a minute, so that a flood of them cannot flood the log."""

    def __init__(self, counter: Counter) -> None:
        self.counter = counter
        self.since_logged: dict[str, int] = {}
        self.next_log = 0.0

    def add(self, reason: str) -> None:
        self.counter.labels(reason).inc()
        self.since_logged[reason] = self.since_logged.get(reason, 0) + 1
        now = time.monotonic()
        if now >= self.next_log:
            log.warning("http_requests_refused", **self.since_logged)
            self.since_logged, self.next_log = {}, now + REFUSALS_LOGGED_EVERY
