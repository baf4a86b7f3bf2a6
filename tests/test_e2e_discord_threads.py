"""Discord threads end to end (issue 18, "Chat formats show follow-ups as updates of the first alert"): the
real daemon with stories on and `story: first_then_updates`, a Discord webhook with `thread: story`, and a
real receiver on 127.0.0.1 that answers `?wait=true` posts as Discord does (the message, whose `channel_id`
is the thread its `thread_name` started). The story's first alert starts a thread; its follow-up goes there."""

from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from monitor.cli.receiver import Received, Receiver, Reply
from tests.conftest import wait_until
from tests.story_texts import QUAKE_A

pytestmark = pytest.mark.e2e
MOURNING = "President Erdogan declared seven days of national mourning."


def write(folder: Path, name: str, text: str) -> None:
    """An article written whole, then renamed in."""
    temporary = folder / f".{name}.part"
    temporary.write_text(f"date 2023-02-06\n{text}\n", encoding="utf-8")
    temporary.replace(folder / name)


class Forum:
    """A Discord forum channel's webhook: a post with `thread_name` (and `wait=true`) starts a thread with a
    new id, answered with the message; a post with `thread_id` goes into that thread (204)."""

    def __init__(self) -> None:
        self.ids = itertools.count(1_184_536_571_928_260_608)
        self.threads: dict[str, str] = {}  # id -> the name it was started with
        self.lock = threading.Lock()

    def respond(self, request: Received) -> Reply:
        body = request.json()
        if "thread_name" not in body:
            return 204, {}
        with self.lock:
            thread = str(next(self.ids))
            self.threads[thread] = body["thread_name"]
        if "wait=true" not in request.path:
            return 204, {}
        message = {"id": thread, "channel_id": thread, "content": body.get("content", "")}
        return 200, {"content-type": "application/json"}, json.dumps(message).encode()


def titles(receiver: Receiver) -> list[tuple[str, str, Any]]:
    """Each message received (once, by webhook-id): its path, its embed's title and its thread_name."""
    by_id = {request.headers["webhook-id"]: request for request in receiver.received}
    return [
        (request.path, request.json()["embeds"][0]["title"], request.json().get("thread_name"))
        for request in by_id.values()
    ]


def test_a_story_starts_a_discord_thread_and_its_follow_up_goes_there(receiver: Receiver, daemon_factory) -> None:
    forum = Forum()
    receiver.respond = forum.respond
    config = {
        "version": 1,
        "webhooks": {"forum": {"url": receiver.url + "/hook", "format": "discord", "thread": "story"}},
        "rules": [
            {"name": "quake", "query": "earthquake", "story": "first_then_updates"},
            {"name": "mourning", "query": "mourning"},
        ],
    }
    daemon = daemon_factory(config, settings={"stories": {"enabled": True}}).start()
    write(daemon.watched, "first.txt", QUAKE_A.replace(MOURNING, "Schools were closed across the region."))
    wait_until(lambda: len(titles(receiver)) >= 1, 30, "the first alert")
    daemon.wait_settled(["first.txt"])  # delivered, and its thread stored
    write(daemon.watched, "second.txt", QUAKE_A)
    wait_until(lambda: len(titles(receiver)) >= 3, 30, "the follow-up and the mourning alert")
    daemon.wait_settled(["first.txt", "second.txt"])
    assert daemon.stop() == 0
    (first_path, first_title, first_name), *later = titles(receiver)
    assert (first_path, first_title, first_name) == ("/hook?wait=true", "quake: first.txt", "quake: first.txt")
    (quake_thread,) = [thread for thread, name in forum.threads.items() if name == "quake: first.txt"]
    follow_up = [item for item in later if item[1].startswith("Update to")]
    assert follow_up == [(f"/hook?thread_id={quake_thread}", "Update to quake: first.txt", None)]
    mourning = [item for item in later if item[1].startswith("mourning")]
    assert [(path, name) for path, _, name in mourning] == [("/hook?wait=true", "mourning: second.txt")]
