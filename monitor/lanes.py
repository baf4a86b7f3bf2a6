"""Ingest lanes: each a bounded queue of paths and a worker thread of its own, one batch at a time.

The daemon runs two: `main` for ordinary files (up to 64 per batch) and `large` for files of at least
`limits.large_article_bytes` (one at a time), so that an article that is slow to read and match holds up
only the large files queued behind it, never the ordinary ones. The lane is decided by the file's size
when it is queued; a file that changes size later is a new version and is queued again.

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

from monitor.pipeline import Processed

T = TypeVar("T")
Call = tuple[Callable[..., Any], tuple[Any, ...], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


class WorkerThread:
    """A daemon thread that runs the calls handed to it, in order, for an asyncio loop."""

    def __init__(self, name: str) -> None:
        self._calls: queue.SimpleQueue[Call | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        """Run `function(*args)` in the thread; its result or exception here."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._calls.put((function, args, loop, future))
        return await future

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
    `process` in the lane's thread, then each result to `done` on the loop."""

    def __init__(
        self,
        name: str,
        size: int,
        batch: int,
        process: Callable[[list[str]], list[Processed]],
        done: Callable[[Processed], None],
        taken: Callable[[list[str]], None],
    ) -> None:
        self.name = name
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=size)
        self.batch = batch
        self.busy = False
        self._process = process
        self._done = done
        self._taken = taken

    async def run(self) -> None:
        """Until cancelled: take a batch, process it in the lane's thread, report its results."""
        self._worker = WorkerThread(f"ingest-{self.name}")
        try:
            while True:
                paths = await self._take()
                self.busy = True
                try:
                    results = await self._worker.call(self._process, paths)
                finally:
                    self.busy = False
                for result in results:
                    self._done(result)
        finally:
            self._worker.close()

    async def _take(self) -> list[str]:
        paths = [await self.queue.get()]
        while len(paths) < self.batch and not self.queue.empty():
            paths.append(self.queue.get_nowait())
        self._taken(paths)
        return paths
