"""Watch folders for complete article files and hand their paths to the asyncio loop.

A file counts when it is complete: a close-after-write, or a rename within the watched folders. A file
renamed in from an unwatched folder (alone, or with a folder moved in) is complete too, unless a writer
still holds it open: it was opened before it came under the watch, so no event says so, and one look at
/proc in a thread of its own (`open_for_writing`, for every file moved in meanwhile) decides; one held open
waits for its close, looked at again after `settle`, then twice as long each time up to 60 s. The look sees
the processes this user may see in this container, by path: a writer elsewhere (another container or user,
another mount path) is not seen, and its file is taken at once. Files already in a folder made here when
its watch begins (`tar x`, `cp -a` outrunning the watch) are taken as the reconcile scan takes files: when
their mtime is `settle` old and no writer holds them (the same look), else by their settle timer. Created
and modified events only arm a settle timer (the polling observer's only signal), which skips files that
are still open for writing.
The native observer (`monitor.ingest.inotify`) reads the kernel's events on the loop itself; the polling
one (watchdog's) runs in its own threads, which never run our logic: they only call
`loop.call_soon_threadsafe`. Lost events are not an error: an overflowed kernel queue calls `lost` (the
daemon then scans), and a scan finds every file the ledger has not seen.
Files in hidden folders are ignored, as the scan skips them; a name renamed away or deleted is forgotten.
Neither observer nor the scan follows a symbolic link to a folder (and the reader opens every file beneath
its watched folder without following links: `articles.read_article(..., root=)`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import fnmatch
import functools
import os
import re
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path

import structlog
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserverVFS

from monitor.ingest.inotify import Inotify, on_loop

log = structlog.get_logger(__name__)
HELD_LOOK = 60.0  # seconds: the longest wait between two looks at a file (moved in, found) a writer still holds
IGNORED = (".*", "*.tmp", "*.part", "*.partial", "*~", "*.swp", "*.crdownload", "#*#")
# Event type -> the Watcher method that runs on the loop (for a move: with the new name).
_ACTIONS = {
    "closed": "complete",
    "moved": "complete",
    "created": "arm",
    "modified": "arm",
    "opened": "opened",
    "closed_no_write": "closed",
}
_IGNORED = re.compile("|".join(fnmatch.translate(pattern) for pattern in IGNORED))  # one match per name


def wanted(path: str | Path, suffixes: Sequence[str]) -> bool:
    """Whether a file name is an article candidate: not temporary or hidden, and of a wanted suffix."""
    name = os.path.basename(path)
    if _IGNORED.match(name):
        return False
    return not suffixes or name.endswith(tuple(suffixes))


def scan(folders: Sequence[Path], suffixes: Sequence[str]) -> Iterator[os.DirEntry[str]]:
    """Every candidate file below the folders (symlinks are not followed)."""
    stack = [str(folder) for folder in folders]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        if not entry.name.startswith("."):
                            stack.append(entry.path)
                    elif wanted(entry.name, suffixes):
                        yield entry
        except OSError as exc:
            log.warning("scan_failed", folder=folder, error=exc.strerror)


def open_for_writing(paths: Collection[str]) -> set[str]:
    """Which of the files some process of this machine has open for writing, from /proc (Linux; what this
    user may see). For files whose writer opened them before the watch began: no event says so. About a
    millisecond per hundred open descriptors of the machine; an empty set where /proc is not there."""
    wanted: dict[str, str] = {}
    folders: dict[str, str] = {}  # each folder's real path, resolved once (100,000 files: 1 s -> 0.25 s)
    for path in paths:
        folder, name = os.path.split(path)
        real = folders.get(folder)
        if real is None:
            real = folders[folder] = os.path.realpath(folder)
        wanted[os.path.join(real, name)] = path
    found: set[str] = set()
    if not wanted:
        return found
    with contextlib.suppress(OSError):
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                found |= _writers(pid, wanted)
    return found


def _look_at(paths: Collection[str], quiet: Collection[str], cutoff_ns: int) -> tuple[set[str], set[str]]:
    """A look for `Watcher`: which of the files a writer holds, and which of `quiet` were written after
    `cutoff_ns` (or cannot be stat'ed): those wait for their settle timer."""
    recent: set[str] = set()
    for path in quiet:
        try:
            if os.stat(path, follow_symlinks=False).st_mtime_ns > cutoff_ns:
                recent.add(path)
        except OSError:
            recent.add(path)
    return open_for_writing(paths), recent


def _writers(pid: str, wanted: dict[str, str]) -> set[str]:
    found: set[str] = set()
    try:
        descriptors = os.listdir(f"/proc/{pid}/fd")
    except OSError:  # gone, or not ours to see
        return found
    for fd in descriptors:
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target in wanted and _writable(pid, fd):
                found.add(wanted[target])
    return found


def _writable(pid: str, fd: str) -> bool:
    with open(f"/proc/{pid}/fdinfo/{fd}", encoding="ascii") as info:
        for line in info:
            if line.startswith("flags:"):
                return int(line.split()[1], 8) & (os.O_WRONLY | os.O_RDWR) != 0
    return False


def hidden_below(path: str | Path, root: str | Path) -> bool:
    """Whether a folder between `root` and the file is hidden, as the scan skips such folders."""
    path, root = str(path), str(root)
    if path.startswith(root) and os.sep + "." not in path[len(root) :]:  # the common case, without relpath
        return False
    folders = os.path.relpath(path, root).split(os.sep)[:-1]
    return any(part.startswith(".") and part not in (".", "..") for part in folders)


def _identity(folder: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(folder)
    except OSError:
        return None
    return info.st_dev, info.st_ino


class _Handler(FileSystemEventHandler):
    """Runs in the observer thread: translate events into calls on the loop, nothing else."""

    def __init__(self, watcher: Watcher, root: Path) -> None:
        self.watcher = watcher
        self.root = str(root)

    def dispatch(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return
        kind = event.event_type
        if kind in ("moved", "deleted"):  # the old name is gone: no settle timer may submit it
            self.watcher.post("forget", os.fsdecode(event.src_path))
        path = os.fsdecode(event.dest_path if kind == "moved" else event.src_path)
        action = _ACTIONS.get(kind)
        if action is None or not self.watcher.takes(path, self.root):
            return
        self.watcher.post(action, path)


class Watcher:
    """Observers on the folders; complete files go to `submit(path)` on the loop."""

    def __init__(
        self,
        folders: Sequence[Path],
        submit: Callable[[str], None],
        loop: asyncio.AbstractEventLoop,
        *,
        polling: bool = False,
        settle: float = 2.0,
        suffixes: Sequence[str] = (".txt",),
        create: bool = False,
        poll_interval: float = 1.0,
        lost: Callable[[], None] | None = None,
    ) -> None:
        self.folders = [Path(f) for f in folders]
        self.poll_interval = poll_interval  # seconds between the polling observer's snapshots
        self.create = create  # make missing folders (at start and restart); else they wait to be made
        self.submit = submit
        self.loop = loop
        self.polling = polling
        self.settle = settle
        self.suffixes = tuple(suffixes)
        self.lost = lost  # the native observer lost events (its queue overflowed): called on the loop
        self.native: Inotify | None = None  # the native observer (inotify on the loop)
        self.observer: BaseObserver | None = None  # the polling observer (watchdog's, in its threads)
        self.restarts = 0
        self._identity: list[tuple[int, int] | None] = []  # each folder's (device, inode) when watched
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._open: dict[str, int] = {}
        # Files moved in from outside or found in a folder made here, each with the timer armed for it, for the
        # next look at /proc; those a writer held at the last look, with the seconds before the next; the look's
        # thread (one at a time).
        self._to_look: list[tuple[str, asyncio.TimerHandle]] = []
        self._held: dict[str, float] = {}
        self._quiet: set[str] = set()  # of those, the files found in a folder made here: their mtime counts too
        self._checking = False
        self._looker: concurrent.futures.ThreadPoolExecutor | None = None
        self._events: list[tuple[str, str]] = []  # (Watcher method, path) from the observer thread
        self._posted = False  # a drain of `_events` is scheduled on the loop
        self._lock = threading.Lock()

    def start(self) -> None:
        """Watch the folders; a missing folder is made (`create`) or left out until it is there: `alive` turns
        false when it appears, and a restart watches it."""
        for folder in self.folders if self.create else ():
            folder.mkdir(parents=True, exist_ok=True)
        self._identity = [_identity(folder) for folder in self.folders]
        if self.polling:
            self._start_polling()
            return
        there = [str(folder) for folder, identity in zip(self.folders, self._identity, strict=True) if identity]
        self.native = Inotify(
            there,
            self.loop,
            self._native_event,
            self.lost,
        )
        try:
            self.native.start()
        except OSError as exc:
            self.native = None
            if exc.errno not in (errno.ENOSPC, errno.EMFILE):
                raise
            # The kernel's inotify limits are per user: say which one and how to raise it, then poll.
            setting = "max_user_watches" if exc.errno == errno.ENOSPC else "max_user_instances"
            log.error(
                "watch_limit_reached",
                error=exc.strerror,
                fallback="polling",
                fix=f"raise it: sysctl fs.inotify.{setting}=<larger>, or set watch.observer: polling",
            )
            self.polling = True
            self._start_polling()

    def _start_polling(self) -> None:
        # The polling observer's snapshots lstat: a symbolic link to a folder (or to `.`) is not walked into.
        observer = PollingObserverVFS(os.lstat, os.scandir, polling_interval=self.poll_interval)
        for folder, identity in zip(self.folders, self._identity, strict=True):
            if identity is not None:
                observer.schedule(_Handler(self, folder), str(folder), recursive=True)
        self.observer = observer
        observer.start()

    def missing(self) -> list[Path]:
        """The folders not watched now: not there (stats them: call it off the loop), or back but not yet
        watched again (missing when the observer last started: the next `restart` watches them)."""
        now = [_identity(folder) for folder in self.folders]
        watched = self._identity or now  # not started yet: what is there now
        return [folder for folder, was, is_ in zip(self.folders, watched, now, strict=True) if None in (was, is_)]

    def alive(self) -> bool:
        """The observer runs (for the native one: every watched folder is still watched; for the polling one:
        its thread and each folder's emitter, which stops when its folder is removed), and each folder is
        still the one it watches: a folder deleted and made again is another folder, which the old watch
        never reports on (and whose watch may live on while a file of the old one is held open)."""
        if [_identity(folder) for folder in self.folders] != self._identity:
            return False
        watching = any(identity is not None for identity in self._identity)  # not when every folder is missing
        if not self.polling:
            return self.native is not None and (self.native.alive() or not watching)
        observer = self.observer
        if observer is None or not observer.is_alive():
            return False
        return bool(observer.emitters) == watching and all(emitter.is_alive() for emitter in observer.emitters)

    def restart(self) -> None:
        """Replace a dead observer; files missed meanwhile are found by the next reconcile scan."""
        self.stop()
        self.forget_opens()
        self.restarts += 1
        self.start()

    def stop(self) -> None:
        on_loop(self.loop, self._cancel_timers)  # the loop arms them: from a thread (`restart`), cancel there
        if self.native is not None:
            self.native.stop()
            self.native = None
        if self.observer is not None:
            self.observer.stop()
            if self.observer.is_alive():
                self.observer.join(timeout=5)
            self.observer = None

    def post(self, action: str, path: str) -> None:
        """From the observer thread: queue a call for the loop; one wake-up of the loop takes all queued."""
        with self._lock:
            self._events.append((action, path))
            if self._posted:
                return
            self._posted = True
        with contextlib.suppress(RuntimeError):  # the loop is closed: the daemon is gone
            self.loop.call_soon_threadsafe(self._drain)

    def takes(self, path: str, root: str) -> bool:
        """Whether an event's file is the watcher's: a wanted name, not beneath a hidden folder of `root`."""
        return wanted(path, self.suffixes) and not hidden_below(path, root)

    # -- on the loop ----------------------------------------------------------------------------------
    def _native_event(self, action: str, path: str, root: str) -> None:
        """An event of the native observer: as `_Handler.dispatch`, without the hop (a forget is for any name)."""
        if action == "forget":
            self.forget(path)
        elif self.takes(path, root):
            getattr(self, action)(path)

    def _drain(self) -> None:
        with self._lock:
            events, self._events = self._events, []
            self._posted = False
        for action, path in events:
            getattr(self, action)(path)

    def complete(self, path: str) -> None:
        self.closed(path)
        self._done_with(path)
        self.submit(path)

    def moved_in(self, path: str) -> None:
        """A file renamed in from an unwatched folder: submitted once a look at /proc finds no writer holding
        it. Its settle timer is armed meanwhile (the look's token, and what decides if the look fails); while a
        writer holds it, it waits for its close and is looked at again less and less often (`_looked`)."""
        self._held.pop(path, None)
        self._quiet.discard(path)
        self._relook(path)

    def found(self, path: str) -> None:
        """A file already in a folder made here when the folder's watch began (`cp -a`, `tar x`, `unzip`): no
        event covers it, so it needs what the reconcile scan needs, no write for `settle` (by its mtime) and no
        writer holding it; the look decides that too, and a file written lately waits for its settle timer."""
        self._held.pop(path, None)
        self._quiet.add(path)
        self._relook(path)

    def _relook(self, path: str) -> None:
        self.arm(path)
        self._to_look.append((path, self._timers[path]))
        if not self._checking:
            self._checking = True
            self.loop.call_soon(self._look)

    def _look(self) -> None:
        paths, self._to_look = self._to_look, []
        if self._looker is None:  # a thread of its own: a look on a machine of many processes takes a while
            self._looker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="watch-look")
        quiet = [path for path, _ in paths if path in self._quiet]
        try:
            future = self.loop.run_in_executor(
                self._looker, _look_at, [path for path, _ in paths], quiet, time.time_ns() - int(self.settle * 1e9)
            )
        except RuntimeError:  # the executor is shut down (the watcher stops): the settle timers decide
            self._checking = False
            return
        future.add_done_callback(functools.partial(self._looked, paths))

    def _looked(
        self, paths: list[tuple[str, asyncio.TimerHandle]], future: asyncio.Future[tuple[set[str], set[str]]]
    ) -> None:
        failed = future.cancelled() or future.exception() is not None
        writing, recent = (set(), set()) if failed else future.result()
        for path, timer in paths:
            if self._timers.get(path) is not timer or self._open.get(path):
                continue  # submitted, renamed away, deleted, made again or opened since: its events decide
            if failed or path in recent:  # the settle timer decides, as for a file no event covers
                self._held.pop(path, None)
            elif path in writing:  # its close comes (it is watched now); until then, look again now and then
                delay = self._held[path] = min(2 * self._held[path], HELD_LOOK) if path in self._held else self.settle
                self._cancel(path)
                self._timers[path] = self.loop.call_later(delay, self._settled, path)
            else:
                self.complete(path)  # as its close would have (it has no open count: checked above)
        if self._to_look:
            self._look()
        else:
            self._checking = False

    def is_open(self, path: str) -> bool:
        """Whether the observer saw the file opened and not yet closed (a writer may still be at it). A hint:
        an overflowed event queue can lose the close, so counts are dropped then (`forget_opens`)."""
        return self._open.get(path, 0) > 0

    def open_paths(self) -> list[str]:
        """The files the observer saw opened and not yet closed (on the loop; a copy for other threads)."""
        return [path for path, count in self._open.items() if count > 0]

    def _cancel_timers(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._held.clear()  # a look under way finds no timer: it submits nothing
        self._quiet.clear()
        self._to_look.clear()
        if self._looker is not None:
            self._looker.shutdown(wait=False)
            self._looker = None

    def forget_opens(self) -> None:
        """Events were lost (a kernel queue overflow, a restart): the open counts can no longer be trusted."""
        self._open.clear()

    def opened(self, path: str) -> None:
        self._open[path] = self._open.get(path, 0) + 1

    def closed(self, path: str) -> None:
        count = self._open.pop(path, 0) - 1
        if count > 0:
            self._open[path] = count

    def forget(self, path: str) -> None:
        """A file renamed away or deleted: drop its settle timer and its open count."""
        self._done_with(path)
        self._open.pop(path, None)

    def arm(self, path: str) -> None:
        self._cancel(path)
        self._timers[path] = self.loop.call_later(self.settle, self._settled, path)

    def _done_with(self, path: str) -> None:
        """Submitted or gone: no settle timer, and no look pending or to come."""
        self._cancel(path)
        self._held.pop(path, None)
        self._quiet.discard(path)

    def _cancel(self, path: str) -> None:
        timer = self._timers.pop(path, None)
        if timer is not None:
            timer.cancel()

    def _settled(self, path: str) -> None:
        self._timers.pop(path, None)
        if self._open.get(path):
            self.arm(path)  # still open for writing: wait for its close
            return
        if path in self._held:  # moved in while a writer held it: look again
            self._relook(path)
            return
        self.submit(path)
