"""A hostile article through the real daemon (issue 13): one webhook per format on a real receiver, the
bodies as received show the article's links, mentions, markup and JSON breakers as text.

Failed on the code before the fix: Teams sent `[Reset je wachtwoord](https://evil.example/login)` and
`**URGENT**` as they were, Mattermost sent `@alice` and `~town-square` as live mentions, Slack's mrkdwn
was not `verbatim` and its header held `<!here>`, and a template's `"{{ data.article.lead }}"` let the
lead add the keys `link_names` and `z`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from monitor.cli.receiver import Receiver
from tests.hostile import WJ, hostile_problems

pytestmark = pytest.mark.e2e

FORMATS = ("generic", "slack", "discord", "mattermost", "teams", "template")
NAME = "**URGENT** [x](javascript:alert) @alice ~town-square <!here>.txt"
ARTICLE = """date 2022-01-07
[Reset je wachtwoord](https://evil.example/login) hoogverraad **URGENT** X", "link_names": 1, "z": "
@alice @devs @channel ~town-square hoogverraad @everyone @here <!channel> <@U123> <#C1>
<https://evil.example|click> hoogverraad <img src=x> ![pixel](https://evil.example/p.png)
- lijst
1. item hoogverraad `code` _schuin_ # kop {{DATE(2024-05-01T10:00:00Z)}}
"""  # every part within 60 characters of a hit, so it is in a hit's snippet as well as in the lead
# A template as a user writes one: `tojson` for whole values, a bare value between quotes.
TEMPLATE = """{
  "title": {{ (rule ~ ": " ~ data.article.path) | tojson }},
  "lead": "{{ data.article.lead }}",
  "hits": {{ data.hits | map(attribute="snippet") | list | tojson }}
}
"""


def hostile_rules(url: str, template: Path) -> dict[str, Any]:
    webhooks = {fmt: {"url": f"{url}/{fmt}", "format": fmt} for fmt in FORMATS}
    webhooks["template"]["template"] = str(template)
    return {"version": 1, "webhooks": webhooks, "rules": [{"name": "hoogverraad", "query": "*hoogverraad*"}]}


def test_a_hostile_article_reaches_every_format_as_text(receiver: Receiver, daemon_factory, tmp_path: Path) -> None:
    template = tmp_path / "chat.json.j2"
    template.write_text(TEMPLATE, encoding="utf-8")
    daemon = daemon_factory(hostile_rules(receiver.url, template)).start()
    temporary = daemon.watched / ".hostile.part"
    temporary.write_text(ARTICLE, encoding="utf-8")
    temporary.replace(daemon.watched / NAME)
    assert receiver.wait_for(lambda got: len(got) >= len(FORMATS), timeout=30), daemon.log.read_text()[-3000:]
    daemon.wait_settled([NAME])
    assert daemon.stop() == 0
    bodies = {request.path.strip("/"): request.json() for request in receiver.received}
    assert sorted(bodies) == sorted(FORMATS)
    problems = {fmt: hostile_problems(fmt, body) for fmt, body in bodies.items()}
    assert problems == {fmt: [] for fmt in FORMATS}
    lead = bodies["generic"]["data"]["article"]["lead"]
    assert 'X", "link_names": 1, "z": "' in lead, "generic sends the text as it is, JSON-encoded"
    assert bodies["template"]["lead"] == lead, "the template's quoted lead is that one string"
    assert all(
        block["text"]["text"].startswith(
            f"hoogverraad: **URGENT** [x](javascript:alert) @alice ~town-square <{WJ}!here>"
        )
        for block in bodies["slack"]["blocks"]
        if block["type"] == "header"
    )
    shown = {fmt: json.dumps(body, ensure_ascii=False).replace(WJ, "") for fmt, body in bodies.items()}
    for fmt in ("discord", "mattermost", "teams"):
        assert "Reset je wachtwoord" in shown[fmt] and "evil.example" in shown[fmt], f"{fmt} shows the text"
