"""Isolation: what one article or one delivery costs must not hold up the others.

The ingest lane on its own (slow batches left running, paths held while their batch runs), then through
the real daemon: a 10 MB article that is slow to match beside ordinary ones (they are alerted at
once, `/healthz` keeps answering), a receiver that drips its response (the attempt ends at the webhook's
timeout), one that sends a huge body (not read), a slow receiver under a short lease (no id twice), and
a lease too short for a webhook's timeout (refused at start-up and on reload).
"""

from __future__ import annotations

import asyncio
import itertools
import re
import select
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from monitor.cli.receiver import Received, Receiver
from monitor.daemon import SLOW_BATCH
from monitor.ingest.articles import ArticleOutcome
from monitor.ingest.lanes import MAX_SLOW, Lane
from monitor.ingest.pipeline import Processed
from tests.conftest import SECRET, DaemonProcess, HealthProbe, shipped_rules, this_checkout, wait_until
from tests.servers import RawServer

GOOD = "date 2022-01-08 Bericht {i}: oud-premier opgepakt op verdenking van hoogverraad.\n"
WAIT = 10.0
HOSTILE_BYTES = 10_000_000  # under watch.max_article_bytes (10 MiB), far over limits.large_article_bytes


# -- the lane on its own --------------------------------------------------------------------------------
@dataclass
class Batches:
    """A lane's `process`: records each batch; a batch with a path in `blocked` waits for `release`."""

    blocked: set[str] = field(default_factory=set)
    release: threading.Event = field(default_factory=threading.Event)
    seen: list[list[str]] = field(default_factory=list)
    threads: list[int] = field(default_factory=list)

    def __call__(self, paths: list[str]) -> list[Processed]:
        self.seen.append(paths)
        self.threads.append(threading.get_ident())
        if self.blocked.intersection(paths):
            assert self.release.wait(WAIT)
        if "broken" in paths:
            raise RuntimeError("the store is gone")
        return [Processed(path, ArticleOutcome.accepted) for path in paths]


async def eventually(predicate: Callable[[], bool], what: str) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(poll(), WAIT)
    except TimeoutError:
        raise AssertionError(f"timed out after {WAIT}s waiting for {what}") from None


@asynccontextmanager
async def running(batches: Batches, slow: float | None) -> AsyncIterator[tuple[Lane, list[str], list[str]]]:
    """A lane of batches of up to 8 paths; yields it, the paths reported done and those resubmitted."""
    done: list[str] = []
    resubmitted: list[str] = []
    lane = Lane("test", 100, 8, batches, lambda r: done.append(r.path), lambda _: None, resubmitted.append, slow)
    task = asyncio.create_task(lane.run())
    try:
        yield lane, done, resubmitted
    finally:
        batches.release.set()
        task.cancel()
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), WAIT)


@pytest.mark.asyncio
async def test_a_slow_batch_is_left_running_and_the_lane_goes_on_in_a_new_thread() -> None:
    batches = Batches(blocked={"slow"})
    async with running(batches, slow=0.1) as (lane, done, _):
        lane.queue.put_nowait("slow")
        await eventually(lambda: len(batches.seen) == 1, "the slow batch to start")
        lane.queue.put_nowait("fast")
        await eventually(lambda: done == ["fast"], "the fast file behind the slow one")
        assert lane.busy and batches.threads[0] != batches.threads[1]
        batches.release.set()
        await eventually(lambda: done == ["fast", "slow"], "the slow batch to finish")
        await eventually(lambda: not lane.busy, "the lane to be idle")


@pytest.mark.asyncio
async def test_without_slow_a_lane_takes_one_batch_at_a_time() -> None:
    batches = Batches(blocked={"big"})
    async with running(batches, slow=None) as (lane, done, _):
        lane.queue.put_nowait("big")
        await eventually(lambda: len(batches.seen) == 1, "the batch to start")
        lane.queue.put_nowait("next")
        await asyncio.sleep(0.2)  # the scenario: time in which a second batch would have started
        assert batches.seen == [["big"]] and lane.busy
        batches.release.set()
        await eventually(lambda: done == ["big", "next"], "both, in turn")


