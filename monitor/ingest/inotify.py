"""The native observer: the kernel's inotify events read on the asyncio loop, with no thread of its own.

watchdog's inotify observer hands each event through three threads (its reader, the folder's emitter and
the dispatcher) before our handler could post it to the loop: about 1 ms of CPU and a few wake-ups per
article. Here the inotify descriptor (`inotify_simple`, a thin wrapper of the system calls) is a reader of
the loop, and each event is one call on the loop. What watchdog's recursive watch did is kept:

- every folder beneath a watched one is watched (symbolic links to folders are not followed; hidden ones
  are watched too, so that a file renamed out of a `.staging` folder is paired, but the caller ignores the
  events of files in them); a folder made or moved in is watched when its event comes, and the files
  already in it are reported: as found (`found`) in a folder made here, as moved in (`moved_in`) in a
  folder moved in from elsewhere;
- a rename within the watched folders is paired by its cookie: the old name is forgotten and the new one
  is complete (for a folder: every file in it); a file moved in from elsewhere is `moved_in` (complete
  unless a writer still holds it: the caller asks), one moved out or deleted is forgotten, and a folder
  moved out is no longer watched (its watches, by descriptor: a folder made under the same name in the
  meantime keeps its own);
- a queue overflow (events lost) refreshes the watches and calls `lost`; a watched folder that is deleted
  or unmounted ends the watch (`alive` turns false and the daemon restarts the watcher).

Walking a tree opens each folder, and the kernel reports each open and close: a walk of thousands of
folders would by itself overflow the kernel's queue (16,384 events by default) if nobody read it. A walk
on the loop therefore reads and handles the queued events every `DRAIN_EVERY` folders, and the first walk
(in `start`, before the reader is attached) drops them (the daemon scans after every start). At most one
overflow walk runs at a time; an overflow during it asks for one more. The folders are also kept sorted,
so that a folder moved or removed finds the watches beneath it by bisection, not by a pass over all.

The events go to `event(action, path, root)` with the actions of `monitor.ingest.watch` ("complete", "arm",
"moved_in", "found", "opened", "closed", "forget"); filtering by name is the caller's.
"""

from __future__ import annotations

import asyncio
import bisect
import concurrent.futures
import contextlib
import errno
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import inotify_simple
import structlog

log = structlog.get_logger(__name__)

_F = inotify_simple.flags
# What is asked of the kernel (as watchdog asked for our event filter): made, moved, deleted, opened, closed
# with and without writing, and the folder itself deleted; links are not followed. IGNORED, Q_OVERFLOW and
# UNMOUNT come unasked.
MASK = (
    _F.CREATE
    | _F.MOVED_FROM
    | _F.MOVED_TO
    | _F.DELETE
    | _F.DELETE_SELF
    | _F.OPEN
    | _F.CLOSE_WRITE
    | _F.CLOSE_NOWRITE
    | _F.DONT_FOLLOW
)
_ISDIR, _MOVED_FROM, _MOVED_TO = int(_F.ISDIR), int(_F.MOVED_FROM), int(_F.MOVED_TO)
_GONE = int(_F.DELETE_SELF | _F.UNMOUNT)
_OVERFLOW, _IGNORED, _MADE = int(_F.Q_OVERFLOW), int(_F.IGNORED), int(_F.CREATE | _F.MOVED_TO)
# A single event's kind -> the action on a file (MOVED_TO is decided by its pairing).
_ACTIONS = {
    int(_F.CLOSE_WRITE): "complete",
    int(_F.CREATE): "arm",
    int(_F.OPEN): "opened",
    int(_F.CLOSE_NOWRITE): "closed",
    int(_F.DELETE): "forget",
    _MOVED_FROM: "forget",
}
_Gone = dict[int, tuple[int, list[int]]]  # folders renamed away in one read: cookie -> `_tick` then, watches
MOVES_KEPT = 1024  # cookies of recent renames away, to pair a rename whose halves come in two reads
DRAIN_EVERY = 256  # folders a walk watches between two reads of the queue
OVERFLOW_WALKS = 3  # walks one overflow may take when each walk overflows the queue again


