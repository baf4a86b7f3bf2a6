"""`realert_on_increase` end to end: the real daemon, a real receiver on 127.0.0.1, real files."""

from __future__ import annotations

import pytest

from monitor.cli.receiver import Receiver
from tests.helpers import SECRET

pytestmark = pytest.mark.e2e


def test_a_rising_death_toll_alerts_again_within_the_window(receiver: Receiver, daemon_factory) -> None:
    """164, then 120 (lower: recorded, not sent), then 347 (higher: sent, with both numbers)."""
    rules = {
        "version": 1,
        "webhooks": {"hook": {"url": receiver.url, "secret": SECRET}},
        "rules": [{"name": "dodental", "query": "dodental*", "realert": "1h", "realert_on_increase": True}],
    }
    daemon = daemon_factory(rules).start()
    names: list[str] = []
    for number, toll in enumerate([164, 120, 347]):
        name = f"toll-{number}.txt"
        (daemon.watched / name).write_text(f"date 2022-01-05 Het dodental is opgelopen tot {toll}.\n")
        names.append(name)
        daemon.wait_settled(names)  # one after another: each is decided against the alerts before it
    assert daemon.stop() == 0
    alerts = [request.json()["data"] for request in receiver.received]
    assert [alert["article"]["path"].rsplit("/", 1)[-1] for alert in alerts] == ["toll-0.txt", "toll-2.txt"]
    assert [alert["count_increase"] for alert in alerts] == [None, {"previous": 164, "value": 347}]
