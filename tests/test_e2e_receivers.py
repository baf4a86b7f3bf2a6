"""Receivers through the real daemon: a sick one holds up no other, the pool serves `delivery.concurrency`
attempts at once, and attempts go through the proxies of the environment or of a webhook's `proxy:`.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from monitor.cli.receiver import Received, Receiver
from tests.conftest import SECRET, DaemonProcess, wait_until
from tests.servers import Proxy
from tests.test_isolation import GOOD, Dripper, drip

RULE = {"name": "hoogverraad", "query": "hoogverraad"}


def hooks(**urls: str | dict[str, Any]) -> dict[str, Any]:
    """Rules with one rule alerting every webhook; each webhook a URL or its settings."""
    webhooks = {}
    for name, value in urls.items():
        settings = {"url": value} if isinstance(value, str) else value
        webhooks[name] = {"secret": SECRET, "retry_schedule": ["1m"], **settings}
    return {"version": 1, "webhooks": webhooks, "rules": [RULE]}


@pytest.fixture
def proxies() -> Iterator[Callable[[], Proxy]]:
    made: list[Proxy] = []

    def make() -> Proxy:
        made.append(Proxy())
        return made[-1]

    yield make
    for proxy in made:
        proxy.close()


@pytest.mark.e2e
def test_a_dripping_receiver_holds_up_no_other_webhook(
    receiver: Receiver, daemon_factory: Callable[..., DaemonProcess]
) -> None:
    """The issue's reproduction: a receiver that drips its response one byte a second took every slot, and
    a healthy webhook's newer alerts waited for the drip's 15 s timeout (and for days before the overall
    deadline). Now the dripping webhook keeps to its share of the slots, then to one."""
    dripping: list[float] = []

    def counted(conn: socket.socket) -> int:
        dripping.append(time.monotonic())
        return drip(conn)

    server = Dripper(counted)
    try:
        daemon = daemon_factory(hooks(drip=server.url + "/drip", healthy=receiver.url + "/healthy")).start()
        for i in range(8):
            (daemon.watched / f"first-{i}.txt").write_text(GOOD.format(i=i), encoding="utf-8")
        wait_until(lambda: len(dripping) >= 4, 20, "the dripping receiver to hold attempts")
        wait_until(lambda: len(receiver.received) >= 8, 20, "the healthy webhook's first alerts")
        written: dict[str, float] = {}
        for i in range(8):
            name = f"later-{i}.txt"
            (daemon.watched / name).write_text(GOOD.format(i=100 + i), encoding="utf-8")
            written[f"Bericht {100 + i}"] = time.time()
        wait_until(lambda: len(receiver.received) >= 16, 20, "the healthy webhook's later alerts")
        late = {}
        for request in receiver.received[8:]:
            key = next(k for k in written if k in request.body.decode())
            late[key] = round(request.at - written[key], 2)
        print(f"healthy webhook, file written to alert received: {sorted(late.values())} s")
        assert max(late.values()) < 2.0, late
        assert daemon.stop() == 0
    finally:
        server.close()


@pytest.mark.e2e
def test_the_pool_serves_as_many_attempts_at_once_as_delivery_concurrency(
    receiver: Receiver, daemon_factory: Callable[..., DaemonProcess]
) -> None:
    """Two webhooks on one receiver, 16 slots: all 16 attempts at once (the old pool had 10 connections)."""
    concurrency = 16
    changed = threading.Condition()
    state = {"now": 0, "most": 0}

    def held(_request: Received) -> tuple[int, dict[str, str]]:
        with changed:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
            changed.notify_all()
            changed.wait_for(lambda: state["most"] >= concurrency, timeout=5)
            state["now"] -= 1
        return 200, {}

    receiver.respond = held
    rules = hooks(a=receiver.url + "/a", b=receiver.url + "/b")
    daemon = daemon_factory(rules, settings={"delivery": {"concurrency": concurrency}}).start()
    names = [f"a-{i}.txt" for i in range(concurrency // 2)]
    for i, name in enumerate(names):
        (daemon.watched / name).write_text(GOOD.format(i=i), encoding="utf-8")
    daemon.wait_settled(names, timeout=30)
    assert state["most"] == concurrency
    assert daemon.stop() == 0


def tls_receiver(tmp_path: Path) -> tuple[Receiver, Path]:
    """An HTTPS receiver on 127.0.0.1 and the PEM file of the CA that signed its certificate."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    return Receiver(tls=context).start(), pem


@pytest.mark.e2e
def test_https_goes_through_the_proxy_named_by_https_proxy(
    daemon_factory: Callable[..., DaemonProcess], proxies: Callable[[], Proxy], tmp_path: Path
) -> None:
    proxy = proxies()
    receiver, ca = tls_receiver(tmp_path)
    try:
        env = {"HTTPS_PROXY": proxy.url, "SSL_CERT_FILE": str(ca)}
        daemon = daemon_factory(hooks(secure=receiver.url + "/hook"), env=env).start()
        (daemon.watched / "one.txt").write_text(GOOD.format(i=1), encoding="utf-8")
        daemon.wait_settled(["one.txt"], timeout=30)
        assert len(receiver.received) == 1
        assert proxy.seen == [("CONNECT", receiver.url.removeprefix("https://"))]
        assert daemon.stop() == 0
    finally:
        receiver.stop()


@pytest.mark.e2e
def test_each_webhook_takes_the_environment_proxy_its_own_or_none(
    receiver: Receiver, daemon_factory: Callable[..., DaemonProcess], proxies: Callable[[], Proxy]
) -> None:
    """HTTP_PROXY for a webhook without `proxy:`; `proxy: URL` for one with; `proxy: direct` for none."""
    from_env, own = proxies(), proxies()
    rules = hooks(
        env=receiver.url + "/env",
        own={"url": receiver.url + "/own", "proxy": own.url},
        direct={"url": receiver.url + "/direct", "proxy": "direct"},
    )
    daemon = daemon_factory(rules, env={"HTTP_PROXY": from_env.url}).start()
    (daemon.watched / "one.txt").write_text(GOOD.format(i=1), encoding="utf-8")
    daemon.wait_settled(["one.txt"], timeout=30)
    assert sorted(request.path for request in receiver.received) == ["/direct", "/env", "/own"]
    assert from_env.seen == [("POST", receiver.url + "/env")]
    assert own.seen == [("POST", receiver.url + "/own")]
    assert daemon.stop() == 0
