"""`POST /-/reload` on the real health server (127.0.0.1), with a reload callable the test controls: refused
while the daemon starts, one answer whatever the reload does, and many POSTs at once cost two reloads at most.
Found in review: a POST during start-up broke the connection with an AttributeError, and 64 POSTs queued 64
rule compilations while holding every place of the health port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
import pytest_asyncio

from monitor.config.settings import HttpSettings
from monitor.health import Health, HealthServer, Metrics
from tests.conftest import free_port

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(30)]


class Rules:
    """A reload that the test lets finish: counts its runs, or raises."""

    def __init__(self) -> None:
        self.runs = 0
        self.release = asyncio.Event()
        self.running = asyncio.Event()
        self.error: Exception | None = None

    async def reload(self) -> list[str]:
        self.runs += 1
        self.running.set()
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return []


def health(started: Callable[[], bool]) -> Health:
    return Health(started, lambda: True, lambda: True, lambda: True, list)


@pytest_asyncio.fixture
async def served() -> AsyncIterator[tuple[HealthServer, Rules, str, list[bool]]]:
    rules, started = Rules(), [True]
    settings = HttpSettings(port=free_port(), max_connections=128)
    server = HealthServer(health(lambda: started[0]), settings, Metrics(), rules.reload)
    await server.start()
    try:
        yield server, rules, f"http://127.0.0.1:{settings.port}/-/reload", started
    finally:
        await server.close()


async def until(condition: Callable[[], bool], seconds: float) -> None:
    """A bounded wait for what the server shows (no event to wait on from outside it)."""
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.01)


async def post(url: str, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=20) as client:
        return await client.post(url, headers=headers)


async def test_a_reload_while_starting_is_refused_with_retry_after(served) -> None:
    _, rules, url, started = served
    started[0] = False
    answer = await asyncio.wait_for(post(url), 10)
    assert (answer.status_code, answer.headers.get("retry-after")) == (503, "1")
    assert rules.runs == 0


async def test_a_reload_that_raises_still_gets_an_answer(served) -> None:
    _, rules, url, _ = served
    rules.error, _ = RuntimeError("boom"), rules.release.set()
    answer = await asyncio.wait_for(post(url), 10)
    assert answer.status_code == 500 and "boom" in answer.text


@pytest.mark.parametrize("header", ["Origin", "Referer", "Sec-Fetch-Site", "Sec-Fetch-Mode"])
async def test_a_request_from_a_web_page_is_refused(served, header: str) -> None:
    _, rules, url, _ = served
    answer = await asyncio.wait_for(post(url, **{header: "http://127.0.0.1:1/"}), 10)
    assert answer.status_code == 403 and rules.runs == 0


async def test_many_posts_at_once_share_two_reloads(served) -> None:
    """One runs; all that come meanwhile share the next (it starts after them: it reads the file they mean)."""
    server, rules, url, _ = served
    first = asyncio.ensure_future(post(url))
    await asyncio.wait_for(rules.running.wait(), 10)
    rest = [asyncio.ensure_future(post(url)) for _ in range(50)]
    # every request read (none waits for its client) and answered by neither reload yet: all share the second
    await until(lambda: len(server._open) == 51 and not server._waiting, 10)
    rules.release.set()
    answers = await asyncio.wait_for(asyncio.gather(first, *rest), 20)
    assert [a.status_code for a in answers] == [200] * 51
    assert rules.runs == 2
