"""Discord threads (`thread: story`, `thread_id`): the rules' options, where a message goes (URL and
`thread_name`), the thread read back from Discord's answer (untrusted: malformed, huge, missing), the store
(SQLite and PostgreSQL), and one delivery through the real deliverer to a real receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.cli.receiver import Received, Receiver, Reply
from monitor.config.rules import Webhook, load_rules
from monitor.errors import RulesError
from monitor.notify.deliverer import RESPONSE_CAP, AttemptOutcome, Deliverer
from monitor.notify.formats import discord, render
from monitor.store import Store
from monitor.store.schema import metadata
from tests.helpers import created_database
from tests.test_deliverer import add, take
from tests.test_formats import alert_delivery, digest_delivery, update_delivery

BASE = "https://discord.com/api/webhooks/1/token"
THREAD = "1184536571928260608"


def story_hook(**extra: Any) -> Webhook:
    return Webhook.model_validate({"url": BASE, "format": "discord", **extra})


# -- the rules file ------------------------------------------------------------------------------------------
def write_hooks(tmp_path: Path, *hooks: str) -> Path:
    """A rules file with these webhooks (one line each, from line 3 on) and one rule."""
    path = tmp_path / "rules.yaml"
    lines = ["version: 1", "webhooks:", *(f"  {hook}" for hook in hooks), "rules:", "  - name: r", "    query: x"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_thread_options_load(tmp_path: Path) -> None:
    path = write_hooks(
        tmp_path,
        "forum: {url: 'https://discord.example/x', format: discord, thread: story}",
        f"one: {{url: 'https://discord.example/y', format: discord, thread_id: {THREAD}}}",
    )
    ruleset = load_rules(path, environ={})
    assert ruleset.webhooks["forum"].thread == "story"
    assert ruleset.webhooks["one"].thread_id == THREAD  # a YAML number, kept as its digits


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param("format: slack, thread: story", "`thread` is only used with format 'discord'", id="slack"),
        pytest.param("thread: story", "`thread` is only used with format 'discord', not 'generic'", id="generic"),
        pytest.param("format: discord, thread: all", "Input should be 'story'", id="unknown-mode"),
        pytest.param("format: discord, thread_id: '12ab'", "should match pattern", id="not-digits"),
        pytest.param(
            f"format: discord, thread: story, thread_id: {THREAD}", "exclude each other", id="thread-and-thread_id"
        ),
    ],
)
def test_thread_options_are_refused_with_file_and_line(tmp_path: Path, options: str, message: str) -> None:
    path = write_hooks(
        tmp_path, "good: {url: 'https://discord.example/y'}", f"bad: {{url: 'https://x.example/', {options}}}"
    )
    with pytest.raises(RulesError) as caught:
        load_rules(path, environ={})
    (problem,) = caught.value.problems
    assert (problem.file, problem.line) == (str(path), 4) and message in problem.message, str(problem)


# -- where a message goes -------------------------------------------------------------------------------------
def test_a_story_webhook_starts_a_thread_with_an_alert_and_waits_for_it() -> None:
    delivery = alert_delivery()
    route = discord.route(story_hook(thread="story"), delivery)
    assert route.key == delivery.payload["alert_id"] and route.thread_id is None
    assert route.url(BASE) == BASE + "?wait=true"
    body = json.loads(render(story_hook(thread="story"), delivery, route))
    assert body["thread_name"] == "hoogverraad: 000_3107e6f82356df66.txt"  # plain text: no markdown escapes


def test_a_follow_up_goes_into_its_first_alerts_thread() -> None:
    delivery = update_delivery()
    hook = story_hook(thread="story")
    assert discord.story_key(hook, delivery) == delivery.payload["update_of"]
    route = discord.route(hook, delivery, known=THREAD)
    assert route == discord.Route(thread_id=THREAD)
    assert route.url(BASE + "?x=1") == f"{BASE}?x=1&thread_id={THREAD}"
    assert "thread_name" not in json.loads(render(hook, delivery, route))


def test_a_follow_up_without_a_known_thread_starts_one_under_its_first_alert() -> None:
    delivery = update_delivery()
    route = discord.route(story_hook(thread="story"), delivery, known=None)
    assert route.key == delivery.payload["update_of"] and route.url(BASE) == BASE + "?wait=true"
    assert route.thread_name == "Update to dodental: 003_1649dd4e54c446b5.txt"


def test_a_digest_starts_a_thread_of_its_own_without_waiting() -> None:
    route = discord.route(story_hook(thread="story"), digest_delivery())
    assert route.key is None and route.thread_name and route.url(BASE) == BASE


def test_a_fixed_thread_takes_every_message() -> None:
    hook = story_hook(thread_id=THREAD)
    for delivery in (alert_delivery(), update_delivery(), digest_delivery()):
        assert discord.route(hook, delivery).url(BASE) == f"{BASE}?thread_id={THREAD}"
        assert discord.story_key(hook, delivery) is None


@pytest.mark.parametrize("fmt", ["discord", "slack", "generic"])
def test_without_the_options_nothing_changes(fmt: str) -> None:
    hook = Webhook.model_validate({"url": BASE, "format": fmt})
    delivery = update_delivery()
    assert discord.route(hook, delivery, known=THREAD) == discord.CHANNEL
    assert discord.CHANNEL.url(BASE) == BASE and render(hook, delivery, discord.CHANNEL) == render(hook, delivery)


def test_a_thread_name_is_one_line_of_at_most_100_characters() -> None:
    delivery = alert_delivery()
    long = delivery.payload | {"rule": "r\n" * 200, "article": delivery.payload["article"]}
    from dataclasses import replace

    route = discord.route(story_hook(thread="story"), replace(delivery, payload=long, rule="r"))
    assert route.thread_name is not None and len(route.thread_name) <= discord.THREAD_NAME
    assert "\n" not in route.thread_name


# -- Discord's answer -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        pytest.param(json.dumps({"id": THREAD, "channel_id": THREAD}).encode(), THREAD, id="message"),
        pytest.param(None, None, id="no-body"),
        pytest.param(b"", None, id="empty"),
        pytest.param(b"<html>", None, id="not-json"),
        pytest.param(b"\xff\xfe{", None, id="not-utf8"),
        pytest.param(b"[1, 2]", None, id="not-an-object"),
        pytest.param(b'{"id": "1"}', None, id="missing"),
        pytest.param(b'{"channel_id": 1184536571928260608}', None, id="a-number"),
        pytest.param(b'{"channel_id": "12a"}', None, id="not-digits"),
        pytest.param(b'{"channel_id": "1\\n"}', None, id="trailing-newline"),
        pytest.param(b'{"channel_id": "\xd9\xa1"}', None, id="arabic-digit"),
        pytest.param(json.dumps({"channel_id": "1" * 21}).encode(), None, id="too-long"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, None, id="deeply-nested"),
    ],
)
def test_the_thread_is_read_from_the_message_or_is_none(reply: bytes | None, expected: str | None) -> None:
    assert discord.thread_of(reply) == expected


# -- the store ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    with created_database("chat_threads") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    sqlite = f"sqlite:///{tmp_path / 'monitor.db'}"
    store = Store(sqlite if request.param == "sqlite" else request.getfixturevalue("pg_database"))
    store.create()
    with store.begin() as conn:
        conn.execute(metadata.tables["chat_threads"].delete())
    yield store
    store.close()


def test_the_store_keeps_the_first_thread_of_an_alert_per_webhook(db: Store) -> None:
    assert db.chat_thread("forum", "msg_1") is None
    assert db.save_chat_thread("forum", "msg_1", THREAD, 1.0) is True
    assert db.save_chat_thread("forum", "msg_1", "42", 2.0) is False  # a raced follow-up's thread: not stored
    assert db.save_chat_thread("other", "msg_1", "43", 2.0) is True
    assert (db.chat_thread("forum", "msg_1"), db.chat_thread("other", "msg_1")) == (THREAD, "43")


# -- through the deliverer, to a real receiver ----------------------------------------------------------------
def discord_like(thread: str = THREAD, body: bytes | None = None) -> Any:
    """Answers as Discord's execute-webhook: 204 without `wait`, else 200 and the message, whose `channel_id`
    is the new thread for a post with `thread_name` (or `body` as given)."""

    def respond(request: Received) -> Reply:
        if "wait=true" not in request.path:
            return 204, {}
        sent = request.json()
        channel = thread if "thread_name" in sent else "1"
        answer = body if body is not None else json.dumps({"id": thread, "channel_id": channel}).encode()
        return 200, {"content-type": "application/json"}, answer

    return respond


async def deliver(store: Store, url: str, delivery_id: str, payload: dict[str, Any]) -> AttemptOutcome:
    hooks = {"newsroom": Webhook.model_validate({"url": url, "format": "discord", "thread": "story"})}
    add(store, delivery_id, payload=payload)
    async with httpx.AsyncClient() as client:
        deliverer = Deliverer(store, lambda: hooks, client)
        return await asyncio.wait_for(deliverer.deliver(take(store, delivery_id)), 10)


def first_payload() -> dict[str, Any]:
    return alert_delivery().payload | {"alert_id": "msg_first"}


@pytest.mark.asyncio
async def test_the_deliverer_stores_the_thread_and_sends_the_follow_up_into_it(store: Store) -> None:
    receiver = Receiver(respond=discord_like()).start()
    try:
        assert await deliver(store, receiver.url + "/hook", "d1", first_payload()) is AttemptOutcome.delivered
        assert store.chat_thread("newsroom", "msg_first") == THREAD
        follow = update_delivery().payload | {"update_of": "msg_first", "alert_id": "msg_second"}
        assert await deliver(store, receiver.url + "/hook", "d2", follow) is AttemptOutcome.delivered
    finally:
        receiver.stop()
    first, second = receiver.received
    assert first.path == "/hook?wait=true" and first.headers["accept-encoding"] == "identity"
    assert first.json()["thread_name"] == "hoogverraad: 000_3107e6f82356df66.txt"
    assert second.path == f"/hook?thread_id={THREAD}" and "thread_name" not in second.json()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"not json", id="malformed"),
        pytest.param(b'{"id": "1"}', id="missing-id"),
        pytest.param(b'{"channel_id": "' + b"1" * (RESPONSE_CAP + 1) + b'"}', id="past-the-cap"),
    ],
)
@pytest.mark.asyncio
async def test_a_bad_answer_is_delivered_without_a_thread(store: Store, body: bytes) -> None:
    receiver = Receiver(respond=discord_like(body=body)).start()
    try:
        assert await deliver(store, receiver.url + "/hook", "d1", first_payload()) is AttemptOutcome.delivered
    finally:
        receiver.stop()
    assert store.chat_thread("newsroom", "msg_first") is None


def test_chat_threads_go_with_the_story_rows_in_the_prune(store: Store) -> None:
    from monitor.config.settings import RetentionSettings
    from monitor.store.retention import STORY_MARGIN, STORY_WINDOW, prune

    now = time.time()
    old = now - (STORY_WINDOW + STORY_MARGIN).total_seconds() - 60
    store.save_chat_thread("forum", "old", "1", old)
    store.save_chat_thread("forum", "new", "2", now)
    counts = prune(store, RetentionSettings(), [], None, now=now)
    assert counts is not None and counts["chat_threads"] == 1
    assert (store.chat_thread("forum", "old"), store.chat_thread("forum", "new")) == (None, "2")
