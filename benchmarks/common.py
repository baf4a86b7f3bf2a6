"""Shared pieces of the benchmark scripts: the real daemon with a real receiver, what arrived there against
what was expected, the command line and scratch space. The article and rule generator and the daemon
harness are `benchmarks.kit`'s (the tests use them too); the result table is `report`'s, the py-spy
profiles `profiled`'s.

Nothing here is timed by itself; each benchmark script times what it measures.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from profiled import Daemon, summarize_profile
from report import Row, command_line, percentile, print_table
from source import PYTHON, ROOT, source_root

from benchmarks.kit.corpus import Corpus, plan, write_corpus
from benchmarks.kit.harness import holds_within as wait_until
from benchmarks.kit.rules import SECRET, generated_rules_text, shipped_rules_text
from monitor.cli.receiver import Receiver

__all__ = [
    "PYTHON",
    "ROOT",
    "SECRET",
    "Corpus",
    "Daemon",
    "Row",
    "command_line",
    "generated_rules_text",
    "percentile",
    "plan",
    "print_table",
    "shipped_rules_text",
    "source_root",
    "summarize_profile",
    "wait_until",
    "write_corpus",
]

HOOK_PATH = "/hooks/newsroom"


@contextlib.contextmanager
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True, slots=True)
class Arrival:
    webhook_id: str
    rule: str
    name: str  # article file name
    at: float


def arrivals(server: Receiver, path: str = HOOK_PATH) -> list[Arrival]:
    out = []
    for request in list(server.received):
        if request.path != path:
            continue
        data = request.json()["data"]
        out.append(
            Arrival(request.headers.get("webhook-id", ""), data["rule"], Path(data["article"]["path"]).name, request.at)
        )
    return out


def tally(expected: dict[str, str | None], got: list[Arrival]) -> tuple[int, int]:
    """(missing, duplicate) alerts: expected (file, rule) pairs not received; webhook-ids received twice."""
    wanted = {(name, rule) for name, rule in expected.items() if rule is not None}
    seen = {(a.name, a.rule) for a in got}
    ids = collections.Counter(a.webhook_id for a in got)
    pairs = collections.Counter((a.name, a.rule) for a in got)
    duplicates = sum(n - 1 for n in ids.values() if n > 1) + sum(n - 1 for n in pairs.values() if n > 1)
    unexpected = len(seen - wanted)
    return len(wanted - seen) + unexpected, duplicates


# --- command line and scratch space -------------------------------------------------------------------
def arguments(description: str, extra: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a smaller run for smoke use (about a minute)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (printed) for inspection")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record py-spy profiles of the daemon into DIR (raw collapsed stacks + a summary)",
    )
    if extra is not None:
        extra(parser)
    return parser.parse_args()


@contextlib.contextmanager
def scratch(name: str, keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"news-monitor-bench-{name}-"))
    try:
        yield path
    finally:
        if keep:
            print(f"scratch folder kept: {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
