"""The watcher on a real folder with a real event loop: which files are submitted, when, and under which name.

Absence is proven with a barrier, not a sleep: a file hard-linked in from an unwatched folder (an event of
its making, none of a close) is submitted by the settle timer, so once it arrives every event before it has
been handled and every earlier timer has fired.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import threading
import time
from collections.abc import AsyncIterator, Callable, Collection
from pathlib import Path

import inotify_simple
import pytest
import pytest_asyncio
from structlog.testing import capture_logs
from watchdog.observers.api import BaseObserver

from monitor.ingest import watch as watch_module
from monitor.ingest.inotify import Inotify
from monitor.ingest.watch import Watcher, scan, wanted

SETTLE = 0.3
WAIT = 10.0  # the longest any single wait may take


class Inbox:
    """What the watcher submitted, in order, with the content each file had at that moment."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.contents: dict[str, list[bytes]] = {}
        self.times: dict[str, float] = {}
        self._changed = asyncio.Event()

    def __call__(self, path: str) -> None:
        self.paths.append(path)
        self.times.setdefault(path, asyncio.get_running_loop().time())
        try:
            content = Path(path).read_bytes()
        except OSError:
            content = b"<unreadable>"
        self.contents.setdefault(path, []).append(content)
        self._changed.set()

    async def wait_for(self, path: Path | str, timeout: float = WAIT) -> None:
        async def arrived() -> None:
            while str(path) not in self.paths:
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(arrived(), timeout)
        except TimeoutError:
            raise AssertionError(f"{path} was not submitted within {timeout}s; got {self.paths}") from None

    def count(self, path: Path | str) -> int:
        return self.paths.count(str(path))


class Folder:
    """A watched folder, an unwatched one beside it, and barriers through the settle timer."""

    def __init__(self, root: Path, inbox: Inbox) -> None:
        self.path = root / "incoming"
        self.outside = root / "outside"
        self.path.mkdir()
        self.outside.mkdir()
        self.inbox = inbox
        self.watcher: Watcher | None = None
        self._barriers = itertools.count()

    def move_in(self, name: str, content: bytes = b"date 2022-01-08\nBody.") -> Path:
        """A file renamed in from the unwatched folder: complete at once (no writer holds it)."""
        return self._put_in(name, content, os.rename)

    def link_in(self, name: str, content: bytes = b"date 2022-01-08\nBody.") -> Path:
        """A file made in the folder with no close event (a hard link): only its settle timer submits it."""
        return self._put_in(name, content, os.link)

    def _put_in(self, name: str, content: bytes, put: Callable[[Path, Path], None]) -> Path:
        staged = self.outside / name
        staged.write_bytes(content)
        final = self.path / name
        put(staged, final)
        return final

    async def barrier_fast(self) -> None:
        """A barrier through close-after-write: every earlier event is handled (not every settle timer)."""
        path = self.path / f"barrier-{next(self._barriers)}.txt"
        path.write_bytes(b"date 2022-01-08\nBody.")
        await self.inbox.wait_for(path)

    async def barrier(self) -> None:
        """Returns once every earlier event is handled and every earlier settle timer has fired."""
        await self.inbox.wait_for(self.link_in(f"barrier-{next(self._barriers)}.txt"))

    def submitted(self) -> list[str]:
        """Submitted paths other than barriers, relative to the folder."""
        return [os.path.relpath(p, self.path) for p in self.inbox.paths if not Path(p).name.startswith("barrier-")]


WatchFactory = Callable[..., Folder]


@pytest_asyncio.fixture
async def watch(tmp_path: Path) -> AsyncIterator[WatchFactory]:
    watchers: list[Watcher] = []
    loop = asyncio.get_running_loop()

    def make(polling: bool = False, settle: float = SETTLE) -> Folder:
        inbox = Inbox()
        folder = Folder(tmp_path, inbox)
        watcher = Watcher(
            [folder.path], inbox, loop, polling=polling, settle=settle, suffixes=(".txt",), poll_interval=0.2
        )
        watcher.start()
        watchers.append(watcher)
        assert watcher.alive()
        folder.watcher = watcher
        return folder

    yield make
    for watcher in watchers:
        watcher.stop()
        assert not watcher.alive()


