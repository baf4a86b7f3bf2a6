"""Files through read -> match -> claim and queue: `Pipeline.process_many(paths) -> [Processed]`.

Blocking; the daemon runs it in a worker thread. Every failure to read a file becomes a recorded
rejection with its reason code, except a transient one (no file descriptors or memory, an I/O error): that
file is `failed`, not recorded, and tried again. A file below one of `roots` (the watched folders) is read
beneath that folder, through no symbolic link. A batch is read, matched and its alert payloads built first (the costly
part, outside any lock), then written in one transaction (ledger rows, claims, alerts, outbox rows): one
commit for many articles, and still no article is half-recorded.

On PostgreSQL several replicas may see the same files (one shared folder): before reading, a batch claims
the versions it does not find in the ledger (`Store.claim_reading`, a row per file with a lease) and reads
only those it won; the others are `elsewhere`, found again by a reconcile scan after the lease. The claims
are deleted in the transaction that writes the batch, so the ledger row is what says a file is done; a
replica that dies mid-read leaves claims that another replica takes over once their lease has run out.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Protocol

import structlog

from monitor.config.rules import RuleSet
from monitor.config.settings import LimitsSettings
from monitor.errors import ArticleError, MatchBudgetExceeded
from monitor.ingest.articles import Article, ArticleOutcome, read_article, unavailable
from monitor.ingest.storyline import Storyline
from monitor.matching.engine import Match
from monitor.matching.stories import signature
from monitor.notify.alerts import Prepared, Queued, prepare, queue_prepared
from monitor.notify.threads import QUIET, Followups
from monitor.store import Delivery, Known, Store, Transaction


class Offload(Protocol):
    """Where large files are read and matched instead of here (`monitor.ingest.worker.MatchWorker`, a process)."""

    def takes(self, path: str) -> bool: ...

    def read(self, ruleset: RuleSet, job: Job) -> _Step | None: ...


class Handoff(Protocol):
    """Where the deliveries a batch queues go at once (`monitor.notify.deliverer.Deliverer`): leased for it in
    the batch's transaction and handed over after the commit, instead of being looked for in the outbox."""

    def room(self) -> tuple[int, float]:
        """From the batch's thread: how many deliveries it takes now, and for how long to lease them (s)."""
        ...

    def hand_over(self, deliveries: list[Delivery], until: float, at: float, length: float, more: bool) -> None:
        """From the batch's thread, after the commit: deliveries leased until `until` (time.time) for `length`
        seconds from `at` (time.monotonic); `more`: the batch queued others, to be looked for in the outbox."""
        ...


log = structlog.get_logger(__name__)
READ_LEASE = 60.0  # seconds a replica's claim to read a file holds (`watch.read_lease`)


@dataclass(frozen=True, slots=True)
class Processed:
    path: str
    outcome: ArticleOutcome
    alerts: int = 0
    deliveries: int = 0
    reason: str | None = None
    code: str | None = None  # the rejection's reason code
    rules: tuple[str, ...] = ()  # the rules that matched
    mtime: float | None = None  # the file's last write, for the file-to-delivery latency


def ledger_key(path: str) -> str:
    """The path as stored and sent: a name that is not valid UTF-8 keeps its bytes as \\x escapes, and a
    backslash of the name is written twice, so that two names never share a key (the bytes ff fe and the
    text `\\xff\\xfe` did)."""
    if "\\" not in path:
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            pass
        else:
            return path
    return os.fsencode(path.replace("\\", "\\\\")).decode("utf-8", "backslashreplace")


_KEY_PART = re.compile(r"\\\\|\\x[0-9a-f]{2}|\\|[^\\]+")


def ledger_path(key: str) -> str | None:
    """The file name a ledger key stands for (`ledger_key`'s inverse); None for a key it does not make."""
    if "\\" not in key:
        return key
    name = bytearray()
    for part in _KEY_PART.findall(key):
        if part == "\\\\":
            name += b"\\"
        elif part.startswith("\\x"):
            name.append(int(part[2:], 16))
        elif part == "\\" or any(0xD800 <= ord(char) <= 0xDFFF for char in part):  # not made by `ledger_key`
            return None
        else:
            name += part.encode()
    return os.fsdecode(bytes(name))


