"""Hostile articles through the real daemon (issue 11): capped hits and payloads in every format, a hostile
article beside ordinary ones, health answering while the daemon works on it, a matching budget.

Each test failed on the code before the fix: hits were unbounded (a payload the size of the article),
a long token took minutes to match while every other article waited, and /healthz stopped answering.
"""

from __future__ import annotations

import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import pytest

from monitor.cli.receiver import Received, Receiver
from tests.conftest import ROOT, SEEDS, DaemonProcess, HealthProbe, shipped_rules, wait_until

pytestmark = pytest.mark.e2e

GOLDEN = ROOT / "tests" / "golden"
SEED = "003_1649dd4e54c446b5.txt"  # arrestaties and dodental
FORMATS = ("generic", "slack", "discord", "mattermost", "teams", "template")
# What each format's body may weigh at most (docs/formats.md), beside the payload cap for the JSON formats.
BODY_LIMITS = {"slack": 40_000, "discord": 8_000, "mattermost": 20_000, "teams": 27_000}


def write_atomically(folder: Path, name: str, text: str) -> float:
    """Write as rsync and curl -o do (a hidden temporary name renamed into place); the time of the rename."""
    temporary = folder / f".{name}.part"
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(folder / name)
    return time.monotonic()


def only(received: list[Received], rule: str, path: str = "") -> dict[str, Any]:
    found = [r.json()["data"] for r in received if r.path.startswith(path) and r.json()["data"]["rule"] == rule]
    assert len(found) == 1, [r.json()["data"]["rule"] for r in received]
    data: dict[str, Any] = found[0]
    return data


def ledger(daemon: DaemonProcess) -> dict[str, tuple[str, str | None]]:
    """File name -> (outcome, rejection code)."""
    store = daemon.store()
    try:
        return {Path(file.path).name: (file.outcome, file.code) for file in store.recorded_files()}
    finally:
        store.close()


def test_a_million_hits_give_the_first_hits_and_their_total(receiver: Receiver, daemon_factory) -> None:
    daemon = daemon_factory(shipped_rules(receiver.url)).start()
    write_atomically(daemon.watched, "many.txt", "date 2022-01 " + "Gearresteerd! " * 3000)
    daemon.wait_settled(["many.txt"])
    assert daemon.stop() == 0
    data = only(receiver.received, "arrestaties")
    assert data["hits_total"] == 3000
    assert [hit["start"] for hit in data["hits"]] == [14 * i for i in range(20)]  # the first 20, in text order
    assert all(hit["text"] == "Gearresteerd" for hit in data["hits"])


def test_a_ten_megabyte_word_gives_a_short_excerpt(receiver: Receiver, daemon_factory) -> None:
    daemon = daemon_factory(shipped_rules(receiver.url)).start()
    word = "x" * 2_000_000 + "hoogverraad" + "y" * 2_000_000
    write_atomically(daemon.watched, "word.txt", "date 2022-01 Een woord: " + word + ".")
    daemon.wait_settled(["word.txt"], timeout=60)
    assert daemon.stop() == 0
    data = only(receiver.received, "hoogverraad")
    [hit] = data["hits"]
    assert (hit["start"], hit["end"]) == (len("Een woord: "), len("Een woord: ") + len(word))
    assert "…" in hit["text"] and len(hit["text"]) <= 220
    assert len(hit["snippet"]) <= 400
    assert len(receiver.received[0].body) < 8_000


def test_every_format_stays_within_the_payload_cap(receiver: Receiver, daemon_factory) -> None:
    rules = shipped_rules(receiver.url)
    rules["webhooks"] = {
        fmt: {"url": f"{receiver.url}/{fmt}", "format": fmt}
        | ({"template": str(GOLDEN / "template.json.j2")} if fmt == "template" else {})
        for fmt in FORMATS
    }
    limits = {"max_hits": 5000, "max_payload_bytes": 8192}
    daemon = daemon_factory(rules, settings={"limits": limits}).start()
    word = "hoogverraad" + "zaak" * 60  # a 251-character compound: long hit texts and snippets
    write_atomically(daemon.watched, "long.txt", "date 2022-01 " + f"De {word} begint. " * 2000)
    assert receiver.wait_for(lambda got: len(got) >= len(FORMATS), timeout=60), daemon.log.read_text()[-3000:]
    daemon.wait_settled(["long.txt"], timeout=60)
    assert daemon.stop() == 0
    generic = only(receiver.received, "hoogverraad", "/generic")
    assert generic["hits_total"] == 2000 and generic["truncated"] is True
    assert 0 < len(generic["hits"]) < 2000
    for request in receiver.received:
        fmt = request.path.strip("/")
        if fmt in BODY_LIMITS:
            assert len(request.body) <= BODY_LIMITS[fmt], fmt
        else:  # the payload itself, in an envelope (generic) or a template
            assert len(request.body) <= 8192 + 1024, (fmt, len(request.body))


