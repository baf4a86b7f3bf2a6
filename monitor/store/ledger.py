"""The file ledger (`files`), the article claims (`articles`) and, on PostgreSQL, the claims of files being
read (`reading`): a file version is read once, an article's content is claimed once."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import bindparam, delete, select

from monitor.store.engine import Database, Writes
from monitor.store.schema import articles, files, reading
from monitor.store.statements import cached, insert_returning, upsert, upsert_many

_SEEN = select(files.c.path, files.c.size, files.c.mtime_ns, files.c.outcome, files.c.seen_at).where(
    files.c.path.in_(bindparam("paths", expanding=True))
)
_RELEASE_READING = delete(reading).where(reading.c.path == bindparam("key"), reading.c.owner == bindparam("owner"))
_CLAIMED_PATH = select(articles.c.path).where(articles.c.content_hash == bindparam("content_hash"))


class Known(NamedTuple):
    """A file as the ledger last saw it: its size and mtime, and for a rejection when it was rejected."""

    size: int
    mtime_ns: int
    rejected_at: float | None = None

    def unchanged(self, info: os.stat_result) -> bool:
        """Whether a file with this stat needs no new look: the same size and mtime, and for a rejection no
        change of its mode, owner or links since (its ctime): a file that was unreadable (mode 000) and is
        then made readable is looked at again."""
        if (self.size, self.mtime_ns) != (info.st_size, info.st_mtime_ns):
            return False
        # `rejected_at` is read from the clock file times come from (`file_clock`), so a file written just
        # before its rejection is not looked at again, and a change after it is.
        return self.rejected_at is None or info.st_ctime <= self.rejected_at


class Claimed(NamedTuple):
    """The outcome of `Store.claim_reading`: the files this process may read, and what the ledger holds for
    them (looked up after the claim)."""

    paths: frozenset[str]
    known: dict[str, Known]


class LedgerEntry(NamedTuple):
    """A ledger row to write: a file version and what became of it (`accepted`, `duplicate`, `rejected`)."""

    path: str
    size: int
    mtime_ns: int
    outcome: str
    content_hash: str | None = None
    code: str | None = None
    reason: str | None = None


class ArticleClaim(NamedTuple):
    """An article's claim by its content (a row of `articles`)."""

    content_hash: str
    path: str
    article_date: str
    size: int
    matches: int
    claimed_at: float


class Recorded(NamedTuple):
    """A ledger row as `Store.recorded_files` lists it."""

    path: str
    outcome: str
    code: str | None
    reason: str | None


def _known(size: int, mtime_ns: int, outcome: str, seen_at: float) -> Known:
    return Known(size, mtime_ns, seen_at if outcome == "rejected" else None)


class Ledger(Database):
    """The store's reads of the ledger, and the claims of files to read."""

    def seen_many(self, paths: Sequence[str]) -> dict[str, Known]:
        """What the ledger holds for each of the paths it knows."""
        with self.engine.connect() as conn:
            return {row[0]: _known(*row[1:]) for row in conn.execute(_SEEN, {"paths": list(paths)})}

    def recorded_files(self) -> list[Recorded]:
        """Every ledger row (path, outcome, code, reason), by path: for tests and tools, not periodic work."""
        query = select(files.c.path, files.c.outcome, files.c.code, files.c.reason).order_by(files.c.path)
        with self.engine.connect() as conn:
            return [Recorded(*row) for row in conn.execute(query)]

    def claim_reading(self, versions: Sequence[tuple[str, int, int]], lease: float) -> Claimed:
        """PostgreSQL: claim file versions, each (ledger key, size, mtime_ns), for this process to read, for
        `lease` seconds, in one short transaction, in key order (two replicas claiming the same files lock
        them in one order). A file another process claimed is left to it unless that claim's lease ran out
        (the process died mid-read) or it is this process's own. What the ledger holds for the files claimed
        is looked up after the claims, so that a file another replica recorded (and released) in the
        meantime is known as done and not read again."""
        now = time.time()
        rows = [
            {"path": path, "size": size, "mtime_ns": mtime_ns, "owner": self.owner, "claimed_at": now}
            | {"lease_until": now + lease}
            for path, size, mtime_ns in sorted(set(versions))
        ]
        if not rows:
            return Claimed(frozenset(), {})
        with self.begin() as conn:
            claimed = sorted(set(conn.execute(cached(("claim",), _claim_statement), rows).scalars()))
            known = {row[0]: _known(*row[1:]) for row in conn.execute(_SEEN, {"paths": claimed})} if claimed else {}
        return Claimed(frozenset(claimed), known)


def _claim_statement() -> Any:
    """Insert claims; a row that exists is taken over only if its lease ran out or it is this owner's own."""
    from sqlalchemy.dialects import postgresql

    statement = postgresql.insert(reading)
    new = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=["path"],
        set_={name: new[name] for name in ("size", "mtime_ns", "owner", "claimed_at", "lease_until")},
        where=(reading.c.lease_until < new.claimed_at) | (reading.c.owner == new.owner),
    ).returning(reading.c.path)


class LedgerWrites(Writes):
    """A write transaction's statements on the ledger and the article claims."""

    def record_file(self, path: str, size: int, mtime_ns: int, **values: Any) -> None:
        """Write the ledger row of a file: `outcome`, and `content_hash`, `code`, `reason` as they apply."""
        upsert(self._conn, files, file_row(path, size, mtime_ns, **values), key="path")

    def record_files(self, entries: Sequence[LedgerEntry]) -> None:
        """Write ledger rows, in one statement, in key order."""
        rows = [file_row(**entry._asdict()) for entry in sorted(entries, key=lambda entry: entry.path)]
        upsert_many(self._conn, files, rows, key="path")

    def claim_articles(self, claims: Sequence[ArticleClaim]) -> set[str]:
        """Claim articles by content, in key order (replicas lock rows in one order): the content hashes
        claimed now (a content claimed before, by this or another process, is left out)."""
        rows = [claim._asdict() for claim in sorted(claims, key=lambda claim: claim.content_hash)]
        return set(insert_returning(self._conn, articles, rows, articles.c.content_hash))

    def claimed_path(self, content_hash: str) -> str | None:
        """The file whose content claimed this article (None: not claimed)."""
        return self._conn.execute(_CLAIMED_PATH, {"content_hash": content_hash}).scalar()

    def release_reading(self, paths: Iterable[str]) -> None:
        """Delete this process's claims of these files (within the transaction that writes their ledger
        rows), one row at a time in key order, the order claims lock them in."""
        rows = [{"key": path, "owner": self._owner} for path in sorted(set(paths))]
        if rows:
            self._conn.execute(_RELEASE_READING, rows)


def file_clock() -> float:
    """Now, by the clock the kernel stamps file times with (Linux: the coarse real-time clock, a few
    milliseconds behind `time.time`, which would make a file written just before look changed after)."""
    coarse = getattr(time, "CLOCK_REALTIME_COARSE", None)
    return time.clock_gettime(coarse) if coarse is not None else time.time()


def file_row(path: str, size: int, mtime_ns: int, **values: Any) -> dict[str, Any]:
    """A ledger row with every column, so that rows of different outcomes share one statement."""
    return {
        "path": path,
        "size": size,
        "mtime_ns": mtime_ns,
        "seen_at": file_clock(),
        "content_hash": values.get("content_hash"),
        "outcome": values["outcome"],
        "code": values.get("code"),
        "reason": values.get("reason"),
    }