class Pipeline:
    def __init__(
        self,
        store: Store,
        rules: Callable[[], RuleSet],
        max_bytes: int,
        limits: LimitsSettings | None = None,
        roots: Sequence[Path | str] = (),
        worker: Offload | None = None,
        read_lease: float = READ_LEASE,
        stories: Storyline | None = None,
        quiet: float = QUIET,
    ) -> None:
        self.store = store
        self.rules = rules  # the rules in force now: reloads swap what this returns
        self.max_bytes = max_bytes
        self.limits = limits or LimitsSettings()
        self.worker = worker  # large files are read and matched in its process
        self.read_lease = read_lease  # seconds a claim to read a file holds (PostgreSQL, `_claim`)
        self.stories = stories  # the story index: articles claimed get their story (None: stories are off)
        self.failing = False  # the store failed the last batch: log no traceback per file meanwhile
        self.abandoned = threading.Event()  # shutdown gave up waiting: batches still running write nothing
        self.handoff: Handoff | None = None  # the deliverer that takes a batch's deliveries (None: the outbox)
        # Longest first: a file is read beneath the innermost watched folder that holds it.
        self.roots = sorted((os.path.abspath(root) for root in roots), key=len, reverse=True)
        self.followups = Followups.of(self.roots, quiet)  # the story modes' outlets and quiet period

    def root_of(self, path: str) -> str | None:
        """The watched folder a path is in (None: not in one, read as it is, e.g. by `check`)."""
        absolute = os.path.abspath(path)
        return next((root for root in self.roots if absolute.startswith(root + os.sep)), None)

    def process(self, path: Path | str, send: bool = True, since: date | None = None) -> Processed:
        """Read, match, claim and queue one file; `send=False` records alerts without delivering them;
        articles dated before `since` are skipped (and not recorded, so a later run can take them)."""
        return self._batch([str(path)], send, since)[0]

    def process_many(
        self, paths: Sequence[Path | str], send: bool = True, since: date | None = None
    ) -> list[Processed]:
        """`process` for several files with one ledger lookup and one transaction for all of them. If the
        transaction fails, each file is tried alone, so one file the store refuses cannot hold back the
        others; a file that fails alone is `failed` and stays unseen (the next reconcile tries it again)."""
        batch = [str(path) for path in paths]
        try:
            return self._written(batch, send, since)
        except Exception:
            if len(batch) == 1:
                return [self._failed(batch[0])]
        results = []
        for path in batch:
            try:
                results.extend(self._written([path], send, since))
            except Exception:
                results.append(self._failed(path))
        return results

    def _written(self, paths: list[str], send: bool, since: date | None) -> list[Processed]:
        """`_batch`, and the store is not failing once it took one (the whole batch, or a file of it alone):
        the daemon's store check may then say it recovered."""
        results = self._batch(paths, send, since)
        self.failing = False
        return results

    def _batch(self, paths: list[str], send: bool, since: date | None) -> list[Processed]:
        ruleset = self.rules()
        paths = list(dict.fromkeys(paths))  # a path twice in one batch is read once
        keys = [ledger_key(real) for real in paths]
        known = self.store.seen_many(keys)
        claimed: frozenset[str] = frozenset()
        elsewhere: list[Processed] = []
        if self.store.dialect == "postgresql":  # replicas: read only the files this one claimed
            paths, keys, claimed, elsewhere = self._claim(paths, keys, known)
        steps: list[_Step] = []
        for real, path in zip(paths, keys, strict=True):
            steps.append(self._read(real, path, known.get(path), ruleset, since))
        read = [step for step in steps if step.prepared is not None]
        items = [step.prepared for step in read if step.prepared is not None]
        if self.abandoned.is_set():  # the daemon stopped waiting for this batch: its files stay unseen
            return []
        rejected = [(step, step.error) for step in steps if step.error is not None and step.error.code != "transient"]
        if not (items or rejected or claimed):  # nothing to write (all seen, or read elsewhere)
            return [self._done(step) for step in steps] + elsewhere
        with self.store.transaction() as tx:
            for step, error in rejected:
                tx.record_file(
                    step.path, *step.stat, outcome=ArticleOutcome.rejected, code=error.code, reason=error.reason
                )
            for step, queued in zip(
                read,
                queue_prepared(tx, ruleset, items, send=send, stories=self.stories, followups=self.followups),
                strict=True,
            ):
                step.queued = queued
            tx.release_reading(claimed)
            handed = self._lease(tx) if send else None
        if handed is not None and self.handoff is not None:  # committed: the deliverer may start them
            self.handoff.hand_over(*handed)
        return [self._done(step) for step in steps] + elsewhere

    def _lease(self, tx: Transaction) -> tuple[list[Delivery], float, float, float, bool] | None:
        """In the batch's transaction: lease the deliveries it queued for the deliverer, as many as it takes
        now (`Handoff.room`); what to hand over after the commit (None: nothing was queued, or no handoff)."""
        if self.handoff is None or not tx.queued:
            return None
        room, lease = self.handoff.room()
        now, at = time.time(), time.monotonic()  # the lease runs from before it is written
        leased = tx.lease_queued(now, room, lease)
        return leased, now + lease, at, lease, len(leased) < len(tx.queued)

    def _claim(
        self, paths: list[str], keys: list[str], known: dict[str, Known]
    ) -> tuple[list[str], list[str], frozenset[str], list[Processed]]:
        """Claim the batch's files that need reading, each version (key, size, mtime) for `read_lease`
        seconds, in one short transaction; `known` is updated with the ledger as it is after the claim.
        Returns the paths and keys to read here, the keys claimed (released when the batch is written) and
        `elsewhere` results for the files another replica is reading: a reconcile scan looks at them again after
        the lease, when either that replica has recorded them or its claim can be taken over. A file that
        cannot be stat'ed or is unchanged needs no claim: reading it records only that."""
        wanted: dict[str, tuple[str, int, int]] = {}
        for real, key in zip(paths, keys, strict=True):
            try:
                info = os.stat(real, follow_symlinks=False)
            except OSError:
                continue
            seen = known.get(key)
            if seen is None or not seen.unchanged(info):
                wanted[key] = (key, info.st_size, info.st_mtime_ns)
        if not wanted:
            return paths, keys, frozenset(), []
        claim = self.store.claim_reading(list(wanted.values()), self.read_lease)
        known.update(claim.known)
        mine = [(real, key) for real, key in zip(paths, keys, strict=True) if key not in wanted or key in claim.paths]
        elsewhere = [Processed(key, ArticleOutcome.elsewhere) for key in wanted if key not in claim.paths]
        for result in elsewhere:
            log.debug("article_elsewhere", path=result.path)
        return [real for real, _ in mine], [key for _, key in mine], claim.paths, elsewhere

    def _read(self, real: str, path: str, known: Known | None, ruleset: RuleSet, since: date | None) -> _Step:
        """Stat, read and match one file and build its alerts' payloads, outside the transaction: in a worker
        process when one is given and the file is large (`monitor.ingest.worker`), else here."""
        job = Job(real, path, known, since, self.max_bytes, self.limits, self.root_of(real), self.stories is not None)
        if self.worker is not None and self.worker.takes(real):
            step = self.worker.read(ruleset, job)
            if step is not None:
                return step
        return read_step(ruleset, job)

    def _done(self, step: _Step) -> Processed:
        """The result of a step whose transaction committed, logged."""
        if step.error is not None and step.error.code == "transient":
            log.warning("article_deferred", path=step.path, reason=step.error.reason)
            return Processed(step.path, ArticleOutcome.failed, reason=step.error.reason, code=step.error.code)
        if step.error is not None:
            log.warning("article_rejected", path=step.path, code=step.error.code, reason=step.error.reason)
            return Processed(step.path, ArticleOutcome.rejected, reason=step.error.reason, code=step.error.code)
        if step.article is None or step.queued is None:
            return Processed(step.path, step.outcome)
        article, queued = step.article, step.queued
        outcome = queued.outcome
        matched = [m.rule for m in step.matches]
        log.info("article_read", path=step.path, outcome=outcome.value, date=article.date.isoformat(), matches=matched)
        rules = tuple(matched) if queued.claimed else ()
        return Processed(step.path, outcome, queued.alerts, queued.deliveries, rules=rules, mtime=step.mtime)

    def _failed(self, real: str) -> Processed:
        """A file the store failed to record: its traceback once, while the store keeps failing one line each."""
        if self.failing:
            log.warning("article_failed", path=real, reason="the state store is failing")
        else:
            self.failing = True  # until a batch is written again (or the daemon's store check says so)
            log.exception("article_failed", path=real)
        return Processed(
            ledger_key(real), ArticleOutcome.failed, reason="the state store failed; tried again by the next scan"
        )