@pytest.mark.asyncio
async def test_file_written_and_closed_is_submitted_once(watch: WatchFactory) -> None:
    folder = watch()
    path = folder.path / "article.txt"
    path.write_bytes(b"date 2022-01-08\nBody.")
    await folder.inbox.wait_for(path)
    await folder.barrier()
    assert folder.submitted() == ["article.txt"]
    assert folder.inbox.contents[str(path)] == [b"date 2022-01-08\nBody."]


@pytest.mark.asyncio
async def test_close_is_submitted_before_the_settle_time(watch: WatchFactory) -> None:
    folder = watch(settle=5.0)  # only the close-after-write event can make this in time
    path = folder.path / "article.txt"
    start = asyncio.get_running_loop().time()
    path.write_bytes(b"date 2022-01-08\nBody.")
    await folder.inbox.wait_for(path, timeout=4.0)
    assert folder.inbox.times[str(path)] - start < 4.0


@pytest.mark.asyncio
async def test_slow_writer_is_submitted_only_after_close(watch: WatchFactory) -> None:
    folder = watch()
    path = folder.path / "slow.txt"
    first, second = b"date 2022-01-08\nFirst half, ", b"second half.\n"
    with path.open("wb") as handle:
        handle.write(first)
        handle.flush()
        os.fsync(handle.fileno())
        await folder.barrier()  # the pause: longer than the settle time since the last write
        await folder.barrier()
        assert folder.submitted() == [], "submitted while still open for writing"
        handle.write(second)
    await folder.inbox.wait_for(path)
    await folder.barrier()
    assert folder.submitted() == ["slow.txt"]
    assert folder.inbox.contents[str(path)] == [first + second]


@pytest.mark.asyncio
async def test_rsync_temporary_name_renamed_into_place(watch: WatchFactory) -> None:
    folder = watch()
    temporary = folder.path / ".article.txt.Xa91bQ"
    final = folder.path / "article.txt"
    temporary.write_bytes(b"date 2022-01-08\nBody.")
    await folder.barrier()  # the temporary file is complete and settled, and still not submitted
    os.rename(temporary, final)
    await folder.inbox.wait_for(final)
    await folder.barrier()
    assert folder.submitted() == ["article.txt"]


@pytest.mark.asyncio
async def test_temporary_name_with_a_wanted_suffix_renamed_into_place(watch: WatchFactory) -> None:
    folder = watch()
    temporary = folder.path / "article.txt.part"
    temporary.write_bytes(b"date 2022-01-08\nBody.")
    os.rename(temporary, folder.path / "article.txt")
    await folder.barrier()
    assert folder.submitted() == ["article.txt"]


IGNORED_NAMES = [".hidden.txt", "article.tmp", "article.part", "article.txt~", ".article.txt.swp", "article.swp"]
IGNORED_NAMES += ["#article.txt#", "article.crdownload", "notes.md", "article.TXT.tmp"]


@pytest.mark.asyncio
async def test_hidden_and_temporary_names_are_ignored(watch: WatchFactory) -> None:
    folder = watch()
    for name in IGNORED_NAMES:
        (folder.path / name).write_bytes(b"date 2022-01-08\nBody.")
    for name in ("moved-in.tmp", ".moved-in.txt"):
        folder.move_in(name)
    await folder.barrier()
    assert folder.submitted() == []


@pytest.mark.asyncio
async def test_files_in_hidden_subfolders_are_ignored(watch: WatchFactory) -> None:
    folder = watch()
    staging = folder.path / ".staging"
    staging.mkdir()
    await folder.barrier()  # the new subfolder is watched
    (staging / "article.txt").write_bytes(b"date 2022-01-08\nBody.")
    await folder.barrier()
    assert folder.submitted() == [], "scan() skips hidden folders, so the watcher must too"
    os.rename(staging / "article.txt", folder.path / "article.txt")
    await folder.inbox.wait_for(folder.path / "article.txt")
    await folder.barrier()
    assert folder.submitted() == ["article.txt"]


