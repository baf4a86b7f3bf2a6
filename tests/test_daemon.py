"""The daemon's own decisions, in process: what it logs, and what monitor.health may know of it."""

from __future__ import annotations

import ast
import asyncio
import logging
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from monitor import daemon as daemon_module
from monitor.config.settings import load_settings
from tests.conftest import ROOT

DIGEST_RULES = """\
version: 1
webhooks:
  hook: {url: "http://127.0.0.1:9/hook"}
rules:
  - name: daily
    query: hoogverraad
    schedule: "0 8 * * *"
"""


@pytest.mark.asyncio
async def test_an_empty_digest_is_logged_at_debug_not_info(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 16: every schedule tick of a digest with nothing due logged `digest_flushed deliveries=0` at INFO."""
    (tmp_path / "rules.yaml").write_text(DIGEST_RULES, encoding="utf-8")
    (tmp_path / "in").mkdir()
    settings = load_settings(
        None,
        rules_file=tmp_path / "rules.yaml",
        state={"url": f"sqlite:///{tmp_path / 'monitor.db'}"},
        watch={"folders": [str(tmp_path / "in")]},
    )
    monkeypatch.setattr(daemon_module.gc, "freeze", lambda: None)  # the daemon's, not for the test process
    config = structlog.get_config()  # another test may have configured logging at INFO: debug events let through
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    owner = daemon_module.Daemon(settings)
    try:
        await asyncio.to_thread(owner.store.create)
        with capture_logs() as logs:
            await asyncio.wait_for(owner.flush_digest("daily"), 10)
    finally:
        owner.store.close()
        structlog.configure(**config)
    flushed = [entry for entry in logs if entry["event"] == "digest_flushed"]
    assert [(entry["log_level"], entry["deliveries"]) for entry in flushed] == [("debug", 0)]


def test_ops_never_imports_the_daemon() -> None:
    """monitor.health knows the daemon through callables only (Health, the reload): no import cycle, lazy or not."""
    tree = ast.parse((ROOT / "monitor" / "health.py").read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert "monitor.daemon" not in imported
