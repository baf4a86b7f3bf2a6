"""Helpers that several test modules share (fixtures are in conftest.py): the `news-monitor` command on a
settings file, a one-rule rules dict, numbered articles, alerts by webhook-id, and a throwaway PostgreSQL
database on MONITOR_TEST_PG_URL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from benchmarks.kit import postgres
from benchmarks.kit.harness import checkout_env
from benchmarks.kit.rules import SECRET
from monitor.cli.receiver import Received
from monitor.store import Store

PG_URL = os.environ.get("MONITOR_TEST_PG_URL", "")
NO_PG = (
    "MONITOR_TEST_PG_URL is not set: these tests need a real PostgreSQL; start a throwaway one with "
    '`export MONITOR_TEST_PG_URL="$(scripts/postgres.sh)"` (scripts/test.sh does this when it may)'
)


@contextmanager
def fresh_database(label: str) -> Iterator[str]:
    """A new, empty database on the MONITOR_TEST_PG_URL server; its URL. Dropped on exit."""
    with postgres.fresh_database(PG_URL, label) as url:
        yield url


@contextmanager
def created_database(label: str) -> Iterator[str]:
    """A fresh database with the schema made (skips without MONITOR_TEST_PG_URL); its URL. Dropped on exit."""
    if not PG_URL:
        pytest.skip(NO_PG)
    with fresh_database(label) as url:
        store = Store(url)
        store.create()
        store.close()
        yield url


def cli(config: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`news-monitor ARGS --config CONFIG` in the config's folder, running this checkout's code."""
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args, "--config", str(config)],
        cwd=config.parent,
        env={**checkout_env(), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_rule(url: str, rule: dict[str, Any] | None = None, **webhook: Any) -> dict[str, Any]:
    """Rules of one signed webhook `hook` at `url` and one rule `hoogverraad` (`*hoogverraad*`)."""
    return {
        "version": 1,
        "webhooks": {"hook": {"url": url, "secret": SECRET, **webhook}},
        "rules": [{"name": "hoogverraad", "query": "*hoogverraad*", **(rule or {})}],
    }


def always(_number: int) -> bool:
    return True


def write_articles(
    folder: Path, numbers: Iterable[int], matching: Callable[[int], bool] = always, pause: float = 0.0
) -> list[str]:
    """Articles `article-NNNN.txt` of the given numbers; those `matching` says mention hoogverraad. With
    `pause`, a pause after every 100th: a steady arrival rate (the scenario rather than a wait)."""
    names = []
    for i in numbers:
        topic = "verdachte opgepakt wegens hoogverraad" if matching(i) else "het weer blijft wisselvallig"
        (folder / f"article-{i:04d}.txt").write_text(f"date 2022-01-{1 + i % 28:02d} Bericht {i}: {topic}.\n")
        names.append(f"article-{i:04d}.txt")
        if pause and i % 100 == 99:
            time.sleep(pause)
    return names


def by_id(received: list[Received]) -> dict[str, Any]:
    """The payloads received, by webhook-id: a delivery sent twice counts once."""
    return {r.headers["webhook-id"]: r.json() for r in received}
