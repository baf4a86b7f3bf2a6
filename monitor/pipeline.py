"""One file through read -> match -> claim and queue: `Pipeline.process(path) -> Processed`.

Blocking; the daemon runs it in a worker thread. Every failure to read a file becomes a recorded
rejection with its reason code; nothing raised here stops the daemon.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import structlog

from monitor.alerts import queue_article
from monitor.articles import read_article
from monitor.errors import ArticleError
from monitor.rules import RuleSet
from monitor.store import Store

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Processed:
    path: str
    outcome: str  # accepted | duplicate | rejected | seen | skipped
    alerts: int = 0
    deliveries: int = 0
    reason: str | None = None
    code: str | None = None  # the rejection's reason code
    rules: tuple[str, ...] = ()  # the rules that matched
    mtime: float | None = None  # the file's last write, for the file-to-delivery latency


def ledger_key(path: str) -> str:
    """The path as stored and sent: a name that is not valid UTF-8 keeps its bytes as \\x escapes."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path).decode("utf-8", "backslashreplace")
    return path


class Pipeline:
    def __init__(self, store: Store, rules: Callable[[], RuleSet], max_bytes: int) -> None:
        self.store = store
        self.rules = rules  # the rules in force now: reloads swap what this returns
        self.max_bytes = max_bytes

    def process(self, path: Path | str, send: bool = True, since: date | None = None) -> Processed:
        """Read, match, claim and queue one file; `send=False` records alerts without delivering them;
        articles dated before `since` are skipped (and not recorded, so a later run can take them)."""
        real = str(path)
        path = ledger_key(real)
        try:
            info = os.stat(real, follow_symlinks=False)
        except FileNotFoundError:
            return self._reject(path, (0, 0), ArticleError(path, "file vanished before it was read", "vanished"))
        except OSError as exc:
            return self._reject(path, (0, 0), ArticleError(path, f"cannot stat: {exc.strerror}", "unreadable"))
        stat = (info.st_size, info.st_mtime_ns)
        if self.store.seen(path, *stat):
            return Processed(path, "seen")
        try:
            article = replace(read_article(real, self.max_bytes), path=path)
        except ArticleError as exc:
            return self._reject(path, stat, exc)
        if since is not None and article.date.latest().date() < since:
            return Processed(path, "skipped")
        ruleset = self.rules()
        matches = ruleset.engine.match(article)
        queued = queue_article(self.store, ruleset, article, matches, stat, send=send)
        outcome = "accepted" if queued.claimed else "duplicate"
        log.info(
            "article_read", path=path, outcome=outcome, date=article.date.isoformat(), matches=[m.rule for m in matches]
        )
        rules = tuple(m.rule for m in matches) if queued.claimed else ()
        return Processed(path, outcome, queued.alerts, queued.deliveries, rules=rules, mtime=info.st_mtime)

    def _reject(self, path: str, stat: tuple[int, int], error: ArticleError) -> Processed:
        with self.store.begin() as conn:
            self.store.record_file(conn, path, *stat, outcome="rejected", code=error.code, reason=error.reason)
        log.warning("article_rejected", path=path, code=error.code, reason=error.reason)
        return Processed(path, "rejected", reason=error.reason, code=error.code)