@pytest.mark.asyncio
async def test_subfolder_files_are_submitted(watch: WatchFactory) -> None:
    folder = watch()
    sub = folder.path / "2022" / "01"
    sub.mkdir(parents=True)
    await folder.barrier()
    (sub / "article.txt").write_bytes(b"date 2022-01-08\nBody.")
    await folder.inbox.wait_for(sub / "article.txt")
    await folder.barrier()
    assert folder.submitted() == ["2022/01/article.txt"]


@pytest.mark.asyncio
async def test_files_of_a_folder_made_with_its_files_at_once_are_submitted(watch: WatchFactory) -> None:
    """`mkdir -p` and files written before the new folder's watch exists: found when it is watched."""
    folder = watch()
    deep = folder.path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    for level in (folder.path / "a", deep):
        (level / "article.txt").write_bytes(b"date 2022-01-08\nBody.")
    await folder.inbox.wait_for(deep / "article.txt")
    await folder.inbox.wait_for(folder.path / "a" / "article.txt")
    await folder.barrier()
    assert sorted(set(folder.submitted())) == ["a/article.txt", "a/b/c/article.txt"]


def _made_in_place(folder: Folder, files: dict[str, bytes], age: float = 0.0) -> list[Path]:
    """Files in a folder made in the watched one before its watch begins: written with no await between, so
    the loop reads the folder's event after they are all there (as after `tar x`); `age`: their mtime's."""
    paths = []
    for name, content in files.items():
        path = folder.path / "batch" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        if age:
            os.utime(path, (time.time() - age, time.time() - age))
        paths.append(path)
    return paths


@pytest.mark.asyncio
async def test_files_found_in_a_folder_made_here_and_unchanged_for_settle_are_submitted_at_once(
    watch: WatchFactory,
) -> None:
    """As the reconcile scan takes them: no write for `settle` (by mtime), and no writer holding them."""
    folder = watch(settle=5.0)
    start = asyncio.get_running_loop().time()
    paths = _made_in_place(folder, {"a.txt": b"date 2022-01-08\nA.", "sub/b.txt": b"date 2022-01-08\nB."}, age=3600)
    for path in paths:
        await folder.inbox.wait_for(path)
        assert folder.inbox.times[str(path)] - start < 4.0
    assert sorted(folder.submitted()) == ["batch/a.txt", "batch/sub/b.txt"]


@pytest.mark.asyncio
async def test_files_found_in_a_folder_made_here_and_written_lately_wait_for_settling(watch: WatchFactory) -> None:
    folder = watch()
    start = asyncio.get_running_loop().time()
    (path,) = _made_in_place(folder, {"fresh.txt": b"date 2022-01-08\nFresh."})
    await folder.inbox.wait_for(path)
    assert folder.inbox.times[str(path)] - start >= SETTLE * 0.9  # its writer may still be at it
    await folder.barrier()
    assert folder.submitted() == ["batch/fresh.txt"]


@pytest.mark.asyncio
async def test_a_file_found_in_a_folder_made_here_that_a_writer_holds_waits_for_its_close(
    watch: WatchFactory,
) -> None:
    folder = watch()
    path = folder.path / "batch" / "held.txt"
    path.parent.mkdir()
    with path.open("wb") as handle:
        handle.write(b"date 2022-01-08\nFirst half, ")
        handle.flush()
        os.utime(path, (time.time() - 3600, time.time() - 3600))  # quiet by its mtime, but held
        await folder.barrier()  # found, looked at, and its settle timer has fired
        await folder.barrier()
        assert folder.submitted() == []
        handle.write(b"second half.")
    await folder.inbox.wait_for(path)
    assert folder.inbox.contents[str(path)] == [b"date 2022-01-08\nFirst half, second half."]


@pytest.mark.asyncio
async def test_a_folder_moved_in_is_watched_and_its_files_are_submitted_at_once(watch: WatchFactory) -> None:
    folder = watch(settle=5.0)  # renamed in with its folder, and no writer holds it: complete without settling
    batch = folder.outside / "batch"
    (batch / "sub").mkdir(parents=True)
    (batch / "sub" / "inside.txt").write_bytes(b"date 2022-01-08\nBody.")
    start = asyncio.get_running_loop().time()
    os.rename(batch, folder.path / "batch")
    moved = folder.path / "batch" / "sub" / "inside.txt"
    await folder.inbox.wait_for(moved)
    assert folder.inbox.times[str(moved)] - start < 4.0
    later = folder.path / "batch" / "sub" / "later.txt"
    later.write_bytes(b"date 2022-01-09\nLater.")  # the moved-in folder is watched
    await folder.inbox.wait_for(later)
    await folder.barrier()
    assert folder.submitted() == ["batch/sub/inside.txt", "batch/sub/later.txt"]


