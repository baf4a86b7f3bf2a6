"""A real webhook server that no one here wrote: Debian's `webhook` (adnanh/webhook) receives our alerts."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tests.conftest import SECRET, SEED_RULES, copy_seeds, free_port, shipped_rules, wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        shutil.which("webhook") is None,
        reason="needs Debian's `webhook` package (adnanh/webhook); scripts/test.sh installs it when run as root",
    ),
]

SAVE = """#!/bin/sh
# $1: the whole body; $2: webhook-id; $3: webhook-timestamp; $4: webhook-signature
printf '%s' "$1" > "$OUT/$2.json"
printf '%s\\n%s\\n' "$3" "$4" > "$OUT/$2.headers"
"""


@pytest.fixture
def adnanh(tmp_path: Path):
    out = tmp_path / "received"
    out.mkdir()
    script = tmp_path / "save.sh"
    script.write_text(SAVE)
    script.chmod(0o755)
    hooks = [
        {
            "id": "news",
            "execute-command": str(script),
            "include-command-output-in-response": True,
            "pass-environment-to-command": [{"source": "string", "envname": "OUT", "name": str(out)}],
            "pass-arguments-to-command": [
                {"source": "raw-request-body"},
                {"source": "header", "name": "webhook-id"},
                {"source": "header", "name": "webhook-timestamp"},
                {"source": "header", "name": "webhook-signature"},
            ],
            "trigger-rule": {
                "match": {
                    "type": "regex",
                    "regex": "^msg_[0-9a-f]{32}$",
                    "parameter": {"source": "header", "name": "webhook-id"},
                }
            },
            "trigger-rule-mismatch-http-response-code": 400,
        }
    ]
    (tmp_path / "hooks.json").write_text(json.dumps(hooks))
    port = free_port()
    with (tmp_path / "webhook.log").open("wb") as log:
        proc = subprocess.Popen(
            ["webhook", "-hooks", str(tmp_path / "hooks.json"), "-ip", "127.0.0.1", "-port", str(port), "-verbose"],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )

    def up() -> bool:
        try:
            return httpx.post(f"http://127.0.0.1:{port}/hooks/news", content=b"{}", timeout=1).status_code == 400
        except httpx.TransportError:
            return False

    wait_until(up, 20, "adnanh/webhook to listen")
    yield f"http://127.0.0.1:{port}/hooks/news", out
    proc.terminate()
    proc.wait(10)


def test_adnanh_webhook_receives_and_the_signatures_verify(adnanh, daemon_factory) -> None:
    url, out = adnanh
    daemon = daemon_factory(shipped_rules(url)).start()
    names = copy_seeds(daemon.watched)
    daemon.wait_settled(names)
    assert daemon.stop() == 0
    saved = sorted(out.glob("*.json"))
    assert len(saved) == sum(len(SEED_RULES[n]) for n in names)
    verifier = Webhook(SECRET)
    rules = set()
    for body_file in saved:
        delivery_id = body_file.stem
        timestamp, signature = body_file.with_suffix(".headers").read_text().splitlines()
        body = body_file.read_bytes()
        headers = {"webhook-id": delivery_id, "webhook-timestamp": timestamp, "webhook-signature": signature}
        payload = verifier.verify(body, headers)
        rules.add((Path(payload["data"]["article"]["path"]).name, payload["data"]["rule"]))
    assert rules == {(n, r) for n in names for r in SEED_RULES[n]}