@dataclass(frozen=True, slots=True)
class Job:
    """What reading one file needs besides the rules (plain data: it goes to the worker process too)."""

    real: str  # the path to open
    path: str  # the path as recorded (`ledger_key`)
    known: Known | None
    since: date | None
    max_bytes: int
    limits: LimitsSettings
    root: str | None
    stories: bool = False  # compute the article's story signature


def read_step(ruleset: RuleSet, job: Job) -> _Step:
    """Stat, read and match one file, build its alerts' payloads and its story signature (the costly part,
    outside any lock)."""
    real, path = job.real, job.path
    try:
        info = os.stat(real, follow_symlinks=False)
    except FileNotFoundError:
        return _Step(path, (0, 0), error=ArticleError(path, "file vanished before it was read", "vanished"))
    except OSError as exc:
        return _Step(path, (0, 0), error=unavailable(path, "stat", exc))
    stat = (info.st_size, info.st_mtime_ns)
    if job.known is not None and job.known.unchanged(info):
        return _Step(path, stat, outcome=ArticleOutcome.seen)
    try:
        article = replace(read_article(real, job.max_bytes, job.root), path=path)
    except ArticleError as exc:
        return _Step(path, stat, error=exc)
    if job.since is not None and article.date.latest().date() < job.since:
        return _Step(path, stat, outcome=ArticleOutcome.skipped)
    limits = job.limits
    try:
        matches = ruleset.engine.match(
            article, max_hits=limits.max_hits, hit_chars=limits.hit_chars, budget=limits.match_budget
        )
    except MatchBudgetExceeded as exc:
        return _Step(path, stat, error=exc.with_path(path))
    story = signature(article.text) if job.stories else None
    prepared = prepare(ruleset, article, matches, stat, limits, story)
    return _Step(path, stat, article=article, matches=matches, mtime=info.st_mtime, prepared=prepared)


@dataclass(slots=True)
class _Step:
    """One file on its way through a batch: read, matched and prepared before the transaction, queued in it."""

    path: str
    stat: tuple[int, int]
    outcome: ArticleOutcome = ArticleOutcome.pending
    error: ArticleError | None = None
    article: Article | None = None
    matches: list[Match] = field(default_factory=list)
    mtime: float | None = None
    prepared: Prepared | None = None
    queued: Queued | None = None
