"""Replicas on one shared folder split the reading (issue 14): each file is read and matched by one replica,
which claims it in the `reading` table first; a claim whose replica died is taken over after its lease.

Real daemon processes on one PostgreSQL (`export MONITOR_TEST_PG_URL="$(scripts/postgres.sh)"`), real files,
a real receiver on 127.0.0.1. Which replica reads a file is not decided; that exactly one does is.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import text

from benchmarks.kit.harness import reads
from monitor.cli.receiver import Receiver
from monitor.store import Store
from tests.conftest import wait_until
from tests.helpers import NO_PG, PG_URL, by_id, write_articles
from tests.test_postgres import matches, rules, settled

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not PG_URL, reason=NO_PG)]

BURST = 200


def replica_settings(url: str, folder: Path, observer: str, **watch: str) -> dict[str, dict[str, object]]:
    return {
        "watch": {"folders": [str(folder)], "observer": observer, "settle": "0.3s", **watch},
        "state": {"url": url},
        "delivery": {"concurrency": 4, "lease": "20s", "shutdown_grace": "5s"},
    }


@pytest.mark.slow
def test_each_file_of_a_burst_is_read_by_one_replica(
    receiver: Receiver, daemon_factory, pg_url: str, tmp_path: Path
) -> None:
    """Three replicas watch one folder, each with the native observer, so that all of them see each file
    close at the same moment (the worst case: polling replicas rarely poll at once). Before issue 14 every
    replica read every file it saw (2.3 reads a file on average; here most files were read three times); now
    each file is read once, in all replicas together, and each matching article alerted once."""
    folder = tmp_path / "shared"
    folder.mkdir()
    settings = replica_settings(pg_url, folder, "native")
    replicas = [daemon_factory(rules(receiver.url), name=f"replica{n}", settings=settings) for n in range(3)]
    for replica in replicas:
        replica.state_url = pg_url
        replica.start()
    names = write_articles(folder, range(BURST), matches)
    expected = {name for i, name in enumerate(names) if matches(i)}
    wait_until_settled(pg_url, len(names))
    for replica in replicas:
        assert replica.stop() == 0
    per_replica = [reads(replica.log) for replica in replicas]
    total = sum(per_replica, Counter())
    print(f"files read per replica {[sum(c.values()) for c in per_replica]}, {len(total)} files")
    assert set(total) == set(names)
    twice = {name: count for name, count in total.items() if count != 1}
    assert not twice, f"{len(twice)} files read by more than one replica: {sorted(twice.items())[:10]}"
    unique = by_id(receiver.received)
    assert {Path(alert["data"]["article"]["path"]).name for alert in unique.values()} == expected
    assert len(receiver.received) == len(unique)  # each alert sent once
    assert claims_left(pg_url) == 0  # every claim deleted with its file's ledger row


def wait_until_settled(url: str, names: int, timeout: float = 60) -> None:
    wait_until(lambda: settled(url, names), timeout, "every file read and every delivery done")


def claims_left(url: str) -> int:
    store = Store(url)
    try:
        with store.engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM reading")).scalar_one())
    finally:
        store.close()


def test_claims_of_a_dead_replica_are_taken_over(receiver: Receiver, daemon_factory, pg_url: str, tmp_path) -> None:
    """A replica that died mid-read leaves its claims. One whose lease has run out is taken over at once; one
    still within its lease is left alone until the lease runs out, then the file is read, never lost."""
    folder = tmp_path / "shared"
    folder.mkdir()
    replica = daemon_factory(rules(receiver.url), settings=replica_settings(pg_url, folder, "native", read_lease="2s"))
    replica.state_url = pg_url
    replica.start()  # creates the schema
    names = [f"article-{i:04d}.txt" for i in (0, 7)]  # both match
    store = Store(pg_url)
    now = time.time()
    held_until = now + 4.0
    claim = text(
        "INSERT INTO reading (path, size, mtime_ns, owner, claimed_at, lease_until)"
        " VALUES (:path, 1, 1, 'gone-host:4242', :claimed_at, :lease_until)"
    )
    with store.begin() as conn:  # claims as a replica killed mid-read leaves them
        conn.execute(claim, {"path": str(folder / names[0]), "claimed_at": now - 120, "lease_until": now - 60})
        conn.execute(claim, {"path": str(folder / names[1]), "claimed_at": now - 120, "lease_until": held_until})
    store.close()
    write_articles(folder, range(8), matches)
    assert receiver.wait_for(lambda got: len(by_id(got)) >= 2, timeout=30), "an alert of a claimed file is missing"
    wait_until_settled(pg_url, 8, timeout=30)
    assert replica.stop() == 0
    arrived = {Path(r.json()["data"]["article"]["path"]).name: r.at for r in receiver.received}
    assert set(arrived) == set(names) and len(receiver.received) == 2
    assert arrived[names[1]] >= held_until  # read only once the dead replica's lease had run out
    assert reads(replica.log) == Counter({f"article-{i:04d}.txt": 1 for i in range(8)})
    assert claims_left(pg_url) == 0


def test_a_claim_is_refused_while_another_holds_it_and_taken_over_after(pg_url: str) -> None:
    """`Store.claim_reading` on its own: a live claim of another process is refused, this process's own is
    renewed, an expired one is taken over; the ledger is looked up after the claim."""
    mine, other = Store(pg_url), Store(pg_url)
    mine.create()
    other.owner = "other-host:1"
    try:
        assert other.claim_reading([("a", 1, 1), ("b", 1, 1)], lease=60).paths == {"a", "b"}
        assert other.claim_reading([("c", 1, 1)], lease=-1).paths == {"c"}  # its lease already ran out
        with mine.transaction() as tx:
            tx.record_file("d", 5, 7, outcome="accepted")
        claim = mine.claim_reading([("a", 1, 1), ("c", 1, 1), ("d", 5, 7), ("e", 2, 2)], lease=60)
        assert claim.paths == {"c", "d", "e"}  # not "a": another process reads it
        assert set(claim.known) == {"d"} and claim.known["d"].mtime_ns == 7
        assert mine.claim_reading([("e", 2, 3)], lease=60).paths == {"e"}  # its own claim, a new version
        with mine.transaction() as tx:
            tx.release_reading(["a", "c", "d", "e"])  # "a" is not its own: kept
        with mine.engine.connect() as conn:
            left = dict(conn.execute(text("SELECT path, owner FROM reading ORDER BY path")).all())
        assert left == {"a": "other-host:1", "b": "other-host:1"}
    finally:
        mine.close()
        other.close()