def daemon_peak_rss_mb(daemon: DaemonProcess) -> float:
    assert daemon.proc is not None
    status = Path(f"/proc/{daemon.proc.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024


def test_a_hostile_article_holds_up_neither_ordinary_ones_nor_health(receiver: Receiver, daemon_factory) -> None:
    daemon = daemon_factory(shipped_rules(receiver.url)).start()
    with HealthProbe(daemon.port) as probe:
        # The two: one 256 KB token that `*arresta*` hits everywhere (259 s to match before the fix),
        # and 10 MB of 800,000 hits (a 176 MB payload, 3.6 GB of memory and /healthz silent for minutes).
        write_atomically(daemon.watched, "token.txt", "date 2022-01 " + "arresta" * 37449)
        write_atomically(daemon.watched, "hostile.txt", "date 2022-01 " + "gearresteerd " * 800_000)
        time.sleep(1)  # the scenario: an ordinary article written a second after the hostile one
        shutil.copyfile(SEEDS / SEED, daemon.watched / ".seed.part")
        (daemon.watched / ".seed.part").replace(daemon.watched / SEED)
        written = time.monotonic()

        def seed_alerted() -> bool:
            return {"arrestaties", "dodental"} <= {r.json()["data"]["rule"] for r in seed_alerts(receiver)}

        wait_until(seed_alerted, 30, "the ordinary article's alerts")
        delay = time.monotonic() - written
        daemon.wait_settled(["token.txt", "hostile.txt", SEED], timeout=120)
        rss = daemon_peak_rss_mb(daemon)
    assert daemon.stop() == 0
    assert delay < 4, f"the ordinary article waited {delay:.1f}s for the hostile one"
    assert ledger(daemon)["hostile.txt"][0] == ledger(daemon)["token.txt"][0] == "accepted"
    hostile_alert = only(alerts_of(receiver, "hostile.txt"), "arrestaties")
    assert hostile_alert["hits_total"] == 800_000 and len(hostile_alert["hits"]) == 20
    token_alert = only(alerts_of(receiver, "token.txt"), "arrestaties")
    assert token_alert["hits_total"] == 1 and len(token_alert["hits"][0]["text"]) <= 220
    assert not probe.failures and len(probe.times) > 20, probe.failures[:3]
    assert max(probe.times) < 1.0 and statistics.median(probe.times) < 0.1, sorted(probe.times)[-5:]
    assert rss < 400, f"peak RSS {rss:.0f} MB"


def alerts_of(receiver: Receiver, name: str) -> list[Received]:
    return [r for r in receiver.received if r.json()["data"]["article"]["path"].endswith("/" + name)]


def seed_alerts(receiver: Receiver) -> list[Received]:
    return alerts_of(receiver, SEED)


def test_an_article_over_the_matching_budget_is_recorded_too_costly(receiver: Receiver, daemon_factory) -> None:
    daemon = daemon_factory(shipped_rules(receiver.url), settings={"limits": {"match_budget": "50ms"}}).start()
    ordinary = (SEEDS / SEED).read_text(encoding="utf-8").split(" ", 2)[2]
    write_atomically(daemon.watched, "huge.txt", "date 2022-01 " + ordinary * (8_000_000 // len(ordinary)))
    shutil.copyfile(SEEDS / SEED, daemon.watched / SEED)
    daemon.wait_settled(["huge.txt", SEED], timeout=60)
    assert daemon.stop() == 0
    assert ledger(daemon)["huge.txt"] == ("rejected", "too_costly")
    assert {r.json()["data"]["rule"] for r in receiver.received} == {"arrestaties", "dodental"}
    assert all(r.json()["data"]["article"]["path"].endswith(SEED) for r in receiver.received)