@pytest.mark.asyncio
async def test_a_folder_renamed_within_is_watched_under_its_new_name(watch: WatchFactory) -> None:
    folder = watch()
    (folder.path / "old" / "sub").mkdir(parents=True)
    await folder.barrier()
    os.rename(folder.path / "old", folder.path / "new")
    path = folder.path / "new" / "sub" / "article.txt"
    path.write_bytes(b"date 2022-01-08\nBody.")
    await folder.inbox.wait_for(path)
    await folder.barrier()
    # once by its own close, and again if the folder's walk after the rename already found it
    assert set(folder.submitted()) == {"new/sub/article.txt"}, "reported under the folder's new name"


@pytest.mark.asyncio
async def test_a_folder_renamed_within_submits_its_files_under_their_new_names(watch: WatchFactory) -> None:
    folder = watch(settle=5.0)  # only the paired rename can make this in time
    (folder.path / "old").mkdir()
    await folder.barrier_fast()
    (folder.path / "old" / "article.txt").write_bytes(b"date 2022-01-08\nBody.")
    await folder.inbox.wait_for(folder.path / "old" / "article.txt")
    start = asyncio.get_running_loop().time()
    os.rename(folder.path / "old", folder.path / "new")
    await folder.inbox.wait_for(folder.path / "new" / "article.txt", timeout=4.0)
    assert asyncio.get_running_loop().time() - start < 4.0
    assert folder.submitted() == ["old/article.txt", "new/article.txt"]


@pytest.mark.asyncio
async def test_a_folder_moved_out_is_no_longer_watched(watch: WatchFactory) -> None:
    folder = watch()
    (folder.path / "leaving").mkdir()
    await folder.barrier()
    os.rename(folder.path / "leaving", folder.outside / "left")
    await folder.barrier()
    (folder.outside / "left" / "article.txt").write_bytes(b"date 2022-01-08\nBody.")
    await folder.barrier()
    assert folder.submitted() == [], "a file in a folder moved out is not the watcher's"
    assert folder.watcher is not None and folder.watcher.alive()


@pytest.mark.asyncio
async def test_a_folder_rotated_out_and_made_again_in_one_read_is_watched(watch: WatchFactory) -> None:
    """`mv today archive/2026-12-01; mkdir today` between two reads: the new folder keeps its watch, and the
    one moved out reports nothing under the old name."""
    folder = watch()
    today = folder.path / "today"
    today.mkdir()
    await folder.barrier_fast()
    os.rename(today, folder.outside / "2026-12-01")  # no await between: the loop reads both at once
    today.mkdir()
    (folder.outside / "2026-12-01" / "old.txt").write_bytes(b"date 2022-01-08\nOld.")
    path = today / "new.txt"
    path.write_bytes(b"date 2022-01-09\nNew.")
    await folder.inbox.wait_for(path)
    await folder.barrier()
    assert set(folder.submitted()) == {"today/new.txt"}
    assert _watches(folder) == (2, 2), "no watch left behind"


@pytest.mark.asyncio
async def test_a_folder_renamed_then_moved_out_in_one_read_leaves_no_watch(watch: WatchFactory) -> None:
    folder = watch()
    (folder.path / "a").mkdir()
    await folder.barrier_fast()
    os.rename(folder.path / "a", folder.path / "b")
    os.rename(folder.path / "b", folder.outside / "b")
    await folder.barrier_fast()
    assert _watches(folder) == (1, 1)


@pytest.mark.asyncio
async def test_a_file_renamed_out_of_a_hidden_folder_is_complete_at_once(watch: WatchFactory) -> None:
    folder = watch(settle=5.0)  # only the paired rename can make this in time
    staging = folder.path / ".staging"
    staging.mkdir()
    await folder.barrier_fast()
    (staging / "article.txt").write_bytes(b"date 2022-01-08\nBody.")
    os.rename(staging / "article.txt", folder.path / "article.txt")
    await folder.inbox.wait_for(folder.path / "article.txt", timeout=4.0)


