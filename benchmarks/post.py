"""Client CPU per webhook POST: the deliverer's path against httpx's own, measured in the same run.

    python benchmarks/post.py            # about half a minute
    python benchmarks/post.py --quick    # fewer POSTs

A receiver (`monitor.cli.receiver`) runs in a process of its own on 127.0.0.1, so that this process's CPU
time (time.process_time) is the client's alone. One client at a time sends a body of an alert's size with
signed webhook headers, one POST after another on a kept-alive connection, reading each response to its end.
The paths take turns, ROUNDS rounds:
- httpx: `httpx.AsyncClient()` as shipped (its transport, anyio's network layer), `client.send`;
- client layers: httpx's client on our transport (`Transport`, asyncio streams), `client.send`, the
  deliverer's path before `Clients.send`;
- deliverer: `Clients.send`, the request built by the client and handed to its transport.
Each row: ms of CPU per POST (best and median round) and of wall time (best round's), and the best CPU as a
share of httpx's. The receiver shares the machine's cores: single rounds move by a third, the best less.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from monitor.config.rules import Webhook  # noqa: E402
from monitor.notify.transport import Clients  # noqa: E402

RECEIVER = (
    "from monitor.cli.receiver import Receiver; import time;"
    " print(Receiver().start().url, flush=True); time.sleep(3600)"
)
BODY = b'{"type": "alert", "data": {"rule": "arrestaties", "lead": "' + b"x" * 1500 + b'"}}'
HEADERS = {
    "content-type": "application/json",
    "webhook-id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
    "webhook-timestamp": "1764590000",
    "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
}
Send = Callable[[], Awaitable[None]]
ROUNDS = 9


async def rounds(paths: dict[str, Send], posts: int) -> dict[str, list[tuple[float, float]]]:
    """{path: [(ms of CPU per POST, ms of wall time per POST) of each round]}, the paths taking turns."""
    found: dict[str, list[tuple[float, float]]] = {name: [] for name in paths}
    for send in paths.values():
        for _ in range(20):  # connections open, modules loaded
            await send()
    order = list(paths.items())
    for turn in range(ROUNDS):
        for name, send in order[turn % len(order) :] + order[: turn % len(order)]:  # each path first in turn
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(posts):
                await send()
            cpu, wall = (time.process_time() - cpu) / posts * 1000, (time.perf_counter() - wall) / posts * 1000
            found[name].append((cpu, wall))
    return found


async def measure(url: str, posts: int) -> dict[str, list[tuple[float, float]]]:
    webhook = Webhook.model_validate({"url": url})
    clients = Clients(8, {})
    client = clients(webhook)
    plain = httpx.AsyncClient(trust_env=False)  # no proxy from the environment, as `Clients({})`

    async def through(target: httpx.AsyncClient, request: httpx.Request) -> None:
        response = await target.send(request, stream=True, follow_redirects=False)
        await response.aread()
        await response.aclose()

    async def shipped() -> None:
        await through(plain, plain.build_request("POST", url, content=BODY, headers=HEADERS, timeout=10))

    async def layered() -> None:
        await through(client, client.build_request("POST", url, content=BODY, headers=HEADERS, timeout=10))

    async def deliverer() -> None:
        request = client.build_request("POST", url, content=BODY, headers=HEADERS, timeout=10)
        response = await clients.send(webhook, request)
        await response.aread()
        await response.aclose()

    try:
        return await rounds({"httpx": shipped, "client layers": layered, "deliverer": deliverer}, posts)
    finally:
        await plain.aclose()
        await clients.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer POSTs per round")
    posts = 100 if parser.parse_args().quick else 500
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert receiver.stdout is not None
        url = receiver.stdout.readline().strip() + "/hook"
        found = asyncio.run(measure(url, posts))
    finally:
        receiver.kill()
        receiver.wait()
    base = min(found["httpx"])[0]
    print(f"{posts} POSTs a round, {ROUNDS} rounds in turns; receiver in its own process")
    print(f"{'path':16} {'CPU ms/POST':>12} {'median':>8} {'wall ms/POST':>13} {'CPU / httpx':>12}")
    for name, measured in found.items():
        cpu, wall = min(measured)
        median = statistics.median(c for c, _ in measured)
        print(f"{name:16} {cpu:12.3f} {median:8.3f} {wall:13.3f} {cpu / base:12.2f}")


if __name__ == "__main__":
    main()
