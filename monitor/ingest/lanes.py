"""Ingest lanes: each a bounded queue of paths and a worker thread of its own that takes batches in turn.

The daemon runs two: `main` for ordinary files (up to 64 per batch) and `large` for files of at least
`limits.large_article_bytes` (one at a time), so that an article that is slow to read and match holds up
only the large files queued behind it, never the ordinary ones. The lane is decided by the file's size
when it is queued; a file that changes size later is a new version and is queued again. The main lane
also leaves a batch that is still running after `slow` seconds to its thread and goes on in a new one.

A lane's thread is a daemon thread: a match in progress at shutdown (past the grace period) does not
keep the process alive; its batch is not written, and the next start's reconcile reads the file again.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import structlog

from monitor.ingest.pipeline import Processed

log = structlog.get_logger(__name__)
MAX_SLOW = 2  # batches of a lane left running in threads of their own at once; past that the lane waits
T = TypeVar("T")
Call = tuple[Callable[..., Any], tuple[Any, ...], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


class WorkerThread:
    """A daemon thread that runs the calls handed to it, in order, for an asyncio loop."""

    def __init__(self, name: str) -> None:
        self._calls: queue.SimpleQueue[Call | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def submit(self, function: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run `function(*args)` in the thread; the future of its result (or exception) on the loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._calls.put((function, args, loop, future))
        return future

    def close(self) -> None:
        """The thread ends after the call in progress (if any)."""
        self._calls.put(None)

    def _serve(self) -> None:
        while (item := self._calls.get()) is not None:
            function, args, loop, future = item
            try:
                result = function(*args)
            except BaseException as exc:  # handed to the caller, like asyncio.to_thread
                _settle_soon(loop, future, None, exc)
            else:
                _settle_soon(loop, future, result, None)


def _settle_soon(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], result: Any, error: BaseException | None
) -> None:
    """Hand the outcome of a call to the loop (from the worker thread)."""

    def settle() -> None:
        if future.done():  # the caller was cancelled meanwhile
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits for this any more
        loop.call_soon_threadsafe(settle)


class Lane:
    """A queue of paths and its worker: `run` takes up to `batch` queued paths at a time and hands them to
    `process` in the lane's thread, then each result to `done` on the loop.

    With `slow` (seconds), a batch still running after that long is left to finish in its thread and the
    lane goes on in a new thread (at most MAX_SLOW batches left running at once): a small file that is
    slow to match holds up the files of its own batch, not the queue. A path queued again while its batch
    runs waits for that batch (a path is never read by two threads at once), then is `resubmit`ted.
    """

    def __init__(
        self,
        name: str,
        size: int,
        batch: int,
        process: Callable[[list[str]], list[Processed]],
        done: Callable[[Processed], None],
        taken: Callable[[list[str]], None],
        resubmit: Callable[[str], None],
        slow: float | None = None,
        shared: tuple[set[str], set[str]] | None = None,
    ) -> None:
        self.name = name
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=size)
        self.batch = batch
        self.slow = slow
        self._process = process
        self._done = done
        self._taken = taken
        self._resubmit = resubmit
        self._running: dict[asyncio.Future[list[Processed]], list[str]] = {}
        # Paths in a running batch, and paths queued again meanwhile: shared by the lanes of one daemon, so
        # that a file that changed lanes (grown or shrunk) is not read by two lanes at once either.
        self._in_flight, self._held = shared if shared is not None else (set(), set())

    @property
    def busy(self) -> bool:
        """A batch is being read, matched or written."""
        return bool(self._running)

    async def run(self) -> None:
        """Until cancelled: take a batch, process it in the lane's thread, report its results."""
        worker = WorkerThread(f"ingest-{self.name}")
        try:
            while True:
                paths = await self._take()
                if not paths:
                    continue
                call = worker.submit(self._process, paths)
                self._running[call] = paths
                self._in_flight.update(paths)
                call.add_done_callback(self._finished)
                if await self._outlived(call):
                    worker.close()  # it ends after the slow batch
                    worker = WorkerThread(f"ingest-{self.name}")
        finally:
            worker.close()
            for call in list(self._running):
                call.cancel()

    async def _take(self) -> list[str]:
        """The next batch, without the paths whose earlier batch still runs (held until it ends)."""
        paths = [await self.queue.get()]
        while len(paths) < self.batch and not self.queue.empty():
            paths.append(self.queue.get_nowait())
        self._taken(paths)
        held = self._in_flight.intersection(paths)
        self._held |= held
        return [path for path in paths if path not in held] if held else paths

    async def _outlived(self, call: asyncio.Future[list[Processed]]) -> bool:
        """Wait for the batch; True if it still runs after `slow` seconds and may be left running."""
        left = len(self._running) - 1  # batches left running earlier
        timeout = self.slow if self.slow is not None and left < MAX_SLOW else None
        done, _ = await asyncio.wait({call}, timeout=timeout)
        if done:
            return False
        log.warning("ingest_batch_slow", lane=self.name, files=len(self._running[call]), after=timeout, left=left + 1)
        return True

    def _finished(self, call: asyncio.Future[list[Processed]]) -> None:
        paths = self._running.pop(call)
        self._in_flight.difference_update(paths)
        again = self._held.intersection(paths)
        self._held -= again
        if call.cancelled():
            return
        if (error := call.exception()) is not None:  # the paths stay unseen: a later reconcile tries them again
            log.error("ingest_batch_failed", lane=self.name, files=len(paths), error=repr(error), exc_info=error)
        else:
            for result in call.result():
                self._done(result)
        for path in sorted(again):
            self._resubmit(path)
