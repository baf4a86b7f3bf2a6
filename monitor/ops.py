"""Health and metrics on a local port: `/healthz`, `/readyz`, `/metrics` (Prometheus text format).

A deliberately small HTTP/1.1 responder on asyncio streams: three GET routes, no keep-alive.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TYPE_CHECKING

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from monitor.errors import ConfigError
from monitor.store import deliveries

if TYPE_CHECKING:
    from monitor.daemon import Daemon

log = structlog.get_logger(__name__)


class Health:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def problems(self) -> list[str]:
        """What keeps the daemon from being ready; empty when it is."""
        if not self.daemon.started:
            return ["starting"]
        found = []
        if not self.daemon.observer_ok:  # checked every 2 s in a thread
            found.append("observer not running")
        if not self.daemon.schedule.running():
            found.append("scheduler not running")
        if not self.daemon.store_ok:  # checked every 2 s in a thread: a hung store never hangs /readyz
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
        self.reload_failures = Counter("monitor_reload_failures", "Rules reloads refused", registry=r)
        self.queue_overflows = Counter("monitor_queue_overflows", "Paths dropped by a full queue", registry=r)


class StateCollector(Collector):
    """Gauges read at scrape time: the ingest queue and the outbox backlog by state."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("monitor_queue_depth", "Paths waiting to be read", value=self.daemon.queued)
        backlog = GaugeMetricFamily("monitor_outbox", "Deliveries in the outbox, by state", labels=["state"])
        with self.daemon.store.engine.connect() as conn:
            rows = conn.execute(select(deliveries.c.state, func.count()).group_by(deliveries.c.state)).all()
        for state, count in rows:
            backlog.add_metric([state], count)
        yield backlog


class HealthServer:
    def __init__(self, health: Health, host: str, port: int) -> None:
        self.health = health
        self.host, self.port = host, port
        self.registry = health.daemon.metrics.registry
        self.registry.register(StateCollector(health.daemon))
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(self._handle, self.host, self.port)
        except OSError as exc:  # before any article is read: one line, exit status 1
            raise ConfigError(f"http.port: cannot listen on {self.host}:{self.port}: {exc.strerror}") from None
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("health_listening", address=f"http://{self.host}:{self.port}")

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), timeout=5)
            while (await asyncio.wait_for(reader.readline(), timeout=5)).strip():
                pass
            parts = request.decode("latin-1").split()
            path = parts[1] if len(parts) > 1 else "/"
            status, content_type, body = await self._route(path)
            head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            writer.write(head.encode() + b"Connection: close\r\n\r\n" + body)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _route(self, path: str) -> tuple[str, str, bytes]:
        if path == "/healthz":
            return "200 OK", "text/plain", b"ok\n"
        if path == "/readyz":
            problems = await asyncio.to_thread(self.health.problems)
            if problems:
                return "503 Service Unavailable", "text/plain", ("\n".join(problems) + "\n").encode()
            return "200 OK", "text/plain", b"ready\n"
        if path == "/metrics":
            body = await asyncio.to_thread(generate_latest, self.registry)
            return "200 OK", "text/plain; version=0.0.4", body
        return "404 Not Found", "text/plain", b"not found\n"
