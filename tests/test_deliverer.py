"""The deliverer against httpx.MockTransport and a real SQLite store: outcomes, schedule, leases, concurrency."""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from standardwebhooks.webhooks import Webhook as Verifier
from structlog.testing import capture_logs

from benchmarks.kit.rules import SECRET
from monitor.config.rules import Webhook
from monitor.notify import deliverer as deliverer_module
from monitor.notify.deliverer import RETRY_AFTER_CAP, AttemptOutcome, Deliverer, classify, next_delay, retry_after
from monitor.notify.transport import Clients, Transport
from monitor.store import Delivery, DeliveryKind, NewDelivery, State, Store
from monitor.store.schema import deliveries  # raw rows: a lease, attempts, a payload of an older version

URL = "http://receiver.test/hook"
WAIT = 10.0

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


# -- fixtures ----------------------------------------------------------------------------------------------
def hook(*schedule: str, **values: Any) -> Webhook:
    return Webhook.model_validate({"url": URL, "secret": SECRET, "retry_schedule": schedule or ("10s", "1m"), **values})


def add(
    store: Store,
    delivery_id: str,
    webhook: str = "newsroom",
    attempts: int = 0,
    due_at: float = 0.0,
    payload: dict[str, Any] | None = None,
) -> None:
    """An outbox row as monitor.notify.alerts writes it."""
    payload = payload or {"alert_id": delivery_id, "rule": "hoogverraad", "hits": [{"term": "hoogverraad"}]}
    row = {
        "id": delivery_id,
        "webhook": webhook,
        "kind": "alert",
        "rule": "hoogverraad",
        "payload": json.dumps(payload),
        "state": State.pending.value,
        "attempts": attempts,
        "due_at": due_at or time.time(),
        "created_at": time.time(),
    }
    with store.begin() as conn:
        conn.execute(deliveries.insert(), [row])


def row(store: Store, delivery_id: str) -> dict[str, Any]:
    with store.engine.connect() as conn:
        found = conn.execute(select(deliveries).where(deliveries.c.id == delivery_id)).mappings().one()
    return dict(found)


def take(store: Store, delivery_id: str, now: float | None = None) -> Delivery:
    """Lease one delivery as the deliverer's loop would."""
    due = {d.id: d for d in store.take_due(time.time() if now is None else now, 100, 60.0)}
    assert delivery_id in due, f"{delivery_id} is not due"
    return due[delivery_id]


@dataclass
class Receiver:
    """A scripted receiver behind httpx.MockTransport; records every request."""

    replies: list[httpx.Response | Exception] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    handler: Handler | None = None

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.handler is not None:
            return await self.handler(request)
        reply = self.replies.pop(0) if self.replies else httpx.Response(200)
        if isinstance(reply, Exception):
            raise reply
        return reply


@dataclass
class Setup:
    store: Store
    receiver: Receiver
    webhooks: dict[str, Webhook]
    deliverer: Deliverer

    async def attempt(self, delivery_id: str, now: float | None = None) -> AttemptOutcome:
        return await asyncio.wait_for(self.deliverer.deliver(take(self.store, delivery_id, now)), WAIT)


MakeSetup = Callable[..., Setup]


@pytest_asyncio.fixture
async def setup(store: Store) -> AsyncIterator[MakeSetup]:
    clients: list[httpx.AsyncClient] = []

    def make(*replies: httpx.Response | Exception, webhook: Webhook | None = None, **options: Any) -> Setup:
        receiver = Receiver(list(replies))
        client = httpx.AsyncClient(transport=httpx.MockTransport(receiver), **options.pop("client", {}))
        clients.append(client)
        webhooks = {"newsroom": webhook or hook()}
        deliverer = Deliverer(store, lambda: webhooks, client, **options)
        return Setup(store, receiver, webhooks, deliverer)

    yield make
    for client in clients:
        await client.aclose()


# -- outcomes of one attempt --------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
@pytest.mark.asyncio
async def test_2xx_is_delivered(setup: MakeSetup, status: int) -> None:
    s = setup(httpx.Response(status))
    add(s.store, "msg_1")
    before = time.time()
    assert await s.attempt("msg_1") is AttemptOutcome.delivered
    stored = row(s.store, "msg_1")
    assert stored["state"] == State.delivered
    assert stored["attempts"] == 1
    assert stored["last_status"] == status and stored["last_error"] is None
    assert stored["delivered_at"] >= before and stored["lease_until"] is None
    request = s.receiver.requests[0]
    assert request.method == "POST" and str(request.url) == URL
    assert json.loads(request.content)["data"]["alert_id"] == "msg_1"


@pytest.mark.parametrize(
    ("schedule", "attempts", "base"),
    [
        pytest.param(("10s", "1m"), 0, 10.0, id="after-first-attempt"),
        pytest.param(("10s", "1m"), 1, 60.0, id="after-second-attempt"),
    ],
)
@pytest.mark.asyncio
async def test_503_retries_on_the_schedule_with_jitter(
    setup: MakeSetup, schedule: tuple[str, ...], attempts: int, base: float
) -> None:
    s = setup(httpx.Response(503), webhook=hook(*schedule))
    add(s.store, "msg_1", attempts=attempts)
    before = time.time()
    assert await s.attempt("msg_1") is AttemptOutcome.retry
    after = time.time()
    stored = row(s.store, "msg_1")
    assert stored["state"] == State.retrying
    assert stored["attempts"] == attempts + 1
    assert stored["last_status"] == 503 and stored["last_error"] == "HTTP 503"
    assert before + 0.8 * base <= stored["due_at"] <= after + 1.2 * base
    assert stored["lease_until"] is None
    assert s.store.take_due(after, 10, 60) == [], "not due before its time"
    assert [d.id for d in s.store.take_due(after + 1.2 * base + 1, 10, 60)] == ["msg_1"]


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 599])
def test_retryable_statuses(status: int) -> None:
    assert classify(httpx.Response(status)).outcome is AttemptOutcome.retry


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 413, 422])
def test_other_4xx_are_permanent(status: int) -> None:
    attempt = classify(httpx.Response(status))
    assert attempt.outcome is AttemptOutcome.dead
    assert attempt.error == f"HTTP {status} (permanent)"


def test_jitter_stays_within_20_percent_and_varies() -> None:
    random.seed(20220108)
    webhook = hook("5s", "5m", "30m")
    for done, base in ((1, 5.0), (2, 300.0), (3, 1800.0)):
        delays = [next_delay(webhook, done, None) for _ in range(2000)]
        assert all(d is not None and 0.8 * base <= d <= 1.2 * base for d in delays)
        spread = [d for d in delays if d is not None]
        assert min(spread) < 0.85 * base and max(spread) > 1.15 * base, "jitter must spread the retries"
    assert next_delay(webhook, 4, None) is None


