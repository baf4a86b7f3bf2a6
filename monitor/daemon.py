"""The daemon: starts the stages in order, runs until SIGTERM/SIGINT, reloads rules, shuts down gracefully.

Start-up: state store, rules, HTTP client and deliverer, the ingest lanes (`monitor.ingest.lanes`: ordinary and
large files), observers, a reconcile scan, the digest catch-up, the scheduler, the health server. Shutdown:
stop intake (observers, scheduler), give the batches in progress and in-flight deliveries `shutdown_grace`
to finish, close the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import os
import signal
import socket
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

import structlog

from monitor import HELD_SIGHUP, hold_sighup
from monitor.config.rules import RuleSet, load_rules
from monitor.config.settings import Settings
from monitor.errors import RulesError
from monitor.health import Health, HealthServer, Metrics, StateCollector
from monitor.ingest.articles import ArticleOutcome
from monitor.ingest.lanes import MAX_SLOW, Lane
from monitor.ingest.pipeline import Pipeline, Processed, ledger_key
from monitor.ingest.storyline import Storyline
from monitor.ingest.watch import Watcher, open_for_writing, scan
from monitor.ingest.worker import MatchWorker
from monitor.matching import language
from monitor.notify.alerts import flush_digest, latest_fire
from monitor.notify.deliverer import Attempt, AttemptOutcome, Deliverer
from monitor.notify.formats.template import load_template
from monitor.notify.transport import Clients
from monitor.schedule import Wakeups, cron
from monitor.store import Delivery, DeliveryKind, Store
from monitor.store.retention import longest_realert, prune

log = structlog.get_logger(__name__)
_T = TypeVar("_T")
INGEST_BATCH = 64  # paths taken from the main lane's queue per hop to its thread
# A file a scan finds changed within this long is taken only when no process has it open for writing (for
# writers the observer did not see open: started before the daemon, or watched by polling).
QUIET = 600.0
STORE_CHECK = 2.0  # seconds between checks that the state store takes a write, and how long one may take
RETRY_FIRST, RETRY_LAST = 2.0, 60.0  # seconds before a scan retries files that failed for now, doubling
LEDGER_CHUNK = 1000  # files of a reconcile scan looked up in the ledger at once
SLOW_BATCH = 1.0  # seconds: a main-lane batch still running after this is left to finish in a thread of its own
# The state store connections one daemon holds at once, by holder: its pool (state.postgres.pool_size unset).
# docs/scale-out.md ("Connections") states the sum and the formula for PostgreSQL's max_connections.
CONNECTIONS = {
    "ingest, main lane": 1 + MAX_SLOW,  # its batch, and the slow batches left running in threads of their own
    "ingest, large lane": 1,
    "deliverer": 1,  # one hop to a worker thread at a time
    "store check": 1,  # one probe at a time, even while one hangs
    "reconcile": 1,  # one scan at a time (`_reconcile_lock`)
    "digest flush": 1,  # one flush at a time (`_flush_lock`), whatever the number of rules due at once
    "metrics": 1,  # one scrape's outbox count at a time (monitor.health.StateCollector)
    "prune": 1,  # the retention prune: one batch at a time (its lease is a row, not a session lock)
}


def notify_systemd(state: str) -> None:
    """Tell systemd the daemon's state (sd_notify: a datagram to $NOTIFY_SOCKET); nothing without systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(state.encode(), address)


def _warm_languages() -> None:
    """`language.warm`, which only saves time: its failure is logged, never fatal."""
    try:
        language.warm()
    except Exception as exc:  # the detection that needs the models will raise it again, per article
        log.warning("language_models_not_loaded", error=f"{type(exc).__name__}: {exc}")