@pytest.mark.asyncio
async def test_an_overflow_walk_of_many_folders_does_not_overflow_again(tmp_path: Path) -> None:
    """Walking a folder opens it, which the kernel reports: a walk of 5,000 folders (20,000 events) would
    overflow the 16,384-event queue by itself, every time, if the walk did not read the queue as it went."""
    for i in range(5000):
        (tmp_path / f"d{i}").mkdir()
    loop = asyncio.get_running_loop()
    lost: list[int] = []
    native = Inotify([str(tmp_path)], loop, lambda action, path, root: None, lambda: lost.append(1))
    native.start()
    try:
        native._handle([inotify_simple.Event(-1, inotify_simple.flags.Q_OVERFLOW, 0, "")])
        for _ in range(5):
            native._read()
        assert lost == [1], "one overflow, one call of `lost`"
        assert len(native._watches) == 5001
    finally:
        native.stop()


def _watches(folder: Folder) -> tuple[int, int]:
    """(the native observer's watches in the kernel, those it keeps track of)."""
    native = folder.watcher.native if folder.watcher else None
    assert native is not None and native._inotify is not None
    with open(f"/proc/self/fdinfo/{native._inotify.fileno()}", encoding="ascii") as info:
        return sum(1 for line in info if line.startswith("inotify wd:")), len(native._watches)


@pytest.mark.asyncio
async def test_a_hidden_folder_renamed_visible_submits_its_files(watch: WatchFactory) -> None:
    folder = watch()
    staging = folder.path / ".staging"
    staging.mkdir()
    (staging / "article.txt").write_bytes(b"date 2022-01-08\nBody.")
    await folder.barrier()
    os.rename(staging, folder.path / "ready")
    await folder.inbox.wait_for(folder.path / "ready" / "article.txt")
    await folder.barrier()
    assert folder.submitted() == ["ready/article.txt"]


@pytest.mark.asyncio
async def test_a_lost_queue_refreshes_the_watches_and_says_so(tmp_path: Path) -> None:
    """An overflowed kernel queue (max_queued_events) calls `lost`; folders made meanwhile are watched (the
    e2e test of the daemon, test_e2e_ops.py, makes the kernel overflow for real)."""
    loop = asyncio.get_running_loop()
    lost = asyncio.Event()
    seen: list[tuple[str, str]] = []
    native = Inotify([str(tmp_path)], loop, lambda action, path, root: seen.append((action, path)), lost.set)
    native.start()
    try:
        (tmp_path / "made").mkdir()
        # What the kernel sends when its queue overflowed (wd -1, IN_Q_OVERFLOW), here before the folder's event
        native._handle([inotify_simple.Event(-1, inotify_simple.flags.Q_OVERFLOW, 0, "")])
        await asyncio.wait_for(lost.wait(), WAIT)
        assert str(tmp_path / "made") in native._watches
    finally:
        native.stop()
    assert not native.alive()


@pytest.mark.asyncio
async def test_moved_in_from_an_unwatched_folder_is_submitted_at_once(watch: WatchFactory) -> None:
    folder = watch(settle=5.0)  # the atomic-rename pattern from a staging folder: no settle timer
    start = asyncio.get_running_loop().time()
    path = folder.move_in("article.txt")
    await folder.inbox.wait_for(path)
    assert folder.inbox.times[str(path)] - start < 4.0
    await folder.barrier_fast()
    assert folder.submitted() == ["article.txt"]


