"""Payload formats: `render(webhook, delivery) -> bytes`. One module per format, each with one function of
one signature, `render(webhook, delivery) -> a JSON-serialisable object`, registered in RENDERERS.

    generic     the Standard Webhooks envelope {type, timestamp, data}
    slack       incoming-webhook text and Block Kit blocks
    discord     content and one embed, mentions off
    mattermost  one markdown text
    teams       an Adaptive Card message, for a Workflows webhook
    template    the user's Jinja2 template, sandboxed, rendering JSON

The chat formats share one view of a delivery (`view`) and one way to cut text to a limit (`text`), so
a long delivery is shortened the same way everywhere. docs/formats.md lists each platform's limits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from monitor.config.rules import Webhook
from monitor.notify.formats import discord, generic, mattermost, slack, teams, template
from monitor.notify.formats.text import dumps
from monitor.store import Delivery

Renderer = Callable[[Webhook, Delivery], Any]

RENDERERS: dict[str, Renderer] = {
    "generic": generic.render,
    "slack": slack.render,
    "discord": discord.render,
    "mattermost": mattermost.render,
    "teams": teams.render,
    "template": template.render,
}


def render(webhook: Webhook, delivery: Delivery, route: discord.Route = discord.CHANNEL) -> bytes:
    """The body of a delivery (`route`: a Discord message's thread, `discord.route`)."""
    renderer = RENDERERS.get(webhook.format)
    if renderer is None:
        raise ValueError(f"format {webhook.format!r} is not available in this version")
    return dumps(route.body(renderer(webhook, delivery)))
