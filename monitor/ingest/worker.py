"""Large articles read and matched in a process of their own: `MatchWorker.read(ruleset, job) -> step`.

Matching is linear, but some of its steps are single C calls over the whole text (folding, a regex pass, a
translate): Python's global lock is held for each of them, up to hundreds of milliseconds on a 10 MB
article, and every other thread of the daemon waits, the event loop (`/healthz`, deliveries) included. A
file of at least `limits.large_article_bytes` is therefore read and matched in a worker process, one at a
time (the large lane's thread waits for it without holding the lock); only the result comes back: the
article without its text, the rules that matched, and the alerts' payloads, already within their caps.

The worker loads the rules file itself and checks that it has the very rules of the daemon (their digest);
when it cannot (the file changed since the daemon loaded it), the file is matched in the daemon as before.
A worker that dies or is stuck past the budget is replaced; its file is matched in the daemon.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from monitor.config.rules import RuleSet
    from monitor.ingest.pipeline import Job, _Step

log = structlog.get_logger(__name__)
_RULES: dict[str, RuleSet] = {}  # in the worker: the rules it matches with, by digest (one at a time)


class StaleRules(Exception):
    """The worker could not load the rules the daemon has: the file changed since."""


class MatchWorker:
    """One worker process, started on the first large file; `close` ends it."""

    def __init__(self, large_bytes: int) -> None:
        self.large_bytes = large_bytes
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False

    def takes(self, path: str) -> bool:
        """Whether a file goes to the worker: a large one."""
        try:
            return os.stat(path, follow_symlinks=False).st_size >= self.large_bytes
        except OSError:
            return False

    def read(self, ruleset: RuleSet, job: Job) -> _Step | None:
        """The file's step as `pipeline.read_step` makes it, worked out in the worker; None when the worker
        cannot (other rules, a dead worker): the caller reads it itself."""
        if not ruleset.digest:
            return None
        if self._closed:
            return _stopping(job)
        if self._pool is None:
            # spawn, not fork: the daemon has threads (a fork copies their locks in whatever state)
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        timeout = job.limits.match_budget.total_seconds() * 2 + 60
        try:
            return self._pool.submit(_read_in_worker, ruleset.path, ruleset.digest, job).result(timeout)
        except StaleRules:
            return None
        except (BrokenProcessPool, TimeoutError) as exc:
            if self._closed:  # the daemon stopped it: the file stays unseen, read at the next start
                return _stopping(job)
            log.error("match_worker_failed", path=job.path, error=repr(exc), fallback="in the daemon")
            self._end()
            return None

    def close(self) -> None:
        """At shutdown: end the worker, and a match it was running; no file is read after this."""
        self._closed = True
        self._end()

    def _end(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        for process in list(getattr(pool, "_processes", {}).values()):  # a stuck match ends with its process
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)


def _stopping(job: Job) -> _Step:
    from monitor.errors import ArticleError
    from monitor.ingest.pipeline import _Step

    return _Step(
        job.path, (0, 0), error=ArticleError(job.path, "the daemon is stopping; read at its next start", "transient")
    )


def _read_in_worker(rules_path: str, digest: str, job: Job) -> _Step:
    """In the worker: `read_step` with the daemon's rules, the result without the article's text."""
    from monitor.config.rules import load_rules
    from monitor.ingest.pipeline import read_step

    ruleset = _RULES.get(digest)
    if ruleset is None:
        ruleset = load_rules(rules_path)  # templates unchecked: the daemon checked this file (its digest)
        if ruleset.digest != digest:
            raise StaleRules(rules_path)
        _RULES.clear()
        _RULES[digest] = ruleset
    step = read_step(ruleset, job)
    return _portable(step)


def _portable(step: _Step) -> _Step:
    """The step as the daemon needs it: no text (10 MB back for nothing), matches by rule name only."""
    from monitor.matching.engine import Match

    article = replace(step.article, text="") if step.article is not None else None
    prepared = replace(step.prepared, article=article) if step.prepared is not None and article else step.prepared
    step.article, step.prepared = article, prepared
    step.matches = [Match(match.rule) for match in step.matches]
    return step