def test_default_schedule_is_standard_webhooks() -> None:
    webhook = Webhook(url=URL)
    assert [d.total_seconds() for d in webhook.retry_schedule] == [5, 300, 1800, 7200, 18000, 36000, 36000]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("120", 120.0, id="seconds"),
        pytest.param(" 7 ", 7.0, id="seconds-padded"),
        pytest.param("0", 0.0, id="zero"),
        pytest.param("999999999", RETRY_AFTER_CAP, id="capped"),
        pytest.param(email.utils.formatdate(1_000_300, usegmt=True), 300.0, id="http-date"),
        pytest.param("Mon, 12 Jan 1970 13:51:40 -0000", 300.0, id="http-date-minus-zero"),
        pytest.param(email.utils.formatdate(999_000, usegmt=True), 0.0, id="http-date-past"),
        pytest.param("-5", None, id="negative"),
        pytest.param("soon", None, id="garbage"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_retry_after_values(value: str | None, expected: float | None) -> None:
    assert retry_after(value, now=1_000_000.0) == expected


@pytest.fixture
def far_from_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A local time zone far from UTC, so that a date read as local time would be hours off."""
    monkeypatch.setenv("TZ", "Asia/Almaty")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("far_from_utc")
def test_retry_after_date_without_zone_is_utc_not_local_time() -> None:
    assert time.timezone != 0
    assert retry_after("Mon, 12 Jan 1970 13:51:40 -0000", now=1_000_000.0) == 300.0
    assert retry_after("Mon, 12 Jan 1970 13:51:40 GMT", now=1_000_000.0) == 300.0


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(lambda: "120", id="seconds"),
        pytest.param(lambda: email.utils.formatdate(time.time() + 121, usegmt=True), id="http-date"),
    ],
)
@pytest.mark.asyncio
async def test_429_retry_after_is_honoured(setup: MakeSetup, header: Callable[[], str]) -> None:
    s = setup(httpx.Response(429, headers={"retry-after": header()}), webhook=hook("1s", "1s"))
    add(s.store, "msg_1")
    before = time.time()
    assert await s.attempt("msg_1") is AttemptOutcome.retry
    stored = row(s.store, "msg_1")
    assert stored["state"] == State.retrying and stored["last_status"] == 429
    assert stored["due_at"] >= before + 119, "the next attempt must not come before Retry-After"
    assert stored["due_at"] <= time.time() + 122


@pytest.mark.asyncio
async def test_retry_after_shorter_than_the_schedule_does_not_shorten_it(setup: MakeSetup) -> None:
    s = setup(httpx.Response(503, headers={"retry-after": "1"}), webhook=hook("1m"))
    add(s.store, "msg_1")
    before = time.time()
    await s.attempt("msg_1")
    assert row(s.store, "msg_1")["due_at"] >= before + 48


@pytest.mark.parametrize("follow", [False, True], ids=["client-default", "client-follows-redirects"])
@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.asyncio
async def test_redirects_are_not_followed_and_retried(setup: MakeSetup, status: int, follow: bool) -> None:
    s = setup(
        httpx.Response(status, headers={"location": "http://elsewhere.test/hook"}),
        httpx.Response(200),
        client={"follow_redirects": follow},
    )
    add(s.store, "msg_1")
    assert await s.attempt("msg_1") is AttemptOutcome.retry
    assert [str(r.url) for r in s.receiver.requests] == [URL], "the redirect must not be followed"
    stored = row(s.store, "msg_1")
    assert stored["state"] == State.retrying and stored["last_status"] == status
    assert "http://elsewhere.test/hook" in stored["last_error"] and "not followed" in stored["last_error"]


@pytest.mark.asyncio
async def test_404_is_dead_at_once(setup: MakeSetup) -> None:
    s = setup(httpx.Response(404))
    add(s.store, "msg_1")
    assert await s.attempt("msg_1") is AttemptOutcome.dead
    stored = row(s.store, "msg_1")
    assert stored["state"] == State.dead and stored["attempts"] == 1
    assert stored["last_status"] == 404 and "permanent" in stored["last_error"]
    assert s.store.take_due(time.time() + 10**6, 10, 60) == []


@pytest.mark.asyncio
async def test_410_disables_the_webhook_and_holds_its_deliveries(setup: MakeSetup, store: Store) -> None:
    s = setup(httpx.Response(410))
    s.webhooks["other"] = hook()
    for delivery_id, webhook in (("msg_1", "newsroom"), ("msg_2", "newsroom"), ("msg_3", "other")):
        add(store, delivery_id, webhook)
    assert await s.attempt("msg_1") is AttemptOutcome.disabled
    [state] = [hook for hook in store.webhook_states() if hook["name"] == "newsroom"]
    assert state["disabled"] is True and "410" in state["disabled_reason"]
    assert row(store, "msg_1")["state"] == State.pending, "held, not dead: it goes out once re-enabled"
    later = time.time() + 10**6
    assert [d.id for d in store.take_due(later, 10, 60)] == ["msg_3"], "other webhooks still deliver"
    store.set_webhook_disabled("newsroom", False)
    assert sorted(d.id for d in store.take_due(later, 10, 60)) == ["msg_1", "msg_2"]


@pytest.mark.parametrize(
    ("error", "message"),
    [
        pytest.param(httpx.ReadTimeout("read timed out"), "timed out after 15s", id="read-timeout"),
        pytest.param(httpx.ConnectTimeout("connect timed out"), "timed out after 15s", id="connect-timeout"),
        pytest.param(httpx.ConnectError("connection refused"), "ConnectError: connection refused", id="refused"),
        pytest.param(httpx.RemoteProtocolError("peer closed"), "RemoteProtocolError: peer closed", id="protocol"),
        pytest.param(httpx.ReadError(""), "ReadError", id="empty-message"),
    ],
)
@pytest.mark.asyncio
async def test_timeouts_and_connection_errors_retry(setup: MakeSetup, error: Exception, message: str) -> None:
    s = setup(error)
    add(s.store, "msg_1")
    assert await s.attempt("msg_1") is AttemptOutcome.retry
    stored = row(s.store, "msg_1")
    assert stored["state"] == State.retrying and stored["last_status"] is None
    assert stored["last_error"] == message


@pytest.mark.asyncio
async def test_undecodable_response_body_is_a_retry_not_a_crash(setup: MakeSetup) -> None:
    broken = httpx.ByteStream(b"not gzip")
    s = setup(httpx.Response(503, headers={"content-encoding": "gzip"}, stream=broken))
    add(s.store, "msg_1")
    assert await s.attempt("msg_1") is AttemptOutcome.retry
    assert row(s.store, "msg_1")["state"] == State.retrying


@pytest.mark.asyncio
async def test_a_stalled_receiver_is_abandoned_at_the_webhook_timeout(store: Store) -> None:
    """A real socket that accepts and never answers: the timeout must reach the request."""
    accepted = asyncio.Event()

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        await reader.read()  # until the client gives up and closes
        writer.close()

    server = await asyncio.start_server(stall, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}/hook"
    webhooks = {"newsroom": Webhook.model_validate({"url": url, "timeout": "0.3s", "retry_schedule": ["1m"]})}
    try:
        async with httpx.AsyncClient() as client:
            deliverer = Deliverer(store, lambda: webhooks, client)
            add(store, "msg_1")
            start = time.monotonic()
            assert await asyncio.wait_for(deliverer.deliver(take(store, "msg_1")), WAIT) is AttemptOutcome.retry
            elapsed = time.monotonic() - start
    finally:
        server.close()
        await server.wait_closed()
    assert accepted.is_set()
    assert 0.25 <= elapsed < 3.0
    assert row(store, "msg_1")["last_error"] == "timed out after 0.3s"


Respond = Callable[[asyncio.StreamWriter], Awaitable[None]]


@pytest_asyncio.fixture
async def raw_server() -> AsyncIterator[Callable[[Respond], Awaitable[str]]]:
    """A raw HTTP server on 127.0.0.1: reads a request, then `respond(writer)` writes what it likes."""
    servers: list[asyncio.Server] = []

    async def start(respond: Respond) -> str:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
                    await reader.readexactly(length)
                    await respond(writer)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def real_deliverer(store: Store, client: httpx.AsyncClient | Clients, url: str, **webhook: Any) -> Deliverer:
    webhooks = {"newsroom": Webhook.model_validate({"url": url, "retry_schedule": ["1m"], **webhook})}
    return Deliverer(store, lambda: webhooks, client)


@pytest_asyncio.fixture(params=["client", "clients"])
async def real_client(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient | Clients]:
    """httpx's client on our transport (`client.send`), and the daemon's `Clients` (`Clients.send`, past the
    client's layers): the receivers below must be handled the same way by both."""
    if request.param == "client":
        async with httpx.AsyncClient(transport=Transport()) as client:
            yield client
    else:
        clients = Clients(8, {})
        try:
            yield clients
        finally:
            await clients.aclose()


@pytest.mark.asyncio
async def test_a_dripping_receiver_is_abandoned_at_the_webhook_timeout(
    store: Store, raw_server: Callable[[Respond], Awaitable[str]], real_client: httpx.AsyncClient | Clients
) -> None:
    """httpx's timeout is per read: a receiver sending a byte every 0.1 s must still be cut off at 0.5 s."""

    async def drip(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
        for _ in range(1000):
            await asyncio.sleep(0.1)
            writer.write(b"x")
            await writer.drain()

    url = await raw_server(drip)
    add(store, "msg_1")
    start = time.monotonic()
    outcome = await asyncio.wait_for(
        real_deliverer(store, real_client, url, timeout="0.5s").deliver(take(store, "msg_1")), WAIT
    )
    elapsed = time.monotonic() - start
    assert outcome is AttemptOutcome.retry
    assert 0.45 <= elapsed < 1.5
    assert row(store, "msg_1")["last_error"] == "timed out after 0.5s"


@pytest.mark.asyncio
async def test_a_huge_response_body_is_read_no_further_than_the_cap(
    store: Store, raw_server: Callable[[Respond], Awaitable[str]], real_client: httpx.AsyncClient | Clients
) -> None:
    sent: list[int] = []

    async def flood(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000000000\r\n\r\n")
        total, chunk = 0, b"\0" * 65_536
        try:
            while total < 1_000_000_000:
                writer.write(chunk)
                await writer.drain()
                total += len(chunk)
        finally:
            sent.append(total)

    url = await raw_server(flood)
    add(store, "msg_1")
    deliverer = real_deliverer(store, real_client, url)
    assert await asyncio.wait_for(deliverer.deliver(take(store, "msg_1")), WAIT) is AttemptOutcome.delivered
    await until(lambda: bool(sent), "the receiver to see the connection closed")
    assert sent[0] < 32 * 1024 * 1024, "no more than the socket buffers hold beyond the 64 KB read"


@pytest.mark.asyncio
async def test_small_response_bodies_keep_the_connection_alive(
    store: Store, raw_server: Callable[[Respond], Awaitable[str]], real_client: httpx.AsyncClient | Clients
) -> None:
    peers: set[int] = set()

    async def small(writer: asyncio.StreamWriter) -> None:
        peers.add(writer.get_extra_info("peername")[1])
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello")
        await writer.drain()

    url = await raw_server(small)
    deliverer = real_deliverer(store, real_client, url)
    for n in range(3):
        add(store, f"msg_{n}")
        assert await asyncio.wait_for(deliverer.deliver(take(store, f"msg_{n}")), WAIT) is AttemptOutcome.delivered
    assert len(peers) == 1, "one kept-alive connection"


def big_payload(hits: int) -> dict[str, Any]:
    hit = {"term": "hoogverraad", "text": "hoogverraad", "start": 0, "end": 11, "snippet": "woord " * 30}
    return {"alert_id": "a", "rule": "hoogverraad", "clause": "hoogverraad", "hits": [hit] * hits}


@pytest.mark.parametrize(
    ("payload", "on_loop"),
    [
        pytest.param(None, True, id="one-hit"),
        pytest.param(big_payload(20), True, id="20-short-hits"),
        pytest.param(big_payload(21), False, id="21-hits"),
        pytest.param(big_payload(300), False, id="64KB"),
    ],
)
@pytest.mark.asyncio
async def test_large_payloads_are_rendered_off_the_loop(
    setup: MakeSetup, monkeypatch: pytest.MonkeyPatch, payload: dict[str, Any] | None, on_loop: bool
) -> None:
    threads: list[threading.Thread] = []
    original = deliverer_module.render

    def render(webhook: Webhook, delivery: Delivery) -> bytes:
        threads.append(threading.current_thread())
        return original(webhook, delivery)

    monkeypatch.setattr(deliverer_module, "render", render)
    s = setup()
    add(s.store, "msg_1", payload=payload)
    assert await s.attempt("msg_1") is AttemptOutcome.delivered
    assert (threads == [threading.main_thread()]) is on_loop
    Verifier(SECRET).verify(s.receiver.requests[0].content, dict(s.receiver.requests[0].headers))


@pytest.mark.parametrize(
    "reply", [httpx.Response(503), httpx.Response(429, headers={"retry-after": "60"}), httpx.ConnectError("down")]
)
@pytest.mark.asyncio
async def test_last_attempt_is_dead(setup: MakeSetup, reply: httpx.Response | Exception) -> None:
    s = setup(reply, webhook=hook("1s", "2s"))
    seen: list[AttemptOutcome] = []
    s.deliverer.on_outcome = lambda delivery, attempt: seen.append(attempt.outcome)
    add(s.store, "msg_1", attempts=2)  # two attempts done: this third one is the last
    assert await s.attempt("msg_1") is AttemptOutcome.dead
    assert seen == [AttemptOutcome.dead], "observers (metrics) see the final outcome"
    stored = row(s.store, "msg_1")
    assert stored["state"] == State.dead and stored["attempts"] == 3
    assert stored["last_error"]
    assert [d.id for d in s.store.deliveries([State.dead])] == ["msg_1"], "dead letters stay visible"
    assert s.store.requeue(["msg_1"]) == 1
    assert take(s.store, "msg_1").attempts == 0


@pytest.mark.asyncio
async def test_unknown_webhook_is_dead(setup: MakeSetup) -> None:
    s = setup()
    add(s.store, "msg_1", webhook="removed")
    assert await s.attempt("msg_1") is AttemptOutcome.dead
    assert "removed" in row(s.store, "msg_1")["last_error"]
    assert s.receiver.requests == []


@pytest.mark.asyncio
async def test_render_failure_is_dead_not_a_crash(setup: MakeSetup, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(webhook: Webhook, delivery: Delivery) -> bytes:
        raise ValueError("template exploded")

    monkeypatch.setattr(deliverer_module, "render", broken)
    s = setup()
    add(s.store, "msg_1")
    assert await s.attempt("msg_1") is AttemptOutcome.dead
    assert "template exploded" in row(s.store, "msg_1")["last_error"]
    assert s.receiver.requests == []


@pytest.mark.asyncio
async def test_same_id_fresh_timestamp_and_signature_on_every_attempt(
    setup: MakeSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = {"offset": 0.0}
    monkeypatch.setattr(deliverer_module, "time", SimpleNamespace(time=lambda: time.time() + clock["offset"]))
    s = setup(httpx.Response(503), httpx.Response(503), httpx.Response(200), webhook=hook("1s", "1s", "1s"))
    add(s.store, "msg_1")
    outcomes = []
    for step in range(3):
        clock["offset"] = step * 30.0
        outcomes.append(await s.attempt("msg_1", now=time.time() + 3600))
    assert outcomes == [AttemptOutcome.retry, AttemptOutcome.retry, AttemptOutcome.delivered]
    headers = [r.headers for r in s.receiver.requests]
    assert [h["webhook-id"] for h in headers] == ["msg_1"] * 3
    assert len({h["webhook-timestamp"] for h in headers}) == 3
    assert len({h["webhook-signature"] for h in headers}) == 3
    assert len({r.content for r in s.receiver.requests}) == 1, "the body is the same on every attempt"
    verifier = Verifier(SECRET)
    for request in s.receiver.requests:
        verifier.verify(request.content, dict(request.headers))


@pytest.mark.asyncio
async def test_unsigned_webhook_has_id_and_timestamp_but_no_signature(setup: MakeSetup) -> None:
    s = setup(webhook=Webhook(url=URL, headers={"authorization": "Bearer token"}))
    add(s.store, "msg_1")
    await s.attempt("msg_1")
    headers = s.receiver.requests[0].headers
    assert headers["webhook-id"] == "msg_1" and headers["webhook-timestamp"].isdigit()
    assert "webhook-signature" not in headers
    assert headers["authorization"] == "Bearer token" and headers["content-type"] == "application/json"


# -- the loop: concurrency, failures, drain ---------------------------------------------------------------------
@pytest_asyncio.fixture
async def running() -> AsyncIterator[Callable[[Deliverer], asyncio.Event]]:
    """Run deliverers' loops; stop them and fail if a loop does not stop in time."""
    started: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    def start(deliverer: Deliverer) -> asyncio.Event:
        stop = asyncio.Event()
        started.append((stop, asyncio.create_task(deliverer.run(stop))))
        return stop

    yield start
    for stop, task in started:
        stop.set()
        await asyncio.wait_for(task, WAIT)


async def until(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None


def states(store: Store) -> dict[str, str]:
    return {d.id: d.state.value for d in store.deliveries()}


@pytest.mark.asyncio
async def test_run_delivers_everything_due_within_the_concurrency_bound(
    setup: MakeSetup, running: Callable[[Deliverer], asyncio.Event]
) -> None:
    total, bound = 10, 3
    in_flight, most, started = 0, 0, 0
    changed = asyncio.Condition()

    async def handler(request: httpx.Request) -> httpx.Response:
        # Each request waits until the bound is reached (or nothing is left to start), so a deliverer that
        # started more than `bound` at once would show it here.
        nonlocal in_flight, most, started
        async with changed:
            in_flight += 1
            started += 1
            most = max(most, in_flight)
            changed.notify_all()
            await changed.wait_for(lambda: in_flight >= bound or started >= total)
        await asyncio.sleep(0)
        async with changed:
            in_flight -= 1
        return httpx.Response(200)

    s = setup(concurrency=bound, per_webhook=bound)
    s.receiver.handler = handler
    for n in range(total):
        add(s.store, f"msg_{n:02d}")
    running(s.deliverer)
    await until(lambda: set(states(s.store).values()) == {"delivered"}, "every delivery to be delivered")
    assert most == bound
    assert len(s.receiver.requests) == total


class Gate:
    """A receiver handler that holds the requests of one webhook (by URL) until opened, counting them."""

    def __init__(self, url: str) -> None:
        self.url, self.open = url, asyncio.Event()
        self.held = self.most = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if str(request.url) == self.url:
            self.held += 1
            self.most = max(self.most, self.held)
            await self.open.wait()
            self.held -= 1
        return httpx.Response(200)


SLOW_URL = "http://slow.test/hook"


@pytest.mark.asyncio
async def test_one_webhook_takes_at_most_half_the_slots_by_default(
    setup: MakeSetup, running: Callable[[Deliverer], asyncio.Event]
) -> None:
    s = setup(concurrency=6, webhook=hook(url=SLOW_URL))
    gate = Gate(SLOW_URL)
    s.receiver.handler = gate
    for n in range(10):
        add(s.store, f"msg_{n:02d}")
    running(s.deliverer)
    await until(lambda: gate.held == 3, "three attempts to be held")
    await asyncio.sleep(0.1)  # a deliverer that would start a fourth has had its turns to do it
    assert gate.most == 3
    gate.open.set()
    await until(lambda: set(states(s.store).values()) == {"delivered"}, "every delivery to be delivered")


@pytest.mark.asyncio
async def test_a_webhook_that_holds_its_slots_does_not_hold_up_another(
    setup: MakeSetup, running: Callable[[Deliverer], asyncio.Event]
) -> None:
    s = setup(concurrency=4, webhook=hook(url=SLOW_URL))
    s.webhooks["other"] = hook()
    gate = Gate(SLOW_URL)
    s.receiver.handler = gate
    for n in range(40):  # older: leased first
        add(s.store, f"held_{n:02d}", due_at=1.0)
    for n in range(5):
        add(s.store, f"quick_{n}", webhook="other", due_at=2.0)
    running(s.deliverer)
    quick = {f"quick_{n}" for n in range(5)}
    await until(lambda: {k for k, v in states(s.store).items() if v == "delivered"} == quick, "the other webhook")
    assert gate.held == 2
    gate.open.set()
    await until(lambda: set(states(s.store).values()) == {"delivered"}, "every delivery to be delivered")


@pytest.mark.asyncio
async def test_a_slow_webhook_gets_one_slot_until_an_attempt_is_quick(
    setup: MakeSetup, running: Callable[[Deliverer], asyncio.Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deliverer_module, "SLOW_ATTEMPT", 0.2)
    s = setup(concurrency=8, webhook=hook(url=SLOW_URL))
    durations = iter([0.3, 0.3, 0.3])  # the first attempts are slow, the rest quick

    async def handler(request: httpx.Request) -> httpx.Response:
        gate.held += 1
        gate.most = max(gate.most, gate.held)
        await asyncio.sleep(next(durations, 0.0))
        gate.held -= 1
        return httpx.Response(200)

    gate = Gate(SLOW_URL)
    s.receiver.handler = handler
    for n in range(3):
        add(s.store, f"first_{n}", due_at=1.0)
    with capture_logs() as logs:
        running(s.deliverer)
        await until(lambda: set(states(s.store).values()) == {"delivered"}, "the first three")
        gate.most = 0
        for n in range(12):
            add(s.store, f"then_{n:02d}", due_at=2.0)
        s.deliverer.wake()
        await until(lambda: set(states(s.store).values()) == {"delivered"}, "every delivery to be delivered")
    events = [entry["event"] for entry in logs]
    assert events.count("webhook_slow") == 1 and events.count("webhook_quick_again") == 1
    assert gate.most == 4  # quick again: half the slots


@pytest.mark.asyncio
async def test_a_delivery_whose_lease_would_end_before_its_attempt_is_given_back(
    setup: MakeSetup, running: Callable[[Deliverer], asyncio.Event]
) -> None:
    webhook = hook(url=SLOW_URL, timeout="20s")  # the line may wait 0.3 s: the lease less the attempt and a spare
    s = setup(concurrency=2, per_webhook=1, webhook=webhook, lease=20.0 + deliverer_module.LEASE_SPARE + 0.3)
    gate = Gate(SLOW_URL)
    s.receiver.handler = gate
    for n in range(3):
        add(s.store, f"msg_{n}", due_at=float(n))
    with capture_logs() as logs:
        running(s.deliverer)
        await until(lambda: gate.held == 1, "the first attempt")
        await until(lambda: any(e["event"] == "delivery_lease_returned" for e in logs), "a lease given back", 2)
        gate.open.set()
        await until(lambda: set(states(s.store).values()) == {"delivered"}, "every delivery to be delivered")
    ids = [request.headers["webhook-id"] for request in s.receiver.requests]
    assert sorted(ids) == ["msg_0", "msg_1", "msg_2"]  # each once


A_URL, B_URL = "http://a.test/hook", "http://b.test/hook"  # found in review: each failed before the fix


@pytest.mark.slow
@pytest.mark.asyncio
async def test_lease_clock_starts_after_the_leasing_transaction(
    setup: MakeSetup, running: Callable[..., asyncio.Event]
) -> None:
    """leased_at is taken when the exchange returns, the DB lease from `now` before it: a slow exchange
    (SQLite lock wait, PostgreSQL lock wait, compose of big payloads) lets an attempt start with less than
    its timeout of lease left."""
    s = setup(concurrency=1, per_webhook=1, lease=4.0, webhook=hook(timeout="1s"))
    seen: dict[str, float] = {}

    async def handler(request: httpx.Request) -> httpx.Response:
        ident = request.headers["webhook-id"]
        seen[ident] = row(s.store, ident)["lease_until"] - time.time()
        await asyncio.sleep(0.9)
        return httpx.Response(200)

    s.receiver.handler = handler
    add(s.store, "msg_1", due_at=1.0)
    add(s.store, "msg_2", due_at=2.0)
    original = s.store.record_outcomes_and_lease
    calls = {"n": 0}

    def slow_exchange(*args: Any) -> Any:
        result = original(*args)
        calls["n"] += 1
        if calls["n"] == 1 and result:
            time.sleep(2.5)  # the leasing transaction (or the compose after it) took 2.5 s
        return result

    s.store.record_outcomes_and_lease = slow_exchange  # type: ignore[method-assign]
    running(s.deliverer)
    await until(lambda: set(states(s.store).values()) == {"delivered"}, "both", 15)
    assert all(v >= 1.0 for v in seen.values()), "an attempt started with less lease left than its timeout"


@pytest.mark.asyncio
async def test_a_freed_slot_stays_idle_while_only_capped_deliveries_are_in_line(
    setup: MakeSetup, running: Callable[..., asyncio.Event]
) -> None:
    """A hangs (3 s timeout); B is quick. After b_1's outcome is stored (limit 0: its slot counted as busy
    while posted), the only leased deliveries are A's (capped), nothing is leased and nothing wakes the
    loop: B's next delivery waits for A's attempt to end or for A's line to run late."""
    s = setup(concurrency=2, per_webhook=1, lease=10.0, webhook=hook(url=A_URL, timeout="3s"))
    s.webhooks["b"] = hook(url=B_URL, timeout="3s")
    delivered_at: dict[str, float] = {}

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "a.test":
            await asyncio.sleep(3600)
        delivered_at[request.headers["webhook-id"]] = time.monotonic() - T
        return httpx.Response(200)

    s.receiver.handler = handler
    for n in range(1, 4):
        add(s.store, f"a_{n}", webhook="newsroom", due_at=float(n))
    for n in range(1, 4):
        add(s.store, f"b_{n}", webhook="b", due_at=10.0 + n)
    T = time.monotonic()
    running(s.deliverer)
    await until(lambda: "b_3" in delivered_at, "b's three deliveries", 15)
    assert delivered_at["b_3"] < 1.0, "B's deliveries waited on A's hanging attempts although a slot was free"


@pytest.mark.slow
@pytest.mark.asyncio
async def test_busy_loop_when_a_waiting_delivery_runs_late_while_every_slot_is_busy(
    setup: MakeSetup, running: Callable[..., asyncio.Event]
) -> None:
    """concurrency 2, one slot per webhook, A and B hang until their 3 s timeout; lease 7 s (spare 1.75 s):
    A's waiting deliveries are late 2.25 s after the lease, but both slots stay busy until 3 s. _until_late()
    is 0, _start_ready() never calls _next_ready() (no free slot) so nothing is given back: the loop spins."""
    s = setup(concurrency=2, per_webhook=1, lease=7.0, webhook=hook(url=A_URL, timeout="3s"))
    s.webhooks["b"] = hook(url=B_URL, timeout="3s")

    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(3600)
        return httpx.Response(200)

    s.receiver.handler = handler
    for n in range(1, 4):
        add(s.store, f"a_{n}", webhook="newsroom", due_at=float(n))
    add(s.store, "b_1", webhook="b", due_at=5.0)
    steps = {"n": 0}
    original = s.deliverer._step

    async def counted(stop: asyncio.Event) -> None:
        steps["n"] += 1
        await original(stop)

    s.deliverer._step = counted  # type: ignore[method-assign]
    with capture_logs() as logs:
        running(s.deliverer)
        await until(lambda: len(s.receiver.requests) == 2, "two attempts in flight", 3)
        await asyncio.sleep(2.35)
        n0 = steps["n"]
        await asyncio.sleep(0.5)
        spins = steps["n"] - n0
        returned = [e["event"] for e in logs].count("delivery_lease_returned")
    assert returned >= 1  # A's late ones were given back at once
    assert spins < 10, f"busy loop: {spins} steps in 0.5 s"


@pytest.mark.slow
@pytest.mark.asyncio
async def test_a_delivery_waiting_in_line_keeps_its_lease_by_renewals(
    setup: MakeSetup, running: Callable[[Deliverer], asyncio.Event]
) -> None:
    """Lease 9 s, renewed every 3 s; timeout 3.55 s (spare 2.25 s). msg_2 waits 3.4 s behind msg_1's attempt:
    without a renewal its lease would be too short for its attempt after 3.2 s and it would be given back;
    renewed at 3 s, it keeps its lease and starts when the slot frees."""
    s = setup(concurrency=1, per_webhook=1, lease=9.0, webhook=hook(timeout="3.55s"))
    waited: list[float] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.headers["webhook-id"] == "msg_1":
            waited.append(row(s.store, "msg_2")["lease_until"])
            await asyncio.sleep(3.4)
            waited.append(row(s.store, "msg_2")["lease_until"])
        return httpx.Response(200)

    s.receiver.handler = handler
    add(s.store, "msg_1", due_at=1.0)
    add(s.store, "msg_2", due_at=2.0)
    with capture_logs() as logs:
        running(s.deliverer)
        await until(lambda: set(states(s.store).values()) == {"delivered"}, "both deliveries")
    assert [r.headers["webhook-id"] for r in s.receiver.requests] == ["msg_1", "msg_2"]
    assert "delivery_lease_returned" not in [e["event"] for e in logs]
    assert waited[1] - waited[0] >= 2.5  # renewed while it waited, a lease from the renewal's time


@pytest.mark.asyncio
async def test_a_lease_found_lost_at_renewal_is_not_attempted(
    setup: MakeSetup, running: Callable[[Deliverer], asyncio.Event]
) -> None:
    """msg_2 waits in line behind a long attempt; meanwhile its lease is taken by another replica (as after
    a store outage that let it run out). The renewal finds it lost: msg_2 is dropped from the line, never
    sent by this deliverer, and the other replica's lease is left alone."""
    s = setup(concurrency=1, per_webhook=1, lease=6.0, webhook=hook(timeout="2.4s"))  # renewed at 2 s
    gate = Gate(URL)
    s.receiver.handler = gate
    add(s.store, "msg_1", due_at=1.0)
    add(s.store, "msg_2", due_at=2.0)
    theirs = time.time() + 3600
    with capture_logs() as logs:
        running(s.deliverer)
        await until(lambda: gate.held == 1, "the first attempt")
        assert row(s.store, "msg_2")["lease_until"] is not None, "msg_2 leased and waiting in line"
        with s.store.begin() as conn:
            conn.execute(deliveries.update().where(deliveries.c.id == "msg_2").values(lease_until=theirs))
        await until(lambda: any(e["event"] == "delivery_lease_lost" for e in logs), "the renewal to find it lost", 5)
        gate.open.set()
        await until(lambda: states(s.store)["msg_1"] == "delivered", "the first delivery")
    assert [r.headers["webhook-id"] for r in s.receiver.requests] == ["msg_1"]
    assert row(s.store, "msg_2")["lease_until"] == theirs


@pytest.mark.asyncio
async def test_an_attempt_that_ends_after_the_loop_stored_others_is_stored_too(
    setup: MakeSetup, running: Callable[[Deliverer], asyncio.Event]
) -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        if request.headers["webhook-id"] == "msg_1":  # still in flight while the loop stores msg_2's outcome
            await until(lambda: states(s.store)["msg_2"] == "delivered", "msg_2 stored first")
        return httpx.Response(200)

    s = setup(concurrency=2, per_webhook=2)
    s.receiver.handler = handler
    add(s.store, "msg_1", due_at=time.time() - 2)
    add(s.store, "msg_2", due_at=time.time() - 1)
    running(s.deliverer)
    await until(lambda: states(s.store) == {"msg_1": "delivered", "msg_2": "delivered"}, "both outcomes stored")
    assert sorted(r.headers["webhook-id"] for r in s.receiver.requests) == ["msg_1", "msg_2"]
    assert s.deliverer.in_flight == 0


@pytest.mark.asyncio
async def test_a_saturated_loop_waits_instead_of_polling(
    setup: MakeSetup, running: Callable[[Deliverer], asyncio.Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    release = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(200)

    s = setup(concurrency=1)
    s.receiver.handler = handler
    add(s.store, "msg_1")
    add(s.store, "msg_2")
    running(s.deliverer)
    await until(lambda: len(s.receiver.requests) == 1, "the first request")
    calls = {"n": 0}
    for name in ("record_outcomes_and_lease", "next_due"):
        original = getattr(s.store, name)

        def counted(*args: Any, _original: Callable[..., Any] = original) -> Any:
            calls["n"] += 1
            return _original(*args)

        monkeypatch.setattr(s.store, name, counted)
    s.deliverer.wake()  # as the daemon does after every article: must not turn into a busy loop
    await asyncio.sleep(0.3)  # a window to count store queries in, not a synchronisation
    assert calls["n"] <= 2, f"the saturated loop queried the store {calls['n']} times in 0.3s"
    release.set()
    await until(lambda: set(states(s.store).values()) == {"delivered"}, "both deliveries")


def fail_exchange_once(
    monkeypatch: pytest.MonkeyPatch, store: Store, error: str, storing: bool = False
) -> dict[str, int]:
    """Make the deliverer's next store call fail (with `storing`: the next one that stores outcomes)."""
    original = store.record_outcomes_and_lease
    failures = {"left": 1}

    def flaky(outcomes: Any, now: float, limit: int, lease: float, busy: Any = ()) -> list[Delivery]:
        if failures["left"] and (outcomes or not storing):
            failures["left"] -= 1
            raise OperationalError("UPDATE", {}, Exception(error))
        return original(outcomes, now, limit, lease, busy)

    monkeypatch.setattr(store, "record_outcomes_and_lease", flaky)
    return failures


@pytest.mark.asyncio
async def test_run_survives_a_failing_store(
    setup: MakeSetup,
    running: Callable[[Deliverer], asyncio.Event],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = setup()
    add(s.store, "msg_1")
    failures = fail_exchange_once(monkeypatch, s.store, "database is locked")
    with capture_logs() as logs:
        running(s.deliverer)
        await until(lambda: states(s.store) == {"msg_1": "delivered"}, "delivery after the store recovered")
    assert failures["left"] == 0, "the store failed once"
    assert "delivery_poll_failed" in [entry["event"] for entry in logs]


@pytest.mark.asyncio
async def test_an_outcome_that_cannot_be_stored_is_kept_until_the_store_recovers(
    setup: MakeSetup,
    running: Callable[[Deliverer], asyncio.Event],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = setup(lease=60)
    add(s.store, "msg_1")
    failures = fail_exchange_once(monkeypatch, s.store, "disk I/O error", storing=True)
    with capture_logs() as logs:
        running(s.deliverer)
        await until(lambda: states(s.store) == {"msg_1": "delivered"}, "the outcome stored after the failure")
    assert failures["left"] == 0, "the first store of the outcome failed"
    assert "delivery_poll_failed" in [entry["event"] for entry in logs]
    assert [r.headers["webhook-id"] for r in s.receiver.requests] == ["msg_1"], "not sent again"
    assert row(s.store, "msg_1")["attempts"] == 1


@pytest.mark.asyncio
async def test_an_attempt_that_crashes_is_sent_again_after_its_lease(
    setup: MakeSetup,
    running: Callable[[Deliverer], asyncio.Event],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = setup(lease=0.5, webhook=hook(timeout="100ms"))
    add(s.store, "msg_1")
    original = s.deliverer._post
    failures = {"left": 1}

    async def crashing(webhook: Webhook, delivery: Delivery) -> Any:
        attempt = await original(webhook, delivery)
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("a bug after the POST")
        return attempt

    monkeypatch.setattr(s.deliverer, "_post", crashing)
    with capture_logs() as logs:
        running(s.deliverer)
        await until(lambda: states(s.store) == {"msg_1": "delivered"}, "the second attempt after the lease")
    assert {"event": "delivery_crashed", "id": "msg_1"}.items() <= next(
        e for e in logs if e["event"] == "delivery_crashed"
    ).items()
    assert [r.headers["webhook-id"] for r in s.receiver.requests] == ["msg_1", "msg_1"]


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        pytest.param(RuntimeError("a bug in the transport"), "RuntimeError: a bug in the transport", id="bug"),
        pytest.param(OverflowError("port must be 0-65535."), "OverflowError: port must be 0-65535.", id="overflow"),
        pytest.param(KeyError(), "KeyError", id="no-message"),
    ],
)
@pytest.mark.asyncio
async def test_an_unexpected_exception_fails_the_attempt_and_follows_the_schedule_to_dead(
    setup: MakeSetup, running: Callable[[Deliverer], asyncio.Event], error: Exception, reason: str
) -> None:
    s = setup(error, error, error, webhook=hook("0.1s", "0.1s"), lease=60.0)
    add(s.store, "msg_1")
    with capture_logs() as logs:
        running(s.deliverer)
        await until(lambda: states(s.store) == {"msg_1": "dead"}, "the delivery to die after its schedule")
    stored = row(s.store, "msg_1")
    assert stored["attempts"] == 3 and stored["last_error"] == reason and stored["last_status"] is None
    crashed = [e for e in logs if e["event"] == "delivery_attempt_crashed"]
    assert len(crashed) == 3 and all(e["id"] == "msg_1" and e["exc_info"] for e in crashed), "once per attempt"
    assert "delivery_crashed" not in [e["event"] for e in logs]
    assert len(s.receiver.requests) == 3


@pytest.mark.asyncio
async def test_a_redirect_that_echoes_the_url_is_stored_without_its_secrets(setup: MakeSetup) -> None:
    location = "https://user:SECRET42@elsewhere.test/hook?token=SECRET42&x=1"
    s = setup(httpx.Response(302, headers={"location": location}))
    add(s.store, "msg_1")
    with capture_logs() as logs:
        assert await s.attempt("msg_1") is AttemptOutcome.retry
    stored = row(s.store, "msg_1")["last_error"]
    assert stored == "HTTP 302 redirect to https://***@elsewhere.test/hook?token=***&x=*** not followed"
    assert "SECRET42" not in repr(logs)


@pytest.mark.asyncio
async def test_run_picks_up_a_retry_when_it_falls_due(
    setup: MakeSetup, running: Callable[[Deliverer], asyncio.Event]
) -> None:
    s = setup(httpx.Response(503), httpx.Response(200), webhook=hook("0.2s"))
    add(s.store, "msg_1")
    running(s.deliverer)
    await until(lambda: states(s.store) == {"msg_1": "delivered"}, "the retry to be delivered")
    first, second = s.receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == "msg_1"


@pytest.mark.asyncio
async def test_drain_finishes_quick_attempts_and_cancels_the_rest(
    setup: MakeSetup, running: Callable[[Deliverer], asyncio.Event]
) -> None:
    cancelled: list[str] = []
    never = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        alert = json.loads(request.content)["data"]["alert_id"]
        if alert == "msg_quick":
            await asyncio.sleep(0.05)  # the receiver's own pace
            return httpx.Response(200)
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.append(alert)
            raise
        return httpx.Response(200)

    s = setup(concurrency=4)
    s.receiver.handler = handler
    for name in ("msg_quick", "msg_stuck_1", "msg_stuck_2"):
        add(s.store, name)
    stop = running(s.deliverer)
    await until(lambda: len(s.receiver.requests) == 3, "three requests in flight")
    stop.set()
    start = time.monotonic()
    await asyncio.wait_for(s.deliverer.drain(grace=0.5), WAIT)
    elapsed = time.monotonic() - start
    assert 0.4 <= elapsed < 3.0
    assert sorted(cancelled) == ["msg_stuck_1", "msg_stuck_2"]
    assert s.deliverer.in_flight == 0
    assert states(s.store) == {"msg_quick": "delivered", "msg_stuck_1": "pending", "msg_stuck_2": "pending"}
    for name in ("msg_stuck_1", "msg_stuck_2"):
        stored = row(s.store, name)
        assert stored["lease_until"] is None, "a cancelled attempt gives its lease back"
        assert stored["attempts"] == 0, "a cancelled attempt is not counted"
    assert sorted(d.id for d in s.store.take_due(time.time(), 10, 60)) == ["msg_stuck_1", "msg_stuck_2"]


@pytest.mark.asyncio
async def test_drain_gives_back_leased_deliveries_not_yet_started(
    setup: MakeSetup, running: Callable[[Deliverer], asyncio.Event]
) -> None:
    never = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        await never.wait()
        return httpx.Response(200)

    s = setup(concurrency=1)
    s.receiver.handler = handler
    for n in range(4):
        add(s.store, f"msg_{n}", due_at=time.time() - 10 + n)
    stop = running(s.deliverer)
    await until(lambda: len(s.receiver.requests) == 1, "the first request")
    leased = {d.id for d in s.store.deliveries() if row(s.store, d.id)["lease_until"] is not None}
    assert leased == {"msg_0", "msg_1"}, "the slot's delivery and one round more are leased"
    stop.set()
    await asyncio.wait_for(s.deliverer.drain(grace=0.1), WAIT)
    assert [r.headers["webhook-id"] for r in s.receiver.requests] == ["msg_0"]
    assert all(row(s.store, f"msg_{n}")["lease_until"] is None for n in range(4))
    assert sorted(d.id for d in s.store.take_due(time.time(), 10, 60)) == [f"msg_{n}" for n in range(4)]


@pytest.mark.asyncio
async def test_drain_with_nothing_in_flight_returns_at_once(setup: MakeSetup) -> None:
    s = setup()
    await asyncio.wait_for(s.deliverer.drain(grace=30), 1.0)


def test_lease_is_taken_for_the_attempt(store: Store) -> None:
    add(store, "msg_1")
    now = time.time()
    take(store, "msg_1", now)
    assert row(store, "msg_1")["lease_until"] == pytest.approx(now + 60)
    assert store.take_due(now + 30, 10, 60) == [], "a leased delivery is not taken twice"
    assert [d.id for d in store.take_due(now + 61, 10, 60)] == ["msg_1"], "an expired lease is taken again"


def test_webhook_timeout_default() -> None:
    assert hook().timeout == timedelta(seconds=15)


# -- hand-over from an ingest batch (issue 19) ---------------------------------------------------------------
def queue_and_lease(
    store: Store, ids: list[str], lease: float, room: int = 100, ago: float = 0.0
) -> tuple[list[Delivery], float]:
    """As an ingest batch does: queue deliveries and lease them for the deliverer in the same transaction
    (`ago`: as if that had been so many seconds ago)."""
    payload = json.dumps({"alert_id": "a", "rule": "hoogverraad", "hits": [{"term": "hoogverraad"}]})
    now = time.time() - ago
    new = [NewDelivery(key, "newsroom", DeliveryKind.alert, "hoogverraad", now, payload=payload) for key in ids]
    with store.transaction() as tx:
        tx.queue_deliveries(new)
        leased = tx.lease_queued(now, room, lease)
    return leased, now + lease


def count_store_calls(store: Store, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    calls = {"n": 0}
    for name in ("record_outcomes_and_lease", "next_due"):
        original = getattr(store, name)

        def counted(*args: Any, _original: Callable[..., Any] = original) -> Any:
            calls["n"] += 1
            return _original(*args)

        monkeypatch.setattr(store, name, counted)
    return calls


@pytest.mark.asyncio
async def test_deliveries_handed_over_are_sent_without_a_look_in_the_outbox(
    setup: MakeSetup, running: Callable[[Deliverer], asyncio.Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    s = setup(lease=60.0)
    handed: list[int] = []
    s.deliverer.on_handed = handed.append
    calls = count_store_calls(s.store, monkeypatch)
    running(s.deliverer)
    await until(lambda: calls["n"] == 2, "the first turn's look in the outbox (and the next due time)")
    looks: list[int] = []  # store calls made before each request

    async def handler(request: httpx.Request) -> httpx.Response:
        looks.append(calls["n"])
        return httpx.Response(200)

    s.receiver.handler = handler
    leased, until_ = await asyncio.to_thread(queue_and_lease, s.store, ["msg_1", "msg_2"], 60.0)
    assert [d.id for d in leased] == ["msg_1", "msg_2"] and row(s.store, "msg_1")["lease_until"] == until_
    await asyncio.to_thread(s.deliverer.hand_over, leased, until_, time.monotonic(), 60.0, False)
    await until(lambda: len(s.receiver.requests) == 2, "both requests")
    assert looks == [2, 2], "a hand-over looked in the outbox before sending"
    await until(lambda: set(states(s.store).values()) == {"delivered"}, "both stored as delivered")
    assert handed == [2]
    assert sorted(r.headers["webhook-id"] for r in s.receiver.requests) == ["msg_1", "msg_2"]


@pytest.mark.asyncio
async def test_a_batch_leases_no_more_than_the_deliverers_room_and_the_rest_come_from_the_outbox(
    setup: MakeSetup, running: Callable[[Deliverer], asyncio.Event]
) -> None:
    s = setup(concurrency=1, lease=60.0)
    running(s.deliverer)
    await until(lambda: s.deliverer.room()[0] == 2, "the deliverer to run")
    ids = [f"msg_{n}" for n in range(5)]
    leased, until_ = await asyncio.to_thread(queue_and_lease, s.store, ids, 60.0, s.deliverer.room()[0])
    assert len(leased) == 2 and [row(s.store, key)["lease_until"] for key in ids[2:]] == [None] * 3
    await asyncio.to_thread(s.deliverer.hand_over, leased, until_, time.monotonic(), 60.0, True)
    await until(lambda: set(states(s.store).values()) == {"delivered"}, "all five delivered")
    assert sorted(r.headers["webhook-id"] for r in s.receiver.requests) == ids  # each once


@pytest.mark.asyncio
async def test_a_delivery_handed_over_too_late_for_its_lease_is_given_back_then_sent_once(
    setup: MakeSetup, running: Callable[[Deliverer], asyncio.Event]
) -> None:
    """The lease-expiry guard applies to deliveries held in memory after a hand-over: one whose lease would
    end before its attempt could (the loop took it up late) is given back while the lease holds it."""
    lease = 20.0 + deliverer_module.LEASE_SPARE + 0.3  # an attempt may start up to 0.3 s into the lease
    s = setup(lease=lease, webhook=hook(timeout="20s"))
    running(s.deliverer)
    await until(lambda: s.deliverer.room()[0] == 16, "the deliverer to run")
    leased, until_ = await asyncio.to_thread(queue_and_lease, s.store, ["msg_1"], lease, 100, 1.0)
    leased_at = time.monotonic() - 1.0  # the batch committed 1 s ago: too late to start within the lease
    with capture_logs() as logs:
        await asyncio.to_thread(s.deliverer.hand_over, leased, until_, leased_at, lease, False)
        await until(lambda: states(s.store) == {"msg_1": "delivered"}, "msg_1 delivered after it was given back")
    assert "delivery_lease_returned" in [e["event"] for e in logs]
    assert [r.headers["webhook-id"] for r in s.receiver.requests] == ["msg_1"]


@pytest.mark.asyncio
async def test_a_hand_over_after_the_drain_is_given_back(setup: MakeSetup) -> None:
    s = setup(lease=60.0)
    stop = asyncio.Event()
    task = asyncio.create_task(s.deliverer.run(stop))
    await until(lambda: s.deliverer.room()[0] == 16, "the deliverer to run")
    leased, until_ = await asyncio.to_thread(queue_and_lease, s.store, ["msg_1"], 60.0)
    stop.set()
    await asyncio.wait_for(task, WAIT)
    await asyncio.wait_for(s.deliverer.drain(1.0), WAIT)
    assert s.deliverer.room()[0] == 0
    s.deliverer._loop = asyncio.get_running_loop()  # a hand-over that read the loop just before the drain
    s.deliverer.hand_over(leased, until_, time.monotonic(), 60.0, False)
    s.deliverer._loop = None
    await until(lambda: row(s.store, "msg_1")["lease_until"] is None, "the lease given back")
    assert s.receiver.requests == []
