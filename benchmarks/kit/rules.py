"""Rules for tests and benchmarks: the shipped rules pointed at a receiver, and generated rule sets of the
shapes users write (words, phrases, wildcards, boolean queries, lists, schedules, realert, stemming).

`SHIPPED_RULES` is the source checkout's config/rules.yaml: these helpers work in a checkout, not from an
installed wheel.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from benchmarks.kit.words import CONTENT, FIRST, LAST, PLACES, TRIGGERS, compounds

CHECKOUT = Path(__file__).resolve().parents[2]
SHIPPED_RULES = CHECKOUT / "config" / "rules.yaml"
SECRET = "whsec_" + base64.b64encode(b"news-monitor-test-secret-32bytes").decode()


def shipped_rules(url: str, **webhook: Any) -> dict[str, Any]:
    """config/rules.yaml with the newsroom webhook pointed at `url` and `webhook` settings added."""
    data: dict[str, Any] = YAML(typ="safe").load(SHIPPED_RULES.read_text(encoding="utf-8"))
    data["webhooks"]["newsroom"] = {"url": url, "secret": SECRET, "format": "generic", **webhook}
    return data


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def shipped_rules_text(url: str) -> str:
    """config/rules.yaml with the newsroom webhook pointed at `url`, signed."""
    text = SHIPPED_RULES.read_text(encoding="utf-8")
    text = text.replace("${NEWSROOM_WEBHOOK_URL:-http://127.0.0.1:8788/hooks/newsroom}", url)
    return text.replace("${NEWSROOM_WEBHOOK_SECRET:-}", SECRET)


def generated_rules_text(count: int, url: str, seed: int = 11, firing: int | None = None) -> str:
    """The four shipped rules plus `count - 4` generated ones of the shapes users write, as YAML.

    `firing`: only the first `firing` rules (the shipped ones counted) are over the corpus's words, as without
    it; the rest are of the same shapes over words no article has (its rare words and surnames with a suffix,
    lists of their own), so that they cannot fire: what a large rule set costs for the articles most of its
    rules do not concern. The first `firing` rules are the same as those of `count=firing`."""
    rng = random.Random(seed)
    rare = compounds()
    rng.shuffle(rare)
    lists = _lists(rng, rare, "lijst")
    generated = max(0, count - len(TRIGGERS))
    normal = generated if firing is None else min(generated, max(0, firing - len(TRIGGERS)))
    quiet = random.Random(seed + 1)
    absent = [word + SILENT for word in rare]
    if normal < generated:
        lists |= _lists(quiet, absent, "stil")
    shipped_lists = SHIPPED_RULES.read_text(encoding="utf-8").split("\nlists:\n", 1)[1].split("\nwebhooks:", 1)[0]
    lines = ["version: 1", "lists:", shipped_lists.rstrip("\n")]
    for name, items in lists.items():
        lines.append(f"  {name}: [{', '.join(_q(i) for i in items)}]")
    lines += ["webhooks:", "  newsroom:", f"    url: {url}", f"    secret: {SECRET}", "    format: generic", "rules:"]
    shipped = shipped_rules_text(url).split("\nrules:\n", 1)[1]
    lines.append(shipped.rstrip("\n"))
    names = [name for name in lists if name.startswith("lijst")]
    for i in range(normal):
        lines += _generated_rule(i, rng, rare, names, LAST)
    silent_names, silent_last = [name for name in lists if name.startswith("stil")], [n + SILENT for n in LAST]
    for i in range(normal, generated):
        lines += _generated_rule(i, quiet, absent, silent_names, silent_last)
    return "\n".join(lines) + "\n"


def _lists(rng: random.Random, words: list[str], prefix: str) -> dict[str, list[str]]:
    return {
        f"{prefix}{k:03d}": [rng.choice(words) + ("*" if rng.random() < 0.3 else "") for _ in range(rng.randint(4, 8))]
        for k in range(60)
    }


SILENT = "qz"  # a suffix that no word of the corpus has: a rule over such words cannot fire


def _person(rng: random.Random, last: list[str]) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(last)}"


def _generated_rule(i: int, rng: random.Random, rare: list[str], lists: list[str], last: list[str]) -> list[str]:
    def word() -> str:
        return rng.choice(rare)

    def place() -> str:
        return rng.choice(PLACES)

    shapes: list[tuple[float, Callable[[], str]]] = [
        (0.22, word),
        (0.13, lambda: f'"{_person(rng, last)}"'),
        (0.10, lambda: word() + "*"),
        (0.03, lambda: f"*{word()}*"),
        (0.14, lambda: f"{word()} AND ({place()} OR {place()})"),
        (0.07, lambda: f"{word()} NOT {rng.choice(CONTENT)}"),
        (0.10, lambda: f'{word()} OR {word()} OR "{_person(rng, last)}"'),
        (0.05, lambda: f'"{rng.choice(last)} {word()}"~5'),
        (0.05, lambda: f"@{rng.choice(lists)} AND {place()}"),
        (0.08, lambda: f'("{rng.choice(CONTENT)} {word()}" OR {word()}*) AND NOT ({rng.choice(CONTENT)} OR {place()})'),
        (0.03, lambda: f"{rng.choice(CONTENT)} AND {word()}"),
    ]
    pick = rng.random()
    make = shapes[-1][1]
    for weight, shape in shapes:
        pick -= weight
        if pick <= 0:
            make = shape
            break
    query = make()
    rule = [f"  - name: r{i:06d}", f"    query: {_q(query)}", "    notify: [newsroom]"]
    roll = rng.random()
    if roll < 0.01:
        rule.append(f"    schedule: {_q(f'{rng.randint(0, 59)} */{rng.choice([1, 2, 4, 6])} * * *')}")
    elif roll < 0.06:
        rule.append("    realert: 6h")
    if 0.06 <= roll < 0.09 and '"' not in query and "*" not in query:
        rule.append("    stem: true")
    return rule
