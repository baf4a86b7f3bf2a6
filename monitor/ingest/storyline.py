"""The daemon's stories: `Storyline.assign(tx, items, now) -> {content hash: StoryRef}` within the batch
transaction, over an in-memory `StoryIndex` kept in step with the store.

The signatures are computed before the transaction (`read_step`, in the worker process too); the
assignment happens in it, for the articles claimed now: under the store's story lock (PostgreSQL: an
advisory lock, so replicas take turns and never start two stories for one event at the same moment), the
index first loads the rows other processes (and this one's earlier batches) stored since it last looked,
drops those older than the window, then decides each article's story (its file's latest version first, by
path, from the store) and stores the assignments. The batch's own articles are decided against a batch
index beside the shared one and enter the shared one only by that load, after their transaction committed:
a batch that rolls back leaves nothing behind.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC
from typing import TYPE_CHECKING

from monitor.matching.stories import THRESHOLD, WINDOW, StoryEntry, StoryIndex, StoryRef
from monitor.store import StoryRow

if TYPE_CHECKING:
    from monitor.ingest.articles import Article
    from monitor.notify.alerts import Prepared
    from monitor.store import Store, Transaction


class Storyline:
    """A process's story index and its assignment of stories in batch transactions."""

    def __init__(self, window: float = WINDOW, threshold: float = THRESHOLD) -> None:
        self.window = window
        self.threshold = threshold
        self.index = StoryIndex(window, threshold)
        self._lock = threading.Lock()  # one batch at a time decides (lanes run batches in their threads)

    def rebuild(self, store: Store, now: float | None = None) -> int:
        """Load the store's rows of the window (at start); how many the index holds."""
        now = time.time() if now is None else now
        with self._lock:
            self.index.load(entry_of(row) for row in store.story_rows(now - self.window, self.index.seq))
            self.index.evict(now)
            return len(self.index)

    def assign(self, tx: Transaction, items: Sequence[Prepared], now: float) -> dict[str, StoryRef]:
        """The stories of articles claimed now in `tx` (those without a signature are left out), stored."""
        items = [item for item in items if item.signature is not None]
        if not items:
            return {}
        with self._lock:
            tx.lock_stories()
            self.index.load(entry_of(row) for row in tx.story_rows_since(self.index.seq, now - self.window))
            self.index.evict(now)
            latest = {path: entry_of(row) for path, row in tx.latest_versions(i.article.path for i in items).items()}
            batch = StoryIndex(self.window, self.threshold)
            refs: dict[str, StoryRef] = {}
            rows: list[StoryRow] = []
            for item in items:
                entry = new_entry(item.article, item.signature or b"", _rules(item), now)
                ref = self.index.decide(entry, latest.get(entry.path), batch)
                placed = replace(entry, story=ref.story, version=ref.version)
                batch.add(placed)
                latest[entry.path] = placed
                refs[entry.content_hash] = ref
                rows.append(row_of(placed))
            tx.record_stories(rows)
        return refs


def _rules(item: Prepared) -> tuple[str, ...]:
    return tuple(sorted({draft.rule for draft in item.drafts}))


def new_entry(article: Article, signature: bytes, rules: Iterable[str], now: float) -> StoryEntry:
    """An article's entry before its story is decided."""
    latest = article.date.latest()
    at = (latest if latest.tzinfo else latest.replace(tzinfo=UTC)).timestamp()
    return StoryEntry(article.content_hash, "", article.path, 0, at, now, signature, tuple(rules))


def entry_of(row: StoryRow) -> StoryEntry:
    return StoryEntry(*row)


def row_of(entry: StoryEntry) -> StoryRow:
    return StoryRow(
        entry.content_hash,
        entry.story,
        entry.path,
        entry.version,
        entry.article_at,
        entry.created_at,
        entry.signature,
        entry.rules,
        entry.seq,
    )
