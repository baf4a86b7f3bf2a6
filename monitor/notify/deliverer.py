"""The deliverer: takes due deliveries from the outbox and POSTs them: `deliver(delivery) -> AttemptOutcome`.

2xx is success. 429, 5xx, 408, redirects (never followed), timeouts and connection errors are retried on
the webhook's schedule with ±20 % jitter, honouring Retry-After; other 4xx are permanent; 410 disables the
webhook and holds its deliveries. After the last attempt a delivery is dead, and stays replayable.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import email.utils
import enum
import functools
import random
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any, NamedTuple

import httpx
import structlog

from monitor.config.redaction import mask_text
from monitor.config.rules import Webhook
from monitor.config.settings import LEASE_SPARE as SPARE
from monitor.config.settings import RENEWALS
from monitor.notify.formats import discord, render
from monitor.notify.signing import webhook_headers
from monitor.notify.transport import Clients
from monitor.store import Attempted, Delivery, DeliveryKind, State, Store

log = structlog.get_logger(__name__)
RETRY_AFTER_CAP = 6 * 3600.0
IDLE_POLL = 30.0  # seconds between looks at the outbox when nothing wakes the deliverer
NOTHING_DUE = float("inf")  # `_record_and_lease`'s next due time when no open delivery is due at all
STORE_RETRY = 1.0  # seconds before trying the store again after it failed
RESPONSE_CAP = 65_536  # bytes of a response body read (discarded, or kept for a Discord thread's id); past them
# the connection is closed
ERROR_CHARS = 500  # of an error message stored and logged
SLOW_ATTEMPT = 2.0  # seconds: an attempt this long gives its webhook one slot until an attempt is quicker
LEASE_SPARE = SPARE.total_seconds()  # of a lease (at most a quarter) kept past an attempt's end, to store its outcome
INLINE_HITS = 20  # an alert with at most this many hits, of at most INLINE_CHARS characters in all, is
INLINE_CHARS = 8_192  # rendered on the loop; anything larger in a worker thread


class AttemptOutcome(enum.StrEnum):
    """What one delivery attempt came to (the `outcome` label of `monitor_delivery_attempts_total`)."""

    delivered = "delivered"
    retry = "retry"
    dead = "dead"
    disabled = "disabled"


@dataclass(frozen=True, slots=True)
class Attempt:
    outcome: AttemptOutcome
    status: int | None
    error: str | None  # masked (mask_text), cut to ERROR_CHARS: a receiver's text (a Location header) is untrusted
    retry_after: float | None = None

    def __post_init__(self) -> None:
        if self.error is None:
            return
        error = mask_text(self.error)  # a redirect may echo the webhook URL with its token: stored, logged, shown
        object.__setattr__(self, "error", error if len(error) <= ERROR_CHARS else error[: ERROR_CHARS - 1] + "…")


def classify(response: httpx.Response) -> Attempt:
    status = response.status_code
    if 200 <= status < 300:
        return Attempt(AttemptOutcome.delivered, status, None)
    error = f"HTTP {status}"
    if status == 410:
        return Attempt(AttemptOutcome.disabled, status, "HTTP 410 Gone: webhook disabled")
    if 300 <= status < 400:
        return Attempt(
            AttemptOutcome.retry, status, f"{error} redirect to {response.headers.get('location', '?')} not followed"
        )
    if status in (408, 429) or status >= 500:
        return Attempt(AttemptOutcome.retry, status, error, retry_after(response.headers.get("retry-after")))
    return Attempt(AttemptOutcome.dead, status, f"{error} (permanent)")


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), capped; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), RETRY_AFTER_CAP)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:  # "-0000": UTC without a claim about local time (RFC 5322)
        moment = moment.replace(tzinfo=UTC)
    return min(max(0.0, moment.timestamp() - (time.time() if now is None else now)), RETRY_AFTER_CAP)


def next_delay(webhook: Webhook, attempts_done: int, hint: float | None) -> float | None:
    """Seconds until the next attempt after `attempts_done` attempts, or None when none is left."""
    if attempts_done > len(webhook.retry_schedule):
        return None
    base = webhook.retry_schedule[attempts_done - 1].total_seconds()
    delay = base * random.uniform(0.8, 1.2)
    return max(delay, hint) if hint is not None else delay


class Deliverer:
    """Attempts run `concurrency` at a time, and at most `per_webhook` of them for one webhook (default: half
    the slots), taken from the webhooks in turn: a webhook that keeps its slots busy queues behind itself. A
    webhook whose last attempt was slow (SLOW_ATTEMPT or more) gets one slot until an attempt is quick again."""

    def __init__(
        self,
        store: Store,
        webhooks: Callable[[], Mapping[str, Webhook]],
        client: httpx.AsyncClient | Callable[[Webhook], httpx.AsyncClient],  # the daemon's: `Clients`
        concurrency: int = 8,
        lease: float = 30.0,
        per_webhook: int | None = None,
    ) -> None:
        self.store = store
        self.webhooks = webhooks
        self._client = client
        self.lease = lease
        self._concurrency = concurrency
        self._per_webhook = per_webhook or max(1, concurrency // 2)
        self._wake = asyncio.Event()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._posted: list[_UnstoredAttempt] = []  # attempts made whose outcomes are not stored yet
        self._ready: dict[str, deque[_Leased]] = {}  # per webhook, in turn order: leased, not started yet
        self._running: Counter[str] = Counter()  # per webhook: attempts started and not ended
        self._slow: set[str] = set()  # webhooks whose last attempt took SLOW_ATTEMPT or more
        self._background: set[asyncio.Future[None]] = set()  # give-backs of hand-overs that came too late
        self._sent: dict[str, deque[float]] = {}  # per webhook: start times of attempts in the last minute
        self._leases: dict[str, _Lease] = {}  # deliveries leased and not stored: their lease_until, renewed
        self._look = True  # the next turn looks for due deliveries in the outbox (not for a hand-over alone)
        self._loop: asyncio.AbstractEventLoop | None = None  # while `run` runs: where hand-overs go
        self.on_outcome: Callable[[Delivery, Attempt], None] | None = None
        self.on_handed: Callable[[int], None] | None = None  # deliveries handed over (metrics), on the loop

    def wake(self) -> None:
        """Look for due deliveries in the outbox at once."""
        self._look = True
        self._wake.set()

    def room(self) -> tuple[int, float]:
        """From an ingest thread (`monitor.ingest.pipeline.Handoff`): how many deliveries a batch may lease for
        this deliverer and hand over (two rounds of slots, less those held), and the lease (seconds). Read
        without a lock: a batch may lease a few more than the room, held and renewed like any other."""
        held = len(self._leases) if self._loop is not None else 2 * self._concurrency
        return max(0, 2 * self._concurrency - held), self.lease

    def hand_over(self, deliveries: list[Delivery], until: float, at: float, length: float, more: bool) -> None:
        """From an ingest thread, after its commit: deliveries leased for this deliverer in the batch's
        transaction, until `until` (for `length` seconds from `at`, time.monotonic), started on the loop with
        one wake-up and no look in the outbox (`more`: the batch queued others, looked for then). The
        attempts are guarded by their lease like any other (`_in_lease`): one handed over late is given back.
        Lost in a crash, they are due again when their lease runs out (SQLite: at the next start)."""
        loop = self._loop
        if loop is None:  # not running: their leases run out, and the outbox has them
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: the same
            loop.call_soon_threadsafe(self._take_over, deliveries, _Lease(until, at, length), more)

    def _take_over(self, deliveries: list[Delivery], lease: _Lease, more: bool) -> None:
        """On the loop: the deliveries handed over join the lines, leased; the next turn starts them."""
        for delivery in deliveries:
            self._leases[delivery.id] = lease
        if self._loop is None:  # `drain` ran meanwhile: given back at once
            task = asyncio.ensure_future(self._give_back([delivery.id for delivery in deliveries]))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return
        for delivery in deliveries:
            self._ready.setdefault(delivery.webhook, deque()).append(_Leased(delivery, lease.at))
        if self.on_handed is not None and deliveries:
            self.on_handed(len(deliveries))
        self._look = self._look or more
        self._wake.set()

    @property
    def in_flight(self) -> int:
        """Attempts started whose outcome is not stored yet."""
        return len(self._tasks) + len(self._posted)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set; then return without starting new attempts. The leases held are
        renewed every third of a lease (`_renew`)."""
        self._loop = asyncio.get_running_loop()
        while not stop.is_set():
            self._wake.clear()
            try:
                await self._step(stop)
            except Exception:  # the store failed: log it and try again later, never a dead loop
                log.exception("delivery_poll_failed", retry_in=STORE_RETRY)
                self._look = True
                await self._wait(stop, STORE_RETRY)

    async def _step(self, stop: asyncio.Event) -> None:
        """One turn: start leased deliveries while slots are free; when the leased ones cannot fill the free
        slots, or finished attempts have piled up, store those outcomes and lease more, in one hop to a
        worker thread and one transaction; then wait for a finished attempt, a wake-up, the next due time or
        the next renewal of leases. A turn woken only by a hand-over (`hand_over`) starts what it was handed
        and does not look in the outbox."""
        await self._renew()
        await self._start_ready()
        free = self._concurrency - len(self._tasks)  # the slots of finished attempts are free once stored, below
        startable = self._startable()
        short = free > startable
        look, self._look = self._look, False
        next_due: float | None = None
        if (short and look) or self._posted:  # outcomes are stored at once: a crash repeats at most `concurrency`
            posted, self._posted = self._posted, []  # attempts
            limit = free + self._concurrency - startable if short else 0  # the free slots and one round more
            now, leased_at = time.time(), time.monotonic()  # the lease runs from before the hop to the thread
            quiet = not self._tasks  # nothing running: the thread also says when the next delivery is due
            try:
                outcomes, due, next_due = await asyncio.to_thread(
                    self._record_and_lease, posted, now, limit, self._busy(), quiet
                )
            except BaseException:
                self._posted[:0] = posted  # not stored: kept for the next turn (their leases still hold them)
                raise
            for item in posted:
                self._leases.pop(item.delivery.id, None)
            self._report(posted, outcomes)
            for delivery in due:
                self._leases[delivery.id] = _Lease(now + self.lease, leased_at, self.lease)
                self._ready.setdefault(delivery.webhook, deque()).append(_Leased(delivery, leased_at))
            await self._start_ready()
            if due and self.in_flight < self._concurrency:  # slots left, the leased ones capped: lease again,
                self.wake()  # those webhooks left out once they have two rounds in hand
        if self._tasks or self._posted:  # each finished attempt wakes the loop, which then looks for more
            await self._wait(stop, _earliest(self._until_late(), self._until_renewal()))  # or one in line runs
            return  # short of lease, or leases are to be renewed
        if next_due is None:
            found = await asyncio.to_thread(self.store.next_due)
            next_due = NOTHING_DUE if found is None else found
        idle = IDLE_POLL if next_due == NOTHING_DUE else min(IDLE_POLL, max(0.0, next_due - time.time()))
        await self._wait(stop, _earliest(idle, self._until_renewal()))

    async def _renew(self) -> None:
        """Renew the leases held for a third of a lease or longer, each only while it is still this
        deliverer's: a delivery waiting for a slot keeps its lease however long it waits, so the lease needs
        to hold one attempt (two thirds of the way to a renewal), not a wait and an attempt, and a dead
        replica's deliveries are taken over that much sooner. A lease found lost (it ran out while the store
        was away, and another replica took it) is dropped from the line, never attempted here."""
        now, at = time.time(), time.monotonic()  # the renewed lease runs from before the hop to the thread
        due = [(key, lease.until) for key, lease in self._leases.items() if at - lease.at >= lease.length / RENEWALS]
        if not due:
            return
        renewed = await asyncio.to_thread(self.store.renew, due, now + self.lease)
        for key in renewed.intersection(self._leases):
            self._leases[key] = _Lease(now + self.lease, at, self.lease)
        lost = {key for key, _ in due} - renewed
        if lost:
            self._forget(lost)
            log.warning("delivery_lease_lost", deliveries=len(lost), ids=sorted(lost)[:10])

    def _forget(self, lost: set[str]) -> None:
        """Drop leases found lost, and the deliveries among them still waiting in line."""
        for key in lost:
            self._leases.pop(key, None)
        for name in list(self._ready):
            queue = deque(leased for leased in self._ready[name] if leased.delivery.id not in lost)
            if queue:
                self._ready[name] = queue
            else:
                del self._ready[name]

    def _until_renewal(self) -> float | None:
        """Seconds until the oldest lease held is to be renewed; None when none is held."""
        first = min((lease.at + lease.length / RENEWALS for lease in self._leases.values()), default=None)
        return None if first is None else max(0.0, first - time.monotonic())

    def _busy(self) -> list[str]:
        """Webhooks to leave out of the next lease: those with two rounds in hand. (Not those over their
        max_per_minute: their due rows would keep the idle wait at zero; they are leased and deferred.)"""
        return sorted(name for name in self._ready if self._in_hand(name) >= 2 * self._cap(name))

    def _cap(self, webhook: str) -> int:
        return 1 if webhook in self._slow else self._per_webhook

    def _in_hand(self, webhook: str) -> int:
        """The webhook's attempts running and deliveries leased for it, not started yet."""
        return self._running[webhook] + len(self._ready.get(webhook, ()))

    def _startable(self) -> int:
        """Leased deliveries that could start now if slots were free (their webhooks under their caps)."""
        ready = self._ready.items()
        return sum(max(0, min(len(queue), self._cap(name) - self._running[name])) for name, queue in ready)

    def _next_ready(self) -> Delivery | None:
        """The next delivery to start: the first webhook in turn under its cap gives its oldest, and goes to
        the end of the turn."""
        for name in list(self._ready):
            if self._running[name] >= self._cap(name):
                continue
            queue = self._ready.pop(name)
            leased = queue.popleft()
            if queue:
                self._ready[name] = queue  # to the end of the turn
            return leased.delivery
        return None

    def _take_late(self) -> list[str]:
        """Take out of the lines the deliveries whose lease would end before their attempt could (their
        webhook's timeout and a spare): they are given back while the lease still holds them."""
        late: list[str] = []
        for name in list(self._ready):
            queue = self._ready[name]
            while queue and not self._in_lease(queue[0]):
                late.append(queue.popleft().delivery.id)
            if not queue:
                del self._ready[name]
        return late

    def _in_lease(self, leased: _Leased) -> bool:
        """Whether an attempt started now would end within the delivery's lease."""
        return self._late_at(leased) > time.monotonic()

    def _late_at(self, leased: _Leased) -> float:
        """When (time.monotonic) an attempt of the delivery would no longer end within its lease (as last
        renewed: an attempt never relies on a renewal to come)."""
        webhook = self.webhooks().get(leased.delivery.webhook)
        budget = webhook.timeout.total_seconds() if webhook is not None else 0.0
        lease = self._leases.get(leased.delivery.id) or _Lease(0.0, leased.at, self.lease)
        return lease.at + lease.length - budget - min(LEASE_SPARE, lease.length / 4)

    def _until_late(self) -> float | None:
        """Seconds until the first leased delivery waiting in line can no longer start (then it is given back
        while its lease still holds it); None when none waits."""
        first = min((self._late_at(queue[0]) for queue in self._ready.values() if queue), default=None)
        return None if first is None else max(0.0, first - time.monotonic())

    async def _start_ready(self) -> None:
        """Give back the late deliveries; start leased ones while slots are free (those over their webhook's
        rate are deferred to their turn, not dropped)."""
        late = self._take_late()
        deferred: list[tuple[str, float]] = []
        while self.in_flight < self._concurrency:  # sent and not stored counts as in flight
            delivery = self._next_ready()
            if delivery is None:
                break
            wait = self._throttled(delivery.webhook)
            if wait is not None:  # over the webhook's max_per_minute: due again when its window reopens
                deferred.append((delivery.id, time.time() + wait))
                continue
            self._running[delivery.webhook] += 1
            task = asyncio.create_task(self._attempt(delivery), name=f"deliver {delivery.id}")
            self._tasks[delivery.id] = task
            task.add_done_callback(functools.partial(self._done, delivery))
        if deferred:
            await asyncio.to_thread(self.store.defer, deferred)
            for delivery_id, until in deferred:
                self._leases.pop(delivery_id, None)
                log.info("delivery_throttled", id=delivery_id, until=round(until, 3))
        if late:  # due again at once: leased again in a later turn, by this deliverer or another
            log.info("delivery_lease_returned", deliveries=len(late))
            await self._give_back(late)
            self.wake()

    async def _give_back(self, ids: list[str]) -> None:
        """Release the leases of deliveries not attempted, each only if it is still the lease this deliverer
        took (on PostgreSQL another replica may hold a later one)."""
        leases = [(key, self._leases.pop(key).until) for key in ids if key in self._leases]
        if leases:
            await asyncio.to_thread(self.store.release, leases)

    def _record_and_lease(
        self, posted: list[_UnstoredAttempt], now: float, limit: int, busy: Sequence[str] = (), idle: bool = False
    ) -> tuple[list[AttemptOutcome], list[Delivery], float | None]:
        """In a worker thread: store finished attempts and lease what is due, in one transaction; `idle` (no
        attempt runs) and nothing leased: when the next delivery is due as well (NOTHING_DUE: none is), so
        that the deliverer's wait needs no other hop to a thread."""
        decided = [self._decide(item, now) for item in posted]
        for item, (outcome, _) in zip(posted, decided, strict=True):
            if outcome is AttemptOutcome.disabled:
                self.store.set_webhook_disabled(item.delivery.webhook, True, item.attempt.error)
        pairs = list(zip(posted, decided, strict=True))
        attempted = [Attempted(item.delivery.id, item.delivery.webhook, **values) for item, (_, values) in pairs]
        due = self.store.record_outcomes_and_lease(attempted, now, limit, self.lease, busy)
        for item, (outcome, values) in pairs:
            _log_outcome(item, outcome, values, now)
        next_due = None
        if idle and not due:
            next_due = self.store.next_due()
            next_due = NOTHING_DUE if next_due is None else next_due
        return [outcome for outcome, _ in decided], due, next_due

    async def _attempt(self, delivery: Delivery) -> None:
        """A task of the loop: POST, and leave the outcome for the loop's next step to store."""
        started = time.monotonic()
        posted = await self._try(delivery)
        self._mark_speed(delivery.webhook, time.monotonic() - started)
        self._posted.append(posted)  # the list of now: a step may have taken the one of the start

    def _mark_speed(self, webhook: str, took: float) -> None:
        if took < SLOW_ATTEMPT:
            if webhook in self._slow:
                self._slow.discard(webhook)
                log.info("webhook_quick_again", webhook=webhook, took=round(took, 3))
        elif webhook not in self._slow:
            self._slow.add(webhook)
            log.warning("webhook_slow", webhook=webhook, took=round(took, 3), slots=1)

    async def _try(self, delivery: Delivery) -> _UnstoredAttempt:
        webhook = self.webhooks().get(delivery.webhook)
        if webhook is None:
            attempt = Attempt(AttemptOutcome.dead, None, f"webhook {delivery.webhook!r} is not in the rules file")
        else:
            attempt = await self._post(webhook, delivery)
        return _UnstoredAttempt(webhook, delivery, attempt)

    def _throttled(self, webhook: str) -> float | None:
        """Seconds until the webhook may take another attempt, or None to go now (the attempt is counted)."""
        hook = self.webhooks().get(webhook)
        if hook is None or hook.max_per_minute is None:
            return None
        now = time.time()
        sent = self._sent.setdefault(webhook, deque())
        while sent and sent[0] <= now - 60:
            sent.popleft()
        if len(sent) >= hook.max_per_minute:
            return sent[0] + 60 - now
        sent.append(now)
        return None

    def _done(self, delivery: Delivery, task: asyncio.Task[None]) -> None:
        self._tasks.pop(delivery.id, None)
        self._running[delivery.webhook] -= 1
        if self._running[delivery.webhook] <= 0:
            del self._running[delivery.webhook]
        self._look = True  # its slot is free once its outcome is stored: that turn looks for more
        self._wake.set()
        if not task.cancelled() and (error := task.exception()) is not None:  # its lease expires: retried then
            self._leases.pop(delivery.id, None)
            log.error("delivery_crashed", id=delivery.id, error=repr(error), exc_info=error)

    def _report(self, posted: list[_UnstoredAttempt], outcomes: list[AttemptOutcome]) -> None:
        """On the loop, after the outcomes are stored: tell the daemon (metrics)."""
        if self.on_outcome is None:
            return
        for item, outcome in zip(posted, outcomes, strict=True):
            self.on_outcome(item.delivery, dataclasses.replace(item.attempt, outcome=outcome))

    async def _wait(self, stop: asyncio.Event, timeout: float | None) -> None:
        """Wait for a wake-up, `stop` or `timeout` seconds; a wait that times out looks in the outbox next."""
        waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        if not done:
            self._look = True

    async def drain(self, grace: float) -> None:
        """Let in-flight attempts finish within `grace` seconds; cancel the rest (they stay due); store
        the outcomes of the finished ones. Hand-overs that come after this are given back."""
        self._loop = None
        waiting = [leased.delivery.id for queue in self._ready.values() for leased in queue]
        self._ready.clear()
        await self._give_back(waiting)  # never started: given back at once, while their leases hold
        tasks = list(self._tasks.values())
        leftover: list[str] = []
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            leftover = [key for key, task in self._tasks.items() if task in pending]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        posted, self._posted = self._posted, []
        if posted:
            self._report(posted, await asyncio.to_thread(self._store_outcomes, posted))
        await self._give_back(leftover)

    async def deliver(self, delivery: Delivery) -> AttemptOutcome:
        """One attempt of one delivery, outside the loop: POST and store its outcome."""
        posted = [await self._try(delivery)]
        outcomes = await asyncio.to_thread(self._store_outcomes, posted)
        self._report(posted, outcomes)
        return outcomes[0]

    async def _post(self, webhook: Webhook, delivery: Delivery) -> Attempt:
        """One POST within the webhook's timeout: connect, send and the whole response (its body read up to
        RESPONSE_CAP bytes and discarded; past that the connection is closed). A Discord message that starts a
        story's thread keeps the body, and the thread's id is stored after a success (`_keep_thread`)."""
        route = await self._route(webhook, delivery)
        try:
            body, headers = await _prepared(webhook, delivery, route)
        except Exception as exc:  # a broken template must not kill the loop: the delivery dies visibly
            log.exception("delivery_render_failed", id=delivery.id, webhook=delivery.webhook)
            return Attempt(AttemptOutcome.dead, None, f"cannot render {webhook.format}: {exc}"[:ERROR_CHARS])
        timeout = webhook.timeout.total_seconds()
        try:
            async with asyncio.timeout(timeout):  # httpx's timeout is per read: a drip of bytes would outlive it
                attempt, reply = await self._send(webhook, route, body, headers, timeout)
            if route.key is not None and attempt.outcome is AttemptOutcome.delivered:
                await self._keep_thread(delivery, route.key, reply)
            return attempt
        except (TimeoutError, httpx.TimeoutException):
            return Attempt(AttemptOutcome.retry, None, f"timed out after {timeout:g}s")
        except httpx.RequestError as exc:  # connection, protocol, or a response body that cannot be read
            return Attempt(AttemptOutcome.retry, None, _reason(exc))
        except Exception as exc:  # a bug, or a value httpx cannot send: a failed attempt, never a lost lease
            log.exception("delivery_attempt_crashed", id=delivery.id, webhook=delivery.webhook)
            return Attempt(AttemptOutcome.retry, None, _reason(exc))

    def client(self, webhook: Webhook) -> httpx.AsyncClient:
        """The client for a webhook's attempts: direct or through its proxy."""
        return self._client if isinstance(self._client, httpx.AsyncClient) else self._client(webhook)

    async def _send(
        self, webhook: Webhook, route: discord.Route, body: bytes, headers: dict[str, str], timeout: float
    ) -> tuple[Attempt, bytes | None]:
        """POST; the response body is kept (up to RESPONSE_CAP bytes, else None) only when the route waits
        for the message to learn the thread it started."""
        client = self.client(webhook)
        if route.key is not None:  # the body is read raw: uncompressed, so that the cap bounds it
            headers = {**headers, "accept-encoding": "identity"}
        url = route.url(webhook.url)
        request = client.build_request("POST", url, content=body, headers=headers, timeout=timeout)
        if isinstance(self._client, Clients):  # the daemon's: past httpx's client layers (`Clients.send`)
            response = await self._client.send(webhook, request)
        else:
            response = await client.send(request, stream=True, follow_redirects=False)
        try:
            reply = await _discard_body(response, RESPONSE_CAP, keep=route.key is not None)
        finally:
            await response.aclose()  # a body not read to its end closes the connection instead of pooling it
        return classify(response), reply

    async def _route(self, webhook: Webhook, delivery: Delivery) -> discord.Route:
        """Where a Discord message goes (`discord.route`): the thread of its story, if the store has it (a
        store that fails: none, the message starts a thread of its own)."""
        key = discord.story_key(webhook, delivery)
        known = None
        if key is not None:
            try:
                known = await asyncio.to_thread(self.store.chat_thread, delivery.webhook, key)
            except Exception:
                log.exception("chat_thread_lookup_failed", id=delivery.id, webhook=delivery.webhook)
        return discord.route(webhook, delivery, known)

    async def _keep_thread(self, delivery: Delivery, key: str, reply: bytes | None) -> None:
        """Store the thread a delivered message started (from the receiver's answer: untrusted, bounded); a
        missing or malformed one, or a store that fails, leaves the story without a thread."""
        thread = discord.thread_of(reply)
        if thread is None:
            log.warning("chat_thread_unknown", id=delivery.id, webhook=delivery.webhook)
            return
        try:
            await asyncio.to_thread(self.store.save_chat_thread, delivery.webhook, key, thread, time.time())
        except Exception:
            log.exception("chat_thread_store_failed", id=delivery.id, webhook=delivery.webhook)

    def _store_outcomes(self, posted: list[_UnstoredAttempt]) -> list[AttemptOutcome]:
        """Store attempts in one transaction; each outcome is final: a retry without an attempt left is dead."""
        return self._record_and_lease(posted, time.time(), 0)[0]

    @staticmethod
    def _decide(item: _UnstoredAttempt, now: float) -> tuple[AttemptOutcome, dict[str, Any]]:
        """The final outcome of an attempt and the values to store."""
        delivery, attempt, webhook = item.delivery, item.attempt, item.webhook
        common: dict[str, Any] = {"last_status": attempt.status, "last_error": attempt.error}
        if attempt.outcome is AttemptOutcome.delivered:
            return AttemptOutcome.delivered, {"state": State.delivered, "delivered_at": now, **common}
        if attempt.outcome is AttemptOutcome.disabled:
            return AttemptOutcome.disabled, {"state": State.pending, "due_at": now, **common}
        retry = webhook is not None and attempt.outcome is AttemptOutcome.retry
        delay = next_delay(webhook, delivery.attempts + 1, attempt.retry_after) if retry and webhook else None
        if delay is None:
            return AttemptOutcome.dead, {"state": State.dead, **common}
        return AttemptOutcome.retry, {"state": State.retrying, "due_at": now + delay, **common}