class Daemon:
    def __init__(self, settings: Settings) -> None:
        settings.watch.check_folders()  # a missing folder is refused (unless watch.create_folders)
        self.settings = settings
        self.store = Store(settings.state.url, settings.state.postgres, sum(CONNECTIONS.values()))
        self.ruleset: RuleSet = load_rules(settings.rules_file, check_template=load_template)
        if problems := settings.delivery.lease_problems(self.ruleset.webhooks, settings.rules_file):
            raise RulesError(problems)
        gc.freeze()  # the compiled rules live as long as the process: keep them out of every collection
        gc.enable()  # `run` starts with the collector off: imports and rules make objects that all stay
        self._rules_mtime = _mtime(settings.rules_file)
        self.worker = MatchWorker(settings.limits.large_article_bytes)  # large files: read in its process
        stories = settings.stories
        self.stories = Storyline(stories.window.total_seconds(), stories.threshold) if stories.enabled else None
        self.pipeline = Pipeline(
            self.store,
            lambda: self.ruleset,
            settings.watch.max_article_bytes,
            settings.limits,
            roots=settings.watch.folders,
            worker=self.worker,
            read_lease=settings.watch.read_lease.total_seconds(),
            stories=self.stories,
            quiet=stories.quiet.total_seconds(),
        )
        self._retry_delay = RETRY_FIRST  # seconds before the scan that retries files that failed for now
        self._retry_at = 0.0  # monotonic time of the scan asked for by the last round of failures
        self.stop = asyncio.Event()
        size = settings.watch.queue_size
        calls = (self._process_batch, self._processed, self._taken, self.submit)  # what a lane calls back
        shared: tuple[set[str], set[str]] = (set(), set())  # paths in flight and held, across the lanes
        self.lanes = {  # ordinary files in batches; large ones alone, so that one cannot hold up the others
            "main": Lane("main", size, INGEST_BATCH, *calls, slow=SLOW_BATCH, shared=shared),
            "large": Lane("large", size, 1, *calls, shared=shared),  # one at a time, even when slow
        }
        self._queued: set[str] = set()
        self._reconcile_lock = asyncio.Lock()
        self._flush_lock = asyncio.Lock()
        self._reload_lock = asyncio.Lock()
        self._reconcile_pending: asyncio.TimerHandle | None = None
        self._background: set[asyncio.Future[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.counts: dict[str, int] = {}
        self.metrics = Metrics()
        self._written_at: OrderedDict[str, float] = OrderedDict()  # path -> mtime, for the latency histogram
        # path -> time.time() of an alert delivered before its batch's results reached the loop (handed over)
        self._delivered_early: OrderedDict[str, float] = OrderedDict()
        self.on_processed: Callable[[Processed], None] | None = None
        self.started = False  # every stage runs
        self.store_ok = True  # the last check of the state store took a write (`_check_store`)
        self.observer_ok = True  # the last check found the observers alive (`_check_observer`)
        self.missing_folders: list[str] = []  # watched folders the last check did not find (`_check_observer`)
        self._store_probe: asyncio.Future[bool] | None = None

    async def serve(self) -> None:
        """Run until `stop` is set (by a signal or a caller), then shut down. A SIGHUP that came while the
        process was starting (`monitor.hold_sighup`) reloads the rules once the stages run."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        async with contextlib.AsyncExitStack() as stack:
            hold_sighup()  # until the stages run, a reload is kept for later
            await self._start(loop, stack)
            loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload("SIGHUP")))
            if HELD_SIGHUP.is_set():
                await self.reload("SIGHUP during start-up")
            notify_systemd("READY=1")  # Type=notify: systemd holds a reload until this
            stack.callback(notify_systemd, "STOPPING=1")
            log.info(
                "daemon_ready", rules=len(self.ruleset.rules), folders=[str(f) for f in self.settings.watch.folders]
            )
            await self.stop.wait()
            log.info("daemon_stopping")
        log.info("daemon_stopped", **dict(sorted(self.counts.items())))

    async def _start(self, loop: asyncio.AbstractEventLoop, stack: contextlib.AsyncExitStack) -> None:
        """Everything that can refuse to start (the state store and its lock, the health port) before any
        article is read or any alert sent; then the stages."""
        settings = self.settings
        # The language detector's models (~40 ms) load while the store opens, not on the first alert's path.
        warming = asyncio.ensure_future(asyncio.to_thread(_warm_languages))
        try:
            await asyncio.to_thread(self.store.create)
        finally:
            await warming  # never raises: a failed warm-up leaves the models to load when first needed
        stack.callback(self.store.close)
        stack.callback(self.worker.close)
        self.store.lock()
        if self.stories is not None:  # the story index of the window, from the store
            started = time.perf_counter()
            loaded = await asyncio.to_thread(self.stories.rebuild, self.store)
            log.info("stories_loaded", articles=loaded, seconds=round(time.perf_counter() - started, 3))
        if settings.http.enabled:  # /readyz says "starting" until the stages run
            self.metrics.registry.register(StateCollector(lambda: self.queued, self.store))
            reload = self._reload_now if settings.http.reload_allowed() else None
            server = HealthServer(self._health(), settings.http, self.metrics, reload)
            await server.start()
            stack.push_async_callback(server.close)
        if self.store.dialect == "sqlite":  # one process owns this file: leases of a crashed run are void
            released = await asyncio.to_thread(self.store.release_all)
            if released:
                log.warning("leases_released", deliveries=released, why="the previous run did not stop cleanly")
        clients = Clients(settings.delivery.concurrency)
        stack.push_async_callback(clients.aclose)
        await clients.warm()
        self.deliverer = Deliverer(
            self.store,
            lambda: self.ruleset.webhooks,
            clients,
            settings.delivery.concurrency,
            settings.delivery.lease_for(self.ruleset.webhooks).total_seconds(),
            settings.delivery.per_webhook,
        )
        self.deliverer.on_outcome = self._attempted
        self.deliverer.on_handed = self.metrics.handed_over.inc
        self.pipeline.handoff = self.deliverer  # a batch's deliveries go to it, leased in the batch's transaction
        deliver_stop = asyncio.Event()
        deliver_task = asyncio.create_task(self.deliverer.run(deliver_stop), name="deliverer")
        stack.push_async_callback(self._stop_delivery, deliver_stop, deliver_task)
        self._loop = loop
        tasks = [asyncio.create_task(lane.run(), name=f"ingest-{lane.name}") for lane in self.lanes.values()]
        stack.push_async_callback(self._stop_ingest, tasks)
        self.watcher = Watcher(
            settings.watch.folders,
            self.submit,
            loop,
            polling=settings.watch.observer == "polling",
            settle=settings.watch.settle.total_seconds(),
            suffixes=settings.watch.suffixes,
            create=settings.watch.create_folders,
            lost=self._events_lost,
        )
        self.watcher.start()
        stack.callback(self.watcher.stop)
        self.request_reconcile(0)  # in the background: a large backlog must not delay readiness
        await self.catch_up_digests()
        self.wakeups = Wakeups(settings.zone)
        self._plan(self.wakeups)
        self.wakeups.start()
        stack.callback(self.wakeups.shutdown)
        self.started = True

    def _health(self) -> Health:
        """What /readyz reads: the outcome of the daemon's own checks, never a blocking call."""
        return Health(
            started=lambda: self.started,
            observer_ok=lambda: self.observer_ok,
            scheduler_running=lambda: self.wakeups.running(),
            store_ok=lambda: self.store_ok,
            missing_folders=lambda: self.missing_folders,
        )

    def _plan(self, wakeups: Wakeups) -> None:
        wakeups.every("reconcile", self.settings.watch.reconcile_interval, self.reconcile)
        wakeups.every("retry-sweep", timedelta(seconds=15), self._sweep)
        wakeups.every("observer-check", timedelta(seconds=2), self._check_observer)
        wakeups.every("store-check", timedelta(seconds=STORE_CHECK), self._check_store)
        wakeups.every("rules-check", timedelta(seconds=2), self._check_rules_file)
        if self.settings.state.retention.prune_interval > timedelta(0):
            wakeups.every("prune", self.settings.state.retention.prune_interval, self.prune)
        wakeups.digests(self._digest_crons(), self.flush_digest)

    def _digest_crons(self) -> dict[str, str]:
        return {rule.name: rule.digest_cron for rule in self.ruleset.rules if rule.digest_cron}

    # -- intake ---------------------------------------------------------------------------------------
    def submit(self, path: str) -> None:
        """Queue a path in its lane (on the loop); a full queue asks for a reconcile scan."""
        if path in self._queued or self.stop.is_set():
            return
        try:
            self._lane(_size(path)).queue.put_nowait(path)
        except asyncio.QueueFull:
            self._count("queue_overflows")
            self.metrics.queue_overflows.inc()
            self.request_reconcile(1.0)
            return
        self._queued.add(path)

    def _lane(self, size: int) -> Lane:
        """The lane for a file of `size` bytes, decided before batching."""
        return self.lanes["large" if size >= self.settings.limits.large_article_bytes else "main"]

    @property
    def queued(self) -> int:
        """Paths waiting in the lanes' queues."""
        return sum(lane.queue.qsize() for lane in self.lanes.values())

    def _taken(self, paths: list[str]) -> None:
        self._queued.difference_update(paths)

    def _processed(self, result: Processed) -> None:
        self._record(result)
        self._retry_later(result)
        if self.on_processed is not None:
            self.on_processed(result)

    def _retry_later(self, result: Processed) -> None:
        """A file that failed for now (no file descriptors, the store away) is left unseen in the ledger: a
        reconcile scan after a back-off reads it again. The back-off doubles per round of retries (up to
        RETRY_LAST) while failures go on, and starts over after a quiet spell, so a file that always fails
        costs one scan a minute, not one every 2 s."""
        now = time.monotonic()
        if result.outcome is ArticleOutcome.failed:
            if now < self._retry_at:  # this round's scan is already asked for
                return
            self.request_reconcile(self._retry_delay)
            self._retry_at = now + self._retry_delay
            self._retry_delay = min(self._retry_delay * 2, RETRY_LAST)
        elif now > self._retry_at + RETRY_LAST:
            self._retry_delay = RETRY_FIRST

    def _process_batch(self, paths: list[str]) -> list[Processed]:
        """In a lane's thread: the paths of one batch (one hop to the thread, one transaction)."""
        if self.stop.is_set():  # shutting down: the paths stay unseen; the next start's reconcile reads them
            return []
        results = self.pipeline.process_many(paths)  # hands the deliveries it queued to the deliverer
        if any(result.outcome is ArticleOutcome.elsewhere for result in results) and self._loop is not None:
            # Files another replica claimed to read (PostgreSQL): a scan after its claim's lease finds them
            # recorded by it, or (it died mid-read) still unseen, and this replica takes the claim over.
            # Never lost meanwhile: the ledger has no row for them.
            self._loop.call_soon_threadsafe(self.request_reconcile, self.pipeline.read_lease + 1.0)
        return results

    async def _stop_ingest(self, tasks: list[asyncio.Task[None]]) -> None:
        """Let the batches in progress (in both lanes) finish within the grace period, then stop the lanes."""
        deadline = time.monotonic() + self.settings.delivery.shutdown_grace.total_seconds()
        while any(lane.busy for lane in self.lanes.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        busy = [lane.name for lane in self.lanes.values() if lane.busy]
        if busy:  # a daemon thread: it does not keep the process alive, and writes nothing: the file stays unseen
            self.pipeline.abandoned.set()
            log.warning("ingest_abandoned", lanes=busy, why="still reading after the shutdown grace")
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _stop_delivery(self, stop: asyncio.Event, task: asyncio.Task[None]) -> None:
        stop.set()
        await task
        await self.deliverer.drain(self.settings.delivery.shutdown_grace.total_seconds())

    def _events_lost(self) -> None:
        """The kernel's event queue overflowed: open counts are unreliable and files may be unseen."""
        self.watcher.forget_opens()
        self.request_reconcile(0.0)

    def request_reconcile(self, delay: float) -> None:
        """Run one reconcile scan after `delay` seconds; requests while one is pending are merged into the
        earlier of the two."""
        if self.stop.is_set():
            return
        loop = asyncio.get_running_loop()
        pending = self._reconcile_pending
        if pending is not None:
            if pending.when() <= loop.time() + delay:
                return
            pending.cancel()

        def start() -> None:
            self._reconcile_pending = None
            task = asyncio.ensure_future(self.reconcile())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

        self._reconcile_pending = loop.call_later(delay, start)

    async def reconcile(self) -> None:
        """Queue every file the ledger has not seen in this version (size and mtime), waiting for room
        in the queue rather than dropping paths; one scan at a time."""
        async with self._reconcile_lock:
            settle = self.settings.watch.settle.total_seconds()
            found, recent = await asyncio.to_thread(self._unseen, settle, self._seen_open(settle))
            if found:
                log.info("reconcile_found", files=len(found))
            for path, size in found:
                if self.stop.is_set():
                    return
                if path in self._queued:
                    continue
                lane = self._lane(size)
                if lane is self.lanes["main"]:  # back-pressure: wait for room rather than drop
                    self._queued.add(path)
                    await lane.queue.put(path)
                elif not lane.queue.full():  # never wait behind large files: a later scan takes the rest
                    self._queued.add(path)
                    lane.queue.put_nowait(path)
                else:
                    recent += 1
            self.metrics.reconciles.inc()
        if recent:
            self.request_reconcile(settle)

    def _seen_open(self, settle: float) -> Callable[[str, int], bool]:
        """For the scan's thread: whether the observer saw a file opened and not closed. A count for a file
        unchanged for QUIET is stale (a close lost with an overflow) and ignored."""
        opened = set(self.watcher.open_paths())
        return lambda path, mtime_ns: path in opened and mtime_ns > time.time_ns() - int(QUIET * 1e9)

    def _unseen(
        self, settle: float, seen_open: Callable[[str, int], bool] = lambda path, mtime: False
    ) -> tuple[list[tuple[str, int]], int]:
        """Paths (with their sizes) not in the ledger in this version, and how many were too recent. The folder
        listing is compared with the ledger LEDGER_CHUNK files at a time: memory and each query stay the
        same size with a year of history (the ledger is never loaded whole)."""
        now = time.time_ns()
        cutoff, quiet = now - int(settle * 1e9), now - int(QUIET * 1e9)
        found: list[tuple[str, int]] = []
        fresh: list[str] = []  # changed within QUIET: ask /proc whether a writer still has it open
        recent = 0
        for chunk in _chunks(self._listing(), LEDGER_CHUNK):
            known = self.store.seen_many([key for key, _path, _info in chunk])
            for key, path, info in chunk:
                seen = known.get(key)
                if seen is not None and seen.unchanged(info):
                    continue
                if info.st_mtime_ns > cutoff or seen_open(path, info.st_mtime_ns):  # may still be written:
                    recent += 1  # its close event, or a later scan
                    continue
                found.append((path, info.st_size))
                if info.st_mtime_ns > quiet:
                    fresh.append(path)
        writing = open_for_writing(fresh)  # e.g. opened before the daemon started: no event said so
        return sorted(item for item in found if item[0] not in writing), recent + len(writing)

    def _listing(self) -> Iterator[tuple[str, str, os.stat_result]]:
        """Each candidate file in the watched folders: its ledger key, path and stat."""
        for entry in scan(self.settings.watch.folders, self.settings.watch.suffixes):
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            yield ledger_key(entry.path), entry.path, info

    # -- digests, sweeps, health ----------------------------------------------------------------------
    async def flush_digest(self, name: str) -> None:
        rules = {rule.name: rule for rule in self.ruleset.rules}
        rule = rules.get(name)
        if rule is None or rule.digest_cron is None:
            return
        slot = latest_fire(cron(rule.digest_cron, self.settings.zone), datetime.now(self.settings.zone))
        if slot is None:
            return
        async with self._flush_lock:  # rules due at the same time take turns: one connection, not one per rule
            limits = self.settings.limits
            queued = await asyncio.to_thread(flush_digest, self.store, self.ruleset, rule, slot, None, limits)
        # An empty digest (nothing due) is routine, every schedule tick: INFO only when something was queued.
        log.log(
            logging.INFO if queued else logging.DEBUG,
            "digest_flushed",
            rule=name,
            slot=slot.isoformat(),
            deliveries=queued,
        )
        if queued:
            self.deliverer.wake()

    async def catch_up_digests(self) -> None:
        """Digest times missed while the daemon was down: one coalesced digest per rule, never twice."""
        now = datetime.now(self.settings.zone)
        pending = await asyncio.to_thread(self.store.oldest_pending)  # one query for all rules
        for rule in self.ruleset.rules:
            oldest = pending.get(rule.name)
            if rule.digest_cron is None or oldest is None:
                continue
            slot = latest_fire(cron(rule.digest_cron, self.settings.zone), now)
            if oldest is not None and slot is not None and oldest <= slot.timestamp():
                await self.flush_digest(rule.name)

    async def prune(self) -> None:
        """Delete what retention lets go (monitor.store.retention), in a thread, in small batches; a failure is
        logged and the next round tries again."""
        started = time.monotonic()
        realert = longest_realert(self.ruleset)
        retention, folders = self.settings.state.retention, self.settings.watch.folders
        try:
            counts = await asyncio.to_thread(
                prune,
                self.store,
                retention,
                folders,
                realert,
                stop=self.stop.is_set,
                stories=self.settings.stories.window,
            )
        except Exception:  # the store failed: the next round tries again
            log.exception("prune_failed")
            return
        if counts is None:
            log.info("prune_skipped", why="another replica is pruning")
            return
        for table, count in counts.items():
            self.metrics.pruned.labels(table).inc(count)
        log.info("pruned", seconds=round(time.monotonic() - started, 3), **counts)

    async def _sweep(self) -> None:
        self.deliverer.wake()

    async def _check_store(self) -> None:
        """Whether the store takes writes, for /readyz: a small write within STORE_CHECK seconds (a hung
        database counts as down), and the last ingest batch written (a full disk takes the small write but
        not a batch). Logged once per change. When it comes back, a reconcile scan at once reads what arrived
        meanwhile (those files failed and stayed unseen)."""
        if self._store_probe is not None and not self._store_probe.done():
            self._store_fine(False, "the state store did not answer a write within 2 s")
            return
        self._store_probe = asyncio.ensure_future(asyncio.to_thread(self.store.writable))
        try:
            ok = await asyncio.wait_for(asyncio.shield(self._store_probe), STORE_CHECK)
        except TimeoutError:
            ok = False
        if ok and self.pipeline.failing:  # the store takes writes again, but the last batch failed: try again
            self.request_reconcile(0.0)
            ok = False
        self._store_fine(ok, "the state store refused a write" if not ok else "")

    def _store_fine(self, ok: bool, why: str) -> None:
        if ok == self.store_ok:
            return
        self.store_ok = ok
        if ok:
            log.warning("store_recovered")
            self.request_reconcile(0.0)
        else:
            log.error("store_failed", reason=why)

    async def _check_observer(self) -> None:
        """Every 2 s, in a thread (`alive` stats the folders, which hangs on a hung network share): restart
        a dead observer; /readyz reads the outcome (`observer_ok`) instead of asking on the loop."""
        if self.stop.is_set():
            return
        self.observer_ok = await asyncio.to_thread(self.watcher.alive)
        if not self.observer_ok:
            if self.missing_folders:  # a missing folder came back: watch it
                log.info("observer_restarting", why="a missing watched folder is there again")
            else:
                log.error("observer_died", restarting=True)
            await asyncio.to_thread(self.watcher.restart)
            self.metrics.observer_restarts.inc()
            self.observer_ok = self.watcher.alive()
            await self.reconcile()
        self._note_missing(await asyncio.to_thread(self.watcher.missing))

    def _note_missing(self, missing: list[Path]) -> None:
        """Watched folders not there (removed, unmounted; watch.create_folders not set): /readyz names them
        until they are back. Logged once per change."""
        names = [str(folder) for folder in missing]
        for name in names:
            if name not in self.missing_folders:
                log.error("watch_folder_missing", folder=name, fix="create it, or set watch.create_folders: true")
        for name in self.missing_folders:
            if name not in names:
                log.warning("watch_folder_back", folder=name)
        self.missing_folders = names

    async def _check_rules_file(self) -> None:
        mtime = _mtime(self.settings.rules_file)
        if mtime != self._rules_mtime:
            self._rules_mtime = mtime
            await self.reload("file changed")

    async def _reload_now(self) -> list[str]:
        """`POST /-/reload` (monitor.health): reload, and the problems that refused the file (none: reloaded)."""
        return await self.reload("POST /-/reload")

    async def reload(self, why: str) -> list[str]:
        """Load the rules file again; an invalid file is refused and the rules in force stay. Returns the
        problems (file:line: message) that refused it, none when the new rules are in force."""
        async with self._reload_lock:  # reloads asked at once (SIGHUP, POST, a file change) take turns
            return await self._reload(why)

    async def _reload(self, why: str) -> list[str]:
        try:
            ruleset = await asyncio.to_thread(load_rules, self.settings.rules_file, check_template=load_template)
            if problems := self.settings.delivery.lease_problems(ruleset.webhooks, self.settings.rules_file):
                raise RulesError(problems)
        except RulesError as exc:
            self.metrics.reload_failures.inc()
            self.metrics.reload_ok.set(0)
            log.error("rules_reload_failed", why=why, problems=[str(p) for p in exc.problems])
            return [str(problem) for problem in exc.problems]
        self.metrics.reload_ok.set(1)
        self.metrics.reload_time.set_to_current_time()
        self.ruleset = ruleset
        self.deliverer.lease = self.settings.delivery.lease_for(ruleset.webhooks).total_seconds()  # unset: may grow
        gc.freeze()
        self.wakeups.digests(self._digest_crons(), self.flush_digest)
        log.info("rules_reloaded", why=why, rules=len(ruleset.rules))
        self.deliverer.wake()
        return []

    def _record(self, result: Processed) -> None:
        self._count(f"articles_{result.outcome}")
        self.metrics.articles.labels(result.outcome).inc()
        if result.code:
            self.metrics.rejections.labels(result.code).inc()
        for rule in result.rules:
            self.metrics.matches.labels(rule).inc()
        if result.deliveries and result.mtime is not None:
            delivered = self._delivered_early.pop(result.path, None)
            if delivered is not None and delivered >= result.mtime:  # its delivery (handed over) came first
                self.metrics.latency.observe(max(0.0, delivered - result.mtime))
            self._written_at[result.path] = result.mtime
            while len(self._written_at) > 10_000:
                self._written_at.popitem(last=False)

    def _attempted(self, delivery: Delivery, attempt: Attempt) -> None:
        self.metrics.attempts.labels(attempt.outcome.value, delivery.webhook).inc()
        if attempt.outcome is AttemptOutcome.delivered and delivery.kind == DeliveryKind.alert:
            path = str(delivery.payload.get("article", {}).get("path"))
            written = self._written_at.get(path)
            if written is not None:
                self.metrics.latency.observe(max(0.0, time.time() - written))
            else:  # handed over at its batch's commit, it may be delivered before the batch's results come
                self._delivered_early[path] = time.time()
                while len(self._delivered_early) > 1_000:
                    self._delivered_early.popitem(last=False)

    def _count(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1


def _chunks(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    """The items in lists of `size` (the last may be shorter)."""
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _size(path: str) -> int:
    """The file's size now (0 if it cannot be stat'ed: the pipeline records why)."""
    try:
        return os.stat(path, follow_symlinks=False).st_size
    except OSError:
        return 0


def _mtime(path: os.PathLike[str] | str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


async def run_until(daemon: Daemon, done: Callable[[], Awaitable[bool]] | None = None) -> None:
    """Serve; with `done`, stop as soon as it answers True (checked every 0.1 s)."""
    if done is None:
        await daemon.serve()
        return

    async def watch() -> None:
        while not await done():
            await asyncio.sleep(0.1)
        daemon.stop.set()

    watcher = asyncio.create_task(watch())
    try:
        await daemon.serve()
    finally:
        watcher.cancel()
