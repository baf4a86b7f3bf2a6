"""The native observer: the kernel's inotify events read on the asyncio loop, with no thread of its own.

watchdog's inotify observer hands each event through three threads (its reader, the folder's emitter and
the dispatcher) before our handler could post it to the loop: about 1 ms of CPU and a few wake-ups per
article. Here the inotify descriptor (`inotify_simple`, a thin wrapper of the system calls) is a reader of
the loop, and each event is one call on the loop. What watchdog's recursive watch did is kept:

- every folder beneath a watched one is watched (symbolic links to folders are not followed, hidden
  folders are skipped as the scan skips them); a folder made or moved in is watched when its event comes,
  and the files already in it are reported as made (`arm`);
- a rename within the watched folders is paired by its cookie: the old name is forgotten and the new one
  is complete; a file moved in from elsewhere is only made (`arm`: the settle timer decides), one moved out
  or deleted is forgotten, and a folder moved out is no longer watched;
- a queue overflow (events lost) refreshes the watches and calls `lost`; a watched folder that is deleted
  or unmounted ends the watch (`alive` turns false and the daemon restarts the watcher).

The events go to `event(action, path, root)` with the actions of `monitor.ingest.watch` ("complete", "arm",
"opened", "closed", "forget"); filtering by name is the caller's.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
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
MOVES_KEPT = 1024  # cookies of recent renames away, to pair a rename whose halves come in two reads
WAIT = 10.0  # seconds another thread waits for the loop to attach or detach the reader


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
        self._moves: OrderedDict[int, str] = OrderedDict()  # cookie -> the path renamed away
        self._attached = False
        self._ended = False  # a watched folder was deleted or unmounted, or reading failed

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
        self._on_loop(self._attach)

    def stop(self) -> None:
        if self._inotify is not None:
            self._on_loop(self._detach)

    def alive(self) -> bool:
        """Reading, and every watched folder still watched."""
        watched = self._watches
        return self._attached and not self._ended and all(folder in watched for folder in self.folders)

    def _on_loop(self, call: Callable[[], None]) -> None:
        """Run `call` on the loop: now when this is the loop's thread or the loop is not running, else there,
        waiting for it."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop or not self.loop.is_running():
            call()
            return
        done: concurrent.futures.Future[None] = concurrent.futures.Future()

        def run() -> None:
            try:
                call()
                done.set_result(None)
            except BaseException as exc:
                done.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        done.result(WAIT)

    # -- on the loop ------------------------------------------------------------------------------------
    def _attach(self) -> None:
        if self._inotify is not None:
            self.loop.add_reader(self._inotify.fileno(), self._read)
            self._attached = True

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
        self._moves.clear()

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
        gone: dict[int, str] = {}  # folders renamed away in this read, by cookie: unpaired ones left
        for wd, mask, cookie, name in events:
            if mask & _OVERFLOW:
                self._overflow(inotify)
            elif mask & _IGNORED:
                self._dropped(wd)
            elif wd in self._paths:
                self._one(inotify, wd, mask, cookie, name, gone)
        for path in gone.values():  # renamed out of the watched folders
            self._unwatch(inotify, path, remove=True)

    def _one(
        self, inotify: inotify_simple.INotify, wd: int, mask: int, cookie: int, name: str, gone: dict[int, str]
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
            self.event("complete" if self._moves.pop(cookie, None) is not None else "arm", path, root)
        else:
            action = _ACTIONS.get(mask)
            if action is not None:
                if mask & _MOVED_FROM:
                    self._moved_away(cookie, path)
                self.event(action, path, root)

    def _moved_away(self, cookie: int, path: str) -> None:
        self._moves[cookie] = path
        if len(self._moves) > MOVES_KEPT:
            self._moves.popitem(last=False)

    def _folder(
        self, inotify: inotify_simple.INotify, mask: int, cookie: int, path: str, root: str, gone: dict[int, str]
    ) -> None:
        """A folder beneath a watched one was made, renamed or deleted (its own IGNORED drops its watch)."""
        if mask & _MOVED_FROM:
            gone[cookie] = path
            self._moved_away(cookie, path)
            return
        if not mask & _MADE:
            return
        source = self._moves.pop(cookie, None) if mask & _MOVED_TO else None
        if source is not None:
            gone.pop(cookie, None)
            self._unwatch(inotify, source, remove=os.path.basename(path).startswith("."))
        if os.path.basename(path).startswith("."):
            return  # hidden, as the scan skips it
        files: list[str] = []
        self._watch_tree(inotify, path, root, files=files)
        for file in files:
            if source is not None:  # renamed within the watched folders: complete under the new name
                self.event("forget", os.path.join(source, os.path.relpath(file, path)), root)
                self.event("complete", file, root)
            else:
                self.event("arm", file, root)

    def _overflow(self, inotify: inotify_simple.INotify) -> None:
        """The kernel's queue overflowed and dropped events: refresh the watches (folders made meanwhile)
        and say so."""
        log.warning("watch_overflow", folders=self.folders)
        self._moves.clear()
        for folder in self.folders:
            if folder in self._watches:
                self._watch_tree(inotify, folder, folder)
        if self.lost is not None:
            self.lost()

    def _dropped(self, wd: int) -> None:
        watched = self._paths.pop(wd, None)
        if watched is not None and self._watches.get(watched[0]) == wd:
            del self._watches[watched[0]]

    def _unwatch(self, inotify: inotify_simple.INotify, folder: str, *, remove: bool) -> None:
        """Forget the watches of a folder and those beneath it; `remove`: end them in the kernel too."""
        below = folder + os.sep
        for path in [path for path in self._watches if path == folder or path.startswith(below)]:
            wd = self._watches.pop(path)
            self._paths.pop(wd, None)
            if remove:
                with contextlib.suppress(OSError):  # already gone
                    inotify.rm_watch(wd)

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
        """Watch `top` and every folder beneath it that is not hidden (links not followed); the files found
        go to `files`. A folder that cannot be watched is left out (logged), except `top` when `required`."""
        stack = [top]
        while stack:
            folder = stack.pop()
            try:
                wd = inotify.add_watch(folder, MASK)
            except OSError as exc:
                if required and folder == top:
                    raise
                log.warning("watch_failed", folder=folder, error=exc.strerror)
                continue
            old = self._paths.get(wd)
            if old is not None and self._watches.get(old[0]) == wd:
                del self._watches[old[0]]  # the same folder under another name (renamed, or found again)
            self._paths[wd] = (folder, root)
            self._watches[folder] = wd
            try:
                with os.scandir(folder) as entries:
                    found: list[Any] = list(entries)
            except OSError:
                continue
            for entry in found:
                if entry.is_dir(follow_symlinks=False):
                    if not entry.name.startswith("."):
                        stack.append(entry.path)
                elif files is not None:
                    files.append(entry.path)
