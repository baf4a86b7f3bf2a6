"""Health and metrics on a local port: `/healthz`, `/readyz`, `/metrics` (Prometheus text format).

A deliberately small HTTP/1.1 responder on asyncio streams: three GET routes, no keep-alive.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from monitor.store import deliveries

if TYPE_CHECKING:
    from monitor.daemon import Daemon

log = logging.getLogger(__name__)


class Health:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def problems(self) -> list[str]:
        """What keeps the daemon from being ready; empty when it is."""
        found = []
        if not self.daemon.watcher.alive():
            found.append("observer not running")
        if not self.daemon.schedule.running():
            found.append("scheduler not running")
        if not self.daemon.store.writable():
            found.append("state store not writable")
        return found


class DaemonCollector(Collector):
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def collect(self) -> Iterator[Metric]:
        daemon = self.daemon
        articles = CounterMetricFamily("monitor_articles", "Article files processed, by outcome", labels=["outcome"])
        for key, value in daemon.counts.items():
            if key.startswith("articles_"):
                articles.add_metric([key.removeprefix("articles_")], value)
        yield articles
        yield GaugeMetricFamily(
            "monitor_queue_depth", "Paths waiting for the ingest worker", value=daemon.queue.qsize()
        )
        yield CounterMetricFamily("monitor_reload_failures", "Rules reloads refused", value=daemon.reload_failures)
        yield CounterMetricFamily("monitor_observer_restarts", "Observer restarts", value=daemon.watcher.restarts)
        backlog = GaugeMetricFamily("monitor_outbox", "Deliveries in the outbox, by state", labels=["state"])
        with daemon.store.engine.connect() as conn:
            rows = conn.execute(select(deliveries.c.state, func.count()).group_by(deliveries.c.state)).all()
        for state, count in rows:
            backlog.add_metric([state], count)
        yield backlog


class HealthServer:
    def __init__(self, health: Health, host: str, port: int) -> None:
        self.health = health
        self.host, self.port = host, port
        self.registry = CollectorRegistry()
        self.registry.register(DaemonCollector(health.daemon))
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("health_listening address=http://%s:%d", self.host, self.port)

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