@pytest.mark.asyncio
async def test_a_path_queued_again_while_its_batch_runs_waits_for_it() -> None:
    batches = Batches(blocked={"slow"})
    async with running(batches, slow=0.1) as (lane, done, resubmitted):
        lane.queue.put_nowait("slow")
        await eventually(lambda: len(batches.seen) == 1, "the slow batch to start")
        lane.queue.put_nowait("slow")  # written again while being read
        lane.queue.put_nowait("other")
        await eventually(lambda: done == ["other"], "the other file")
        assert batches.seen == [["slow"], ["other"]], "never read by two threads at once"
        batches.release.set()
        await eventually(lambda: resubmitted == ["slow"], "the held path to be queued again")


@pytest.mark.asyncio
async def test_no_more_than_max_slow_batches_are_left_running() -> None:
    batches = Batches(blocked={f"slow-{i}" for i in range(MAX_SLOW + 1)})
    async with running(batches, slow=0.05) as (lane, done, _):
        for i in range(MAX_SLOW + 1):
            lane.queue.put_nowait(f"slow-{i}")
            await eventually(lambda i=i: len(batches.seen) == i + 1, f"slow batch {i} to start")
        lane.queue.put_nowait("waits")
        await asyncio.sleep(0.3)  # the scenario: time in which the lane would have gone on
        assert len(batches.seen) == MAX_SLOW + 1, "the lane waits for its latest batch"
        batches.release.set()
        await eventually(lambda: "waits" in done, "the last file once the slow ones ended")


@pytest.mark.asyncio
async def test_a_failing_batch_is_logged_and_the_lane_goes_on() -> None:
    batches = Batches()
    with capture_logs() as logs:
        async with running(batches, slow=None) as (lane, done, _):
            lane.queue.put_nowait("broken")
            await eventually(lambda: any(e["event"] == "ingest_batch_failed" for e in logs), "the failure logged")
            lane.queue.put_nowait("fine")
            await eventually(lambda: done == ["fine"], "the next batch")