def on_loop(loop: asyncio.AbstractEventLoop, call: Callable[[], None]) -> None:
    """Run `call` on the loop: now when this is the loop's thread or the loop is not running, else there,
    waiting until it ran (the daemon calls from threads only while its loop runs)."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop or not loop.is_running():
        call()
        return
    done: concurrent.futures.Future[None] = concurrent.futures.Future()

    def run() -> None:
        try:
            call()
            done.set_result(None)
        except BaseException as exc:
            done.set_exception(exc)

    loop.call_soon_threadsafe(run)
    done.result()


class Inotify:
    """Recursive inotify watches on `folders`, read on `loop`; `start` and `stop` may be called from any
    thread (the reader is attached and detached on the loop), the events run on the loop."""

    def __init__(
        self,
        folders: Sequence[str],
        loop: asyncio.AbstractEventLoop,
        event: Callable[[str, str, str], None],
        lost: Callable[[], None] | None = None,
    ) -> None:
        self.folders = list(folders)
        self.loop = loop
        self.event = event  # (action, path, the watched folder it is beneath)
        self.lost = lost  # events were lost: open counts are unreliable and files may be unseen
        self._inotify: inotify_simple.INotify | None = None
        self._paths: dict[int, tuple[str, str]] = {}  # watch descriptor -> (folder, the watched folder above)
        self._watches: dict[str, int] = {}  # folder -> watch descriptor
        self._sorted: list[str] = []  # the folders of `_watches`, sorted (the watches beneath one: `_beneath`)
        self._moves: OrderedDict[int, str] = OrderedDict()  # cookie -> the file renamed away
        self._folder_moves: OrderedDict[int, tuple[str, list[int]]] = OrderedDict()  # cookie -> folder, watches
        self._tick = 0  # counts `_set` calls: a watch set again after its folder was renamed away is in use
        self._set_at: dict[int, int] = {}  # watch descriptor -> `_tick` when it was last set
        self._attached = False
        self._ended = False  # a watched folder was deleted or unmounted, or reading failed
        self._walking = False  # an overflow's walk runs (on the loop)
        self._again = False  # the queue overflowed during that walk: walk once more
        self._dropped_overflow = False  # the first walk dropped an overflow: say so once attached

    # -- from any thread --------------------------------------------------------------------------------
    def start(self) -> None:
        """Make the inotify instance and watch the folders (raises OSError: EMFILE and ENOSPC when the
        kernel's per-user limits are reached, or a folder's own error), then read it on the loop."""
        inotify = inotify_simple.INotify(nonblocking=True)
        try:
            for folder in self.folders:
                self._watch_tree(inotify, folder, folder, required=True)
        except BaseException:
            inotify.close()
            raise
        self._inotify = inotify
        on_loop(self.loop, self._attach)

    def stop(self) -> None:
        if self._inotify is not None:
            on_loop(self.loop, self._detach)

    def alive(self) -> bool:
        """Reading, and every watched folder still watched."""
        watched = self._watches
        return self._attached and not self._ended and all(folder in watched for folder in self.folders)

    # -- on the loop ------------------------------------------------------------------------------------
    def _attach(self) -> None:
        if self._inotify is None:
            return
        self.loop.add_reader(self._inotify.fileno(), self._read)
        self._attached = True
        if self._dropped_overflow and self.lost is not None:
            self.lost()

    def _detach(self) -> None:
        inotify, self._inotify = self._inotify, None
        if inotify is None:
            return
        if self._attached:
            self.loop.remove_reader(inotify.fileno())
            self._attached = False
        inotify.close()
        self._paths.clear()
        self._watches.clear()
        self._sorted.clear()
        self._set_at.clear()
        self._moves.clear()
        self._folder_moves.clear()

    def _read(self) -> None:
        inotify = self._inotify
        if inotify is None:
            return
        try:
            events = list(inotify.read(timeout=0))
        except OSError as exc:
            log.error("watch_failed", error=exc.strerror)
            self._ended = True
            self._detach()
            return
        self._handle(events)

    def _handle(self, events: list[inotify_simple.Event]) -> None:
        inotify = self._inotify
        if inotify is None:
            return
        gone: _Gone = {}
        for wd, mask, cookie, name in events:
            if mask & _OVERFLOW:
                self._overflow(inotify)
            elif mask & _IGNORED:
                self._forget(wd)  # the kernel ended the watch (its folder deleted, or `rm_watch`)
            elif wd in self._paths:
                self._one(inotify, wd, mask, cookie, name, gone)
        for cookie, (tick, watches) in gone.items():  # renamed out of the watched folders: their watches end
            self._folder_moves.pop(cookie, None)  # (but for one found again since, e.g. moved back in)
            self._end(inotify, [wd for wd in watches if self._set_at.get(wd, 0) <= tick])

    def _one(
        self,
        inotify: inotify_simple.INotify,
        wd: int,
        mask: int,
        cookie: int,
        name: str,
        gone: _Gone,
    ) -> None:
        folder, root = self._paths[wd]
        if not name:  # about the watched folder itself
            if mask & _GONE and folder in self.folders:
                self._ended = True
            return
        path = os.path.join(folder, name)
        if mask & _ISDIR:
            self._folder(inotify, mask, cookie, path, root, gone)
        elif mask & _MOVED_TO:
            self.event("complete" if self._moves.pop(cookie, None) is not None else "moved_in", path, root)
        else:
            action = _ACTIONS.get(mask)
            if action is not None:
                if mask & _MOVED_FROM:
                    _keep(self._moves, cookie, path)
                self.event(action, path, root)

    def _folder(
        self,
        inotify: inotify_simple.INotify,
        mask: int,
        cookie: int,
        path: str,
        root: str,
        gone: _Gone,
    ) -> None:
        """A folder beneath a watched one was made, renamed or deleted (its own IGNORED drops its watch)."""
        if mask & _MOVED_FROM:
            watches = self._beneath(path)
            gone[cookie] = (self._tick, watches)
            _keep(self._folder_moves, cookie, (path, watches))
            return
        if not mask & _MADE:
            return
        moved = self._folder_moves.pop(cookie, None) if mask & _MOVED_TO else None
        if moved is not None:  # renamed within: its watches are found again under the new name
            gone.pop(cookie, None)
            for watch in moved[1]:
                self._forget(watch)
        files: list[str] = []
        self._watch_tree(inotify, path, root, files=files)
        if moved is None:  # made here (its files may still be written), or renamed in with its files from outside
            for file in files:
                self.event("moved_in" if mask & _MOVED_TO else "found", file, root)
            return
        source = moved[0]
        self._end(inotify, [watch for watch in moved[1] if watch not in self._paths])  # not found: gone on
        for file in files:  # renamed within the watched folders: complete under the new name
            self.event("forget", os.path.join(source, os.path.relpath(file, path)), root)
            self.event("complete", file, root)

    def _overflow(self, inotify: inotify_simple.INotify) -> None:
        """The kernel's queue overflowed and dropped events: walk the folders again (folders made meanwhile
        are watched) and say so. A walk reads the queue as it goes; one that overflowed it all the same walks
        again, up to OVERFLOW_WALKS times (then the daemon's scans are the fallback)."""
        log.warning("watch_overflow", folders=self.folders)
        self._moves.clear()
        self._folder_moves.clear()
        if self._walking:
            self._again = True
            return
        self._walking = True
        try:
            for _ in range(OVERFLOW_WALKS):
                self._again = False
                for folder in self.folders:
                    if folder in self._watches and self._inotify is inotify:
                        self._watch_tree(inotify, folder, folder)
                if not self._again:
                    break
        finally:
            self._walking = False
        if self.lost is not None:
            self.lost()

    # -- the watches ----------------------------------------------------------------------------------------
    def _set(self, folder: str, wd: int, root: str) -> None:
        old = self._paths.get(wd)
        if old is not None and old[0] != folder:
            self._forget(wd)  # the same folder under another name (renamed, or found again)
        if self._watches.get(folder) not in (None, wd):
            self._forget(self._watches[folder])  # another folder had this name: its watch is stale
        if folder not in self._watches:
            bisect.insort(self._sorted, folder)
        self._paths[wd] = (folder, root)
        self._watches[folder] = wd
        self._tick += 1
        self._set_at[wd] = self._tick

    def _forget(self, wd: int) -> None:
        """Drop a watch from the maps (the kernel's stays)."""
        watched = self._paths.pop(wd, None)
        self._set_at.pop(wd, None)
        if watched is None or self._watches.get(watched[0]) != wd:
            return
        del self._watches[watched[0]]
        at = bisect.bisect_left(self._sorted, watched[0])
        if at < len(self._sorted) and self._sorted[at] == watched[0]:
            del self._sorted[at]

    def _end(self, inotify: inotify_simple.INotify, watches: list[int]) -> None:
        """End watches in the kernel and drop them."""
        for wd in watches:
            self._forget(wd)
            with contextlib.suppress(OSError):  # already gone
                inotify.rm_watch(wd)

    def _beneath(self, folder: str) -> list[int]:
        """The watches of a folder and of every folder beneath it (a range of `_sorted`)."""
        below = folder + os.sep
        start = bisect.bisect_left(self._sorted, below)
        end = bisect.bisect_left(self._sorted, folder + chr(ord(os.sep) + 1), start)
        watches = [self._watches[path] for path in self._sorted[start:end]]
        own = self._watches.get(folder)
        return watches if own is None else [own, *watches]

    # -- from `start` (before the reader is attached) or on the loop ----------------------------------------
    def _watch_tree(
        self,
        inotify: inotify_simple.INotify,
        top: str,
        root: str,
        *,
        required: bool = False,
        files: list[str] | None = None,
    ) -> None:
        """Watch `top` and every folder beneath it (links not followed); the files found go to `files`. A
        folder that cannot be watched is left out (logged unless it vanished), except `top` when `required`.
        Every DRAIN_EVERY folders the queue is read: handled on the loop, dropped before the reader is attached."""
        stack = [top]
        walked = 0
        while stack:
            folder = stack.pop()
            try:
                wd = inotify.add_watch(folder, MASK)
            except OSError as exc:
                if required and folder == top:
                    raise
                if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                    log.warning("watch_failed", folder=folder, error=exc.strerror)
                continue
            self._set(folder, wd, root)
            try:
                with os.scandir(folder) as entries:
                    found: list[Any] = list(entries)
            except OSError:
                continue
            for entry in found:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif files is not None:
                    files.append(entry.path)
            walked += 1
            if not walked % DRAIN_EVERY:
                self._drain(inotify)

    def _drain(self, inotify: inotify_simple.INotify) -> None:
        """Read the queue during a walk: handle it (on the loop, attached), or drop it (in `start`)."""
        try:
            events = list(inotify.read(timeout=0))
        except OSError:
            return
        if self._attached:
            self._handle(events)
        elif any(mask & _OVERFLOW for _, mask, _, _ in events):
            self._dropped_overflow = True


def _keep(moves: OrderedDict[int, Any], cookie: int, value: Any) -> None:
    moves[cookie] = value
    if len(moves) > MOVES_KEPT:
        moves.popitem(last=False)
