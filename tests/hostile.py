"""Checks that a rendered body shows a hostile article as text (issue 13): no live link, mention, list,
formatting or injected JSON key, beside the markup the daemon writes itself. Used by the format tests and
the end-to-end test through the daemon."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

WJ = "\u2060"  # the word joiner the formats put after @ and ~ (text.WORD_JOINER; spelt out for old code)
_ESCAPED = re.compile(r"\\.", re.DOTALL)  # a backslash escape, removed before looking for live markup
_LIST_LINE = re.compile(r"^(?:> )?(?:[-+]|\d{1,9}[.)])(?:[ \t](?!\*\*)|$)", re.MULTILINE)  # ours: "- **name**"
_BOLD = re.compile(r"\*\*(?:[^*\\]|\\.)+?\*\*")  # a bold span we write: a hit, a label, a digest's file name


def markdown_problems(where: str, text: str) -> list[str]:
    """Live markup in a Discord or Mattermost markdown text, beside the bold spans we write."""
    bare = _ESCAPED.sub("\0", _BOLD.sub("", text))
    bare = re.sub(r"^(?:> |#### |_news-monitor.*_$)", "", bare, flags=re.MULTILINE)
    problems = [f"{where}: unescaped {char!r}" for char in "[]<>`|#*_" if char in bare]
    problems += [f"{where}: a mention {m.group()!r}" for m in re.finditer(rf"[@~](?!{WJ})\w*", text)]
    return problems + [f"{where}: a list line {m.group()!r}" for m in _LIST_LINE.finditer(text)]


def teams_text_problems(where: str, text: str) -> list[str]:
    """Live Adaptive Card markdown in a Teams text, beside the bold spans we write."""
    bare = _ESCAPED.sub("\0", _BOLD.sub("", text))
    problems = [f"{where}: unescaped {char!r}" for char in "[]<>`|#*~" if char in bare]
    problems += [f"{where}: emphasis {m.group()!r}" for m in re.finditer(r"(?<![^\W_])_|_(?![^\W_])", bare)]
    problems += [f"{where}: a link" for _ in re.finditer(r"\]\(", text)]
    problems += [f"{where}: a {{{{function}}}}" for _ in re.finditer(r"\{\{", text)]
    return problems + [f"{where}: a list line {m.group()!r}" for m in _LIST_LINE.finditer(text)]


def walk(value: Any) -> Iterator[dict[str, Any]]:
    """Every dict in a JSON value, depth first."""
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def json_hostile(body: Any) -> list[str]:
    keys = {key for item in walk(body) for key in item}
    return [f"an injected key {key!r}" for key in keys & {"link_names", "z"}]


def slack_hostile(body: Any) -> list[str]:
    problems = ["text with '<'"] * ("<" in body["text"])
    for item in walk(body):
        if item.get("type") == "mrkdwn":
            problems += ["mrkdwn not verbatim"] * (item.get("verbatim") is not True)
            problems += [f"mrkdwn with '<': {item['text'][:60]!r}"] * ("<" in item["text"])
        if item.get("type") == "plain_text":
            problems += [f"plain_text with {m.group()!r}" for m in re.finditer(r"<[!@#]", item["text"])]
    return problems


def discord_hostile(body: Any) -> list[str]:
    problems = ["mentions are not switched off"] * (body["allowed_mentions"] != {"parse": []})
    embed = body["embeds"][0]
    texts = [("content", body["content"]), ("title", embed["title"]), ("description", embed["description"])]
    texts += [("field value", field["value"]) for field in embed["fields"]]
    return problems + [problem for where, text in texts for problem in markdown_problems(where, text)]


def teams_hostile(body: Any) -> list[str]:
    problems = []
    for item in walk(body):
        if item.get("type") == "TextBlock":
            problems += teams_text_problems("TextBlock", item["text"])
        if "title" in item and "value" in item:
            problems += teams_text_problems("fact", item["title"]) + teams_text_problems("fact", item["value"])
    return problems


HOSTILE_CHECKS = {
    "generic": json_hostile,
    "template": json_hostile,
    "slack": slack_hostile,
    "discord": discord_hostile,
    "mattermost": lambda body: markdown_problems("text", body["text"]),
    "teams": teams_hostile,
}


def hostile_problems(fmt: str, body: Any) -> list[str]:
    """What in a rendered body would act on the platform (a link, a mention, formatting, a key)."""
    return HOSTILE_CHECKS[fmt](body)