# -- through the daemon -----------------------------------------------------------------------------------
def hostile(path: Path, size: int = HOSTILE_BYTES) -> None:
    """An article that costs seconds to match with `slow_rules`: every word is a hit of every glob rule, so
    each rule counts a million hits (matching is linear, so a slow article needs many rules that fire on it:
    about 1 s of CPU per rule for 10 MB)."""
    path.write_text("date 2022-01 " + "abcdefghij " * (size // 11), encoding="utf-8")


def slow_rules(url: str, count: int) -> dict[str, Any]:
    """The shipped rules and `count` rules of the shape `*a*b*c*` that every word of `hostile` matches."""
    rules = shipped_rules(url)
    patterns = ["*{}*{}*{}*".format(*letters) for letters in itertools.combinations("abcdefghij", 3)]
    rules["rules"] += [{"name": f"glob{i}", "query": pattern} for i, pattern in enumerate(patterns[:count])]
    return rules


def one_hook(url: str, **webhook: Any) -> dict[str, Any]:
    hook = {"url": url, "secret": SECRET, "retry_schedule": ["1m"], **webhook}
    return {"version": 1, "webhooks": {"hook": hook}, "rules": [{"name": "hoogverraad", "query": "hoogverraad"}]}


@pytest.mark.e2e
def test_a_slow_large_article_holds_up_neither_ordinary_articles_nor_health(
    receiver: Receiver, daemon_factory: Callable[..., DaemonProcess]
) -> None:
    daemon = daemon_factory(slow_rules(receiver.url, 10)).start()  # about 10 s to match
    hostile(daemon.watched / "hostile.txt")
    with HealthProbe(daemon.port) as prober:
        time.sleep(1.0)  # the scenario: ordinary articles written while the hostile one is being matched
        written = {}
        for i in range(5):
            name = f"ordinary-{i}.txt"
            (daemon.watched / name).write_text(GOOD.format(i=i), encoding="utf-8")
            written[name] = time.time()
            time.sleep(0.3)
        assert receiver.wait_for(lambda got: len(got) >= 5, timeout=20), daemon.log.read_text()[-3000:]
        wait_until(lambda: len(prober.times) >= 100, 20, "100 answers of /healthz")
        hostile_done = '"path": "' + str(daemon.watched / "hostile.txt") in daemon.log.read_text()
    arrived = {Path(r.json()["data"]["article"]["path"]).name: r.at for r in receiver.received}
    delays = {name: round(arrived[name] - at, 3) for name, at in written.items()}
    print(f"ordinary articles alerted after {delays} s; /healthz: {len(prober.times)} requests,")
    ranked = sorted(prober.times)
    print(f"  max {ranked[-1] * 1000:.1f} ms, median {ranked[len(ranked) // 2] * 1000:.1f} ms, top {ranked[-5:]}")
    assert not hostile_done, "the hostile article was matched before the ordinary ones: the test proves nothing"
    assert max(delays.values()) < 2.0, delays
    assert not prober.failures, prober.failures[:5]
    # The loop itself holds the GIL for no more than a few ms; what remains are single long C calls in the
    # matching thread, which hold the GIL for the whole call: on this engine `str.split` of the whole folded
    # 10 MB text (monitor/matching/presearch.py, `tokens`: 0.06 to 0.3 s) and other calls over the whole
    # text (a regex search in reading it: 20 ms). Measured: 1 or 2 answers of 100 requests over 100 ms
    # (0.14 to 0.35 s), the median 6 to 22 ms. Tighten to max < 0.1 when matching splits long texts in slices.
    slow = [round(t, 3) for t in prober.times if t >= 0.1]
    assert len(slow) <= 5 and max(prober.times) < 1.0, slow
    started = time.monotonic()
    assert daemon.stop() == 0  # the large lane is still busy: abandoned after the grace period (5 s)
    assert time.monotonic() - started < 10
    assert "ingest_abandoned" in daemon.log.read_text()


@pytest.mark.e2e
def test_a_small_article_slow_to_match_holds_up_the_others_no_longer_than_slow_batch(
    receiver: Receiver, daemon_factory: Callable[..., DaemonProcess]
) -> None:
    daemon = daemon_factory(slow_rules(receiver.url, 40)).start()
    slow = daemon.watched / "slow.txt"
    hostile(slow, 900_000)  # under limits.large_article_bytes, in the main lane; about 3 s to match
    time.sleep(1.0)  # the scenario: an ordinary article written while the slow one is being matched
    (daemon.watched / "ordinary.txt").write_text(GOOD.format(i=0), encoding="utf-8")
    written = time.time()
    assert receiver.wait_for(lambda got: len(got) >= 1, timeout=20), daemon.log.read_text()[-3000:]
    first = receiver.received[0]
    delay = first.at - written
    print(f"ordinary article alerted {delay:.3f} s after it was written (SLOW_BATCH {SLOW_BATCH} s)")
    assert Path(first.json()["data"]["article"]["path"]).name == "ordinary.txt"
    assert delay < SLOW_BATCH + 1.0
    assert "ingest_batch_slow" in daemon.log.read_text()
    assert daemon.stop() == 0


class Dripper(RawServer):
    """A raw HTTP server that answers each request with a status line, headers, and then `body`."""

    def __init__(self, body: Callable[[socket.socket], int]) -> None:
        self.body = body
        self.connections: list[tuple[float, float, int]] = []  # (request read, connection closed, bytes sent)
        super().__init__()

    @property
    def url(self) -> str:
        return self.address + "/hook"

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, rest = data.partition(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
            while len(rest) < length:
                rest += conn.recv(65536)
            start = time.monotonic()
            sent = self.body(conn)
            with self._lock:
                self.connections.append((start, time.monotonic(), sent))


def closed_by_peer(conn: socket.socket, wait: float) -> bool:
    """Whether the client closed the connection (within `wait` seconds)."""
    readable, _, _ = select.select([conn], [], [], wait)
    if not readable:
        return False
    try:
        return conn.recv(4096, socket.MSG_PEEK) == b""
    except OSError:
        return True


def drip(conn: socket.socket) -> int:
    """200 with a 1000-byte body sent one byte a second, until the client hangs up (at most 60 s)."""
    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
    sent = 0
    while sent < 60 and not closed_by_peer(conn, 1.0):
        try:
            conn.sendall(b"x")
        except OSError:
            break
        sent += 1
    return sent


def flood(conn: socket.socket) -> int:
    """200 announcing a 4 GB body, sent as fast as the client reads, until it hangs up (at most 4 GB)."""
    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 4000000000\r\n\r\n")
    chunk, sent = b"\0" * 1_048_576, 0
    conn.settimeout(10)
    while sent < 4_000_000_000:
        try:
            conn.sendall(chunk)
        except OSError:  # closed by the client (or stalled 10 s)
            break
        sent += len(chunk)
    return sent


@pytest.fixture
def dripper() -> Iterator[Callable[[Callable[[socket.socket], int]], Dripper]]:
    made: list[Dripper] = []

    def make(body: Callable[[socket.socket], int]) -> Dripper:
        made.append(Dripper(body))
        return made[-1]

    yield make
    for server in made:
        server.close()


@pytest.mark.e2e
def test_an_attempt_ends_at_the_webhook_timeout_however_the_receiver_drips(
    dripper: Callable[..., Dripper], daemon_factory: Callable[..., DaemonProcess]
) -> None:
    server = dripper(drip)
    daemon = daemon_factory(one_hook(server.url, timeout="2s")).start()
    (daemon.watched / "one.txt").write_text(GOOD.format(i=1), encoding="utf-8")
    wait_until(lambda: len(server.connections) >= 1, 20, "the dripping receiver to see the client hang up")
    start, end, sent = server.connections[0]
    assert end - start < 2.0 + 1.5, f"the attempt lasted {end - start:.1f} s with a 2 s timeout ({sent} bytes)"
    wait_until(lambda: "timed out after 2s" in daemon.log.read_text(), 10, "the timeout to be logged")
    assert daemon.stop() == 0


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.mark.e2e
def test_a_huge_response_body_is_not_read(
    dripper: Callable[..., Dripper], daemon_factory: Callable[..., DaemonProcess]
) -> None:
    server = dripper(flood)
    daemon = daemon_factory(one_hook(server.url, timeout="30s")).start()
    (daemon.watched / "one.txt").write_text(GOOD.format(i=1), encoding="utf-8")
    daemon.wait_settled(["one.txt"], timeout=30)  # delivered: the status decides, the body is not needed
    assert daemon.proc is not None
    peak = peak_rss_kib(daemon.proc.pid)
    wait_until(lambda: len(server.connections) >= 1, 10, "the receiver to see the client hang up")
    _, _, sent = server.connections[0]
    print(f"body sent before the client hung up: {sent / 1e6:.0f} MB; daemon peak RSS {peak / 1024:.0f} MiB")
    assert sent < 64_000_000  # what the socket buffers take; the daemon read at most 64 KB of it
    assert peak < 200 * 1024  # issue 13: under 200 MB (it was 2.1 GB for a 1 GB body)
    assert daemon.stop() == 0


@pytest.mark.e2e
def test_a_slow_receiver_never_gets_an_id_twice_under_a_short_lease(
    receiver: Receiver, daemon_factory: Callable[..., DaemonProcess]
) -> None:
    def slow(_request: Received) -> tuple[int, dict[str, str]]:
        time.sleep(0.9)  # slow, with room under the webhook's 3 s timeout for a loaded machine
        return 200, {}

    receiver.respond = slow
    settings = {"delivery": {"lease": "12s", "concurrency": 2}}  # the shortest lease a 3 s timeout allows
    daemon = daemon_factory(one_hook(receiver.url, timeout="3s"), settings=settings).start()
    names = [f"a-{i}.txt" for i in range(12)]
    for i, name in enumerate(names):
        (daemon.watched / name).write_text(GOOD.format(i=i), encoding="utf-8")
    daemon.wait_settled(names, timeout=60)
    ids = Counter(request.headers["webhook-id"] for request in receiver.received)
    assert len(ids) == len(names)
    assert max(ids.values()) == 1, ids.most_common(3)
    assert "delivery_failed" not in daemon.log.read_text()
    assert daemon.stop() == 0


@pytest.mark.e2e
def test_a_lease_too_short_for_a_timeout_is_refused_at_start_and_on_reload(
    receiver: Receiver, daemon_factory: Callable[..., DaemonProcess]
) -> None:
    short = daemon_factory(one_hook(receiver.url, timeout="15s"), name="short", settings={"delivery": {"lease": "25s"}})
    short.start(ready=False)
    assert short.proc is not None
    assert short.proc.wait(30) == 1
    expected = (
        "webhook 'hook': timeout 15s needs delivery.lease of at least 30s (1.5 x (timeout + 5s): a lease is renewed"
        " every third of it), but it is 25s"
    )
    assert expected in " ".join(short.log.read_text().split())  # one line, wrapped by the terminal's width
    validate = subprocess.run(
        [sys.executable, "-m", "monitor", "validate", "--config", str(short.home / "monitor.yaml")],
        cwd=short.home,
        env=this_checkout(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert validate.returncode == 1
    assert expected in " ".join(validate.stderr.split())
    daemon = daemon_factory(one_hook(receiver.url, timeout="5s"), settings={"delivery": {"lease": "25s"}}).start()
    daemon.write_rules(one_hook(receiver.url, timeout="15s"))
    wait_until(lambda: "rules_reload_failed" in daemon.log.read_text(), 20, "the reload to be refused")
    assert expected in daemon.log.read_text()
    assert daemon.stop() == 0