def _reason(exc: Exception) -> str:
    """`ExcType: message` of a failed attempt (`ExcType` alone when it says nothing more)."""
    return f"{type(exc).__name__}: {exc}".rstrip(": ")  # Attempt masks it, then cuts it


async def _prepared(
    webhook: Webhook, delivery: Delivery, route: discord.Route = discord.CHANNEL
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of an attempt: rendered, encoded and signed in a worker thread unless the
    delivery is small enough that the hop to the thread would cost more than the work."""
    if _small(webhook, delivery):
        return _prepare(webhook, delivery, route)
    return await asyncio.to_thread(_prepare, webhook, delivery, route)


def _prepare(
    webhook: Webhook, delivery: Delivery, route: discord.Route = discord.CHANNEL
) -> tuple[bytes, dict[str, str]]:
    body = render(webhook, delivery, route) if route.thread_name is not None else render(webhook, delivery)
    secret = webhook.secret.get_secret_value() if webhook.secret else None
    return body, {**webhook.headers, **webhook_headers(delivery.id, int(time.time()), body, secret)}


def _small(webhook: Webhook, delivery: Delivery) -> bool:
    """An alert of a few short hits in a built-in format (measured: under 0.3 ms to render and sign, about
    the cost of a hop to a thread). Looks at no more than INLINE_HITS hits, whatever the payload holds."""
    if delivery.kind != DeliveryKind.alert or webhook.format == "template":
        return False
    hits = delivery.payload.get("hits")
    if not isinstance(hits, list) or len(hits) > INLINE_HITS:
        return False
    chars = 0
    for hit in hits:
        if not isinstance(hit, dict):
            return False
        chars += sum(len(value) for value in hit.values() if isinstance(value, str))
    return chars <= INLINE_CHARS


async def _discard_body(response: httpx.Response, cap: int, keep: bool = False) -> bytes | None:
    """Read the raw body (no decoding) until its end or past `cap` bytes; return it with `keep` (None past
    `cap`, or without `keep`)."""
    if response.is_stream_consumed:  # a response made with its content (a mock transport)
        return response.content if keep and len(response.content) <= cap else None
    read, chunks = 0, []
    async for chunk in response.aiter_raw():
        read += len(chunk)
        if read > cap:
            return None
        if keep:
            chunks.append(chunk)
    return b"".join(chunks) if keep else None


class _Lease(NamedTuple):
    """A lease this deliverer holds: its lease_until (as stored), when (time.monotonic) it began or was last
    renewed, and for how long (seconds: the lease in force then; a reload may change it)."""

    until: float
    at: float
    length: float


def _earliest(*waits: float | None) -> float | None:
    """The shortest of the waits given (None: no limit)."""
    return min((wait for wait in waits if wait is not None), default=None)


@dataclass(frozen=True, slots=True)
class _Leased:
    """A delivery leased for this deliverer, and when (time.monotonic)."""

    delivery: Delivery
    at: float


@dataclass(frozen=True, slots=True)
class _UnstoredAttempt:
    """An attempt made, its outcome not yet stored."""

    webhook: Webhook | None
    delivery: Delivery
    attempt: Attempt


def _log_outcome(item: _UnstoredAttempt, outcome: AttemptOutcome, values: Mapping[str, Any], now: float) -> None:
    delivery, error = item.delivery, item.attempt.error
    if outcome is AttemptOutcome.delivered:
        log.info("delivery_succeeded", id=delivery.id, webhook=delivery.webhook, attempts=delivery.attempts + 1)
    elif outcome is AttemptOutcome.disabled:
        log.error("webhook_disabled", webhook=delivery.webhook, reason=error)
    elif outcome is AttemptOutcome.dead:
        log.error("delivery_dead", id=delivery.id, webhook=delivery.webhook, error=error)
    else:
        log.warning(
            "delivery_failed",
            id=delivery.id,
            webhook=delivery.webhook,
            attempt=delivery.attempts + 1,
            error=error,
            retry_in=round(values["due_at"] - now, 3),
        )