@pytest.mark.asyncio
async def test_moved_in_while_a_writer_holds_it_waits_for_its_close(watch: WatchFactory) -> None:
    """Opened before it came under the watch, so no event says a writer has it: /proc does."""
    folder = watch()
    staged = folder.outside / "held.txt"
    with staged.open("wb") as handle:
        handle.write(b"date 2022-01-08\nFirst half, ")
        handle.flush()
        path = folder.path / "held.txt"
        os.rename(staged, path)
        folder.move_in("after.txt")  # looked at with it, or after it
        await folder.inbox.wait_for(folder.path / "after.txt")
        await folder.barrier()  # and its settle timer has fired: it looked again, the writer still holds it
        assert folder.submitted() == ["after.txt"]
        handle.write(b"second half.")
    await folder.inbox.wait_for(path)  # by its close (it is watched now)
    await folder.barrier_fast()
    assert folder.submitted() == ["after.txt", "held.txt"]
    assert folder.inbox.contents[str(path)] == [b"date 2022-01-08\nFirst half, second half."]


@pytest.mark.asyncio
async def test_moved_in_and_opened_for_writing_during_the_look_waits_for_its_close(
    watch: WatchFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The look at /proc passed before the writer opened the file: its answer ("no writer") is stale, and the
    open event the loop saw meanwhile decides (review of the first version: it submitted the half file)."""
    looked, release = threading.Event(), threading.Event()
    real = watch_module.open_for_writing

    def slow(paths: Collection[str]) -> set[str]:
        answer = real(paths)  # nobody writes yet
        looked.set()
        release.wait(WAIT)
        return answer

    monkeypatch.setattr(watch_module, "open_for_writing", slow)
    folder = watch(settle=5.0)
    path = folder.move_in("rewritten.txt", b"date 2022-01-08\nOld.")
    assert await asyncio.to_thread(looked.wait, WAIT)
    with path.open("wb") as handle:  # made again in place while the look runs
        handle.write(b"date 2022-01-08\nNew, first half, ")
        handle.flush()
        await folder.barrier_fast()  # its open event is handled
        release.set()
        async with asyncio.timeout(WAIT):  # the look's (stale) answer is handled too
            while folder.watcher is not None and folder.watcher._checking:
                await asyncio.sleep(0.01)
        await folder.barrier_fast()
        assert folder.submitted() == []
        handle.write(b"second half.")
    await folder.inbox.wait_for(path)
    assert folder.inbox.contents[str(path)] == [b"date 2022-01-08\nNew, first half, second half."]


@pytest.mark.asyncio
async def test_a_look_that_fails_leaves_the_file_to_its_settle_timer(
    watch: WatchFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(paths: Collection[str]) -> set[str]:
        raise OSError("no /proc here")

    monkeypatch.setattr(watch_module, "open_for_writing", broken)
    folder = watch()
    path = folder.move_in("article.txt")
    await folder.inbox.wait_for(path)  # after the settle time, not never
    await folder.barrier()
    assert folder.submitted() == ["article.txt"]


@pytest.mark.asyncio
async def test_a_file_held_long_is_looked_at_less_and_less_often(
    watch: WatchFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    looks: list[float] = []
    real = watch_module.open_for_writing

    def counted(paths: Collection[str]) -> set[str]:
        looks.append(time.monotonic())
        return real(paths)

    monkeypatch.setattr(watch_module, "open_for_writing", counted)
    folder = watch(settle=0.1)
    staged = folder.outside / "held.txt"
    with staged.open("wb") as handle:
        handle.write(b"date 2022-01-08\nBody.")
        handle.flush()
        os.rename(staged, folder.path / "held.txt")
        await asyncio.sleep(2.0)  # the writer holds it this long: the scenario, not a wait for an event
    await folder.inbox.wait_for(folder.path / "held.txt")  # by its close
    assert 3 <= len(looks) <= 6, looks  # after 0, 0.1, 0.3, 0.7, 1.5 s: not every 0.1 s (20)
    assert folder.submitted() == ["held.txt"]


@pytest.mark.asyncio
async def test_renamed_within_the_folder_is_submitted_under_the_new_name(watch: WatchFactory) -> None:
    folder = watch()
    old = folder.link_in("old.txt")  # still settling when it is renamed
    os.rename(old, folder.path / "new.txt")
    await folder.inbox.wait_for(folder.path / "new.txt")
    await folder.barrier()
    assert folder.submitted() == ["new.txt"], "a file renamed while settling is not submitted under the old name"


@pytest.mark.asyncio
async def test_deleted_while_settling_is_not_submitted(watch: WatchFactory) -> None:
    folder = watch()
    folder.link_in("gone.txt").unlink()
    await folder.barrier()
    assert folder.submitted() == []


@pytest.mark.slow
@pytest.mark.asyncio
async def test_polling_observer_submits_after_settling(watch: WatchFactory) -> None:
    folder = watch(polling=True)
    path = folder.path / "article.txt"
    path.write_bytes(b"date 2022-01-08\nBody.")
    await folder.inbox.wait_for(path)
    renamed = folder.path / ".renamed.txt.tmp"
    renamed.write_bytes(b"date 2022-01-09\nOther.")
    await folder.barrier()
    os.rename(renamed, folder.path / "renamed.txt")
    await folder.inbox.wait_for(folder.path / "renamed.txt")
    await folder.barrier()
    assert folder.submitted() == ["article.txt", "renamed.txt"]
    assert folder.inbox.contents[str(path)] == [b"date 2022-01-08\nBody."]


@pytest.mark.parametrize("polling", [False, True], ids=["inotify", "polling"])
@pytest.mark.asyncio
async def test_restart_replaces_the_observer(watch: WatchFactory, polling: bool) -> None:
    folder = watch(polling=polling)
    watcher = folder.watcher
    assert watcher is not None

    def running() -> Inotify | BaseObserver | None:
        return watcher.observer if polling else watcher.native

    first = running()
    watcher.restart()
    assert watcher.alive() and running() is not first and watcher.restarts == 1
    assert first is not None and not (first.is_alive() if isinstance(first, BaseObserver) else first.alive())
    await folder.barrier()  # the new observer sees events


@pytest.mark.asyncio
async def test_restart_from_another_thread_while_the_loop_runs(watch: WatchFactory) -> None:
    """As the daemon restarts it (`asyncio.to_thread`): the reader is detached and attached on the loop."""
    folder = watch()
    watcher = folder.watcher
    assert watcher is not None
    first = watcher.native
    await asyncio.wait_for(asyncio.to_thread(watcher.restart), WAIT)
    assert await asyncio.to_thread(watcher.alive) and watcher.native is not first
    assert first is not None and not first.alive()
    path = folder.path / "after.txt"
    path.write_bytes(b"date 2022-01-08\nBody.")
    await folder.inbox.wait_for(path)


async def _dead(watcher: Watcher) -> None:
    async def dead() -> None:
        while watcher.alive():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(dead(), WAIT)


@pytest.mark.parametrize("polling", [False, True], ids=["inotify", "polling"])
@pytest.mark.asyncio
async def test_a_removed_folder_is_noticed_and_restart_makes_it_and_watches_it(
    watch: WatchFactory, polling: bool
) -> None:
    folder = watch(polling=polling)
    watcher = folder.watcher
    assert watcher is not None
    watcher.create = True  # watch.create_folders
    shutil.rmtree(folder.path)
    await _dead(watcher)
    watcher.restart()  # recreates the folder and watches it
    assert watcher.alive() and watcher.restarts == 1 and watcher.missing() == []
    path = folder.path / "after.txt"
    path.write_bytes(b"date 2022-01-08\nBody.")
    await folder.inbox.wait_for(path)


@pytest.mark.parametrize("polling", [False, True], ids=["inotify", "polling"])
@pytest.mark.asyncio
async def test_a_removed_folder_is_not_made_again_and_is_watched_once_it_is_back(
    watch: WatchFactory, polling: bool
) -> None:
    folder = watch(polling=polling)
    watcher = folder.watcher
    assert watcher is not None
    shutil.rmtree(folder.path)
    await _dead(watcher)
    watcher.restart()  # watches what is there: nothing
    assert watcher.alive() and watcher.missing() == [folder.path] and not folder.path.exists()
    folder.path.mkdir()
    assert not watcher.alive()  # the folder is back: a restart watches it
    watcher.restart()
    assert watcher.alive() and watcher.restarts == 2 and watcher.missing() == []
    path = folder.path / "after.txt"
    path.write_bytes(b"date 2022-01-08\nBody.")
    await folder.inbox.wait_for(path)


# -- names and the reconcile scan ----------------------------------------------------------------------------
WANTED = [
    ("article.txt", True),
    ("dir/article.txt", True),
    ("Kazachstan 2022-01-08.txt", True),
    (".article.txt", False),
    (".article.txt.Xa91bQ", False),
    ("article.tmp", False),
    ("article.txt.tmp", False),
    ("article.part", False),
    ("article.txt.partial", False),
    ("article.txt~", False),
    (".article.txt.swp", False),
    ("article.txt.crdownload", False),
    ("#article.txt#", False),
    ("article.md", False),
    ("article", False),
]


@pytest.mark.parametrize(("name", "expected"), [pytest.param(n, e, id=n) for n, e in WANTED])
def test_wanted(name: str, expected: bool) -> None:
    assert wanted(name, (".txt",)) is expected


def test_wanted_without_suffixes_takes_any_visible_name() -> None:
    assert wanted("article.md", ())
    assert not wanted("article.tmp", ())


def test_scan_finds_subfolders_skips_hidden_and_unwanted_and_does_not_follow_symlinks(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    for name in ["a.txt", "sub/b.txt", "sub/deeper/c.txt", ".hidden/d.txt", "sub/.git/e.txt", "x.tmp", ".y.txt"]:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("date 2022-01-08\nBody.")
    (root / "notes.md").write_text("not an article")
    (root / "folder.txt").mkdir()
    (outside / "f.txt").parent.mkdir()
    (outside / "f.txt").write_text("date 2022-01-08\nOutside.")
    (root / "linked-dir").symlink_to(outside, target_is_directory=True)
    (root / "link.txt").symlink_to(outside / "f.txt")
    (root / "loop").symlink_to(root, target_is_directory=True)

    entries = {os.path.relpath(entry.path, root): entry for entry in scan([root], (".txt",))}
    assert sorted(entries) == ["a.txt", "link.txt", "sub/b.txt", "sub/deeper/c.txt"]
    assert entries["link.txt"].is_symlink(), "a link is listed as itself (the reader refuses it), never followed"
    assert all(entry.is_file(follow_symlinks=False) for name, entry in entries.items() if name != "link.txt")


def test_scan_survives_a_missing_folder(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("date 2022-01-08\nBody.")
    with capture_logs() as logs:
        found = [entry.name for entry in scan([tmp_path / "missing", tmp_path], (".txt",))]
    assert found == ["a.txt"]
    assert [(e["event"], str(e["folder"])) for e in logs] == [("scan_failed", str(tmp_path / "missing"))]


@pytest.mark.parametrize("polling", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["inotify", "polling"])
@pytest.mark.asyncio
async def test_symlinked_folders_are_not_followed(watch: WatchFactory, tmp_path: Path, polling: bool) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "private.txt").write_bytes(b"date 2022-01-08\nPrivate.")
    folder = watch(polling=polling)
    (folder.path / "feed").symlink_to(secret, target_is_directory=True)
    (folder.path / "self").symlink_to(".", target_is_directory=True)  # a loop: polling once grew without bound
    (folder.path / "again").symlink_to(".", target_is_directory=True)
    await folder.barrier()
    (secret / "later.txt").write_bytes(b"date 2022-01-09\nPrivate too.")
    path = folder.path / "article.txt"
    path.write_bytes(b"date 2022-01-08\nBody.")
    await folder.inbox.wait_for(path)
    await folder.barrier()
    assert folder.submitted() == ["article.txt"]


@pytest.mark.parametrize("polling", [False, True], ids=["inotify", "polling"])
@pytest.mark.asyncio
async def test_a_folder_deleted_and_made_again_is_noticed(watch: WatchFactory, polling: bool) -> None:
    folder = watch(polling=polling)
    watcher = folder.watcher
    assert watcher is not None
    held = (folder.path / "held.txt").open("wb")  # a file of the old folder stays open meanwhile
    try:
        shutil.rmtree(folder.path)
        folder.path.mkdir()

        async def noticed() -> None:
            while watcher.alive():
                await asyncio.sleep(0.02)

        await asyncio.wait_for(noticed(), WAIT)
    finally:
        held.close()
    watcher.restart()
    assert watcher.alive()
    path = folder.path / "after.txt"
    path.write_bytes(b"date 2022-01-08\nBody.")
    await folder.inbox.wait_for(path)
