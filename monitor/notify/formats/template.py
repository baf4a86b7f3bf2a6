"""A user's Jinja2 template file (`webhook.template`), rendered in a sandbox; the result must be JSON.

Variables: `type` (alert.matched or alert.digest), `delivery_id`, `rule`, `data` (the payload, as the
generic format sends it) and `timestamp`. Undefined names are errors, and the `bold` filter turns a
snippet's `[[hit]]` markers into a delimiter of choice. Compiled templates are cached by path and
modification time, so an edited file is picked up at the next delivery.

The environment is JSON-safe: every `{{ value }}` is written as text escaped for the inside of a JSON
string (`json_text`), so `"{{ data.article.lead }}"` stays one string whatever the article holds, and
outside quotes a string with a quote in it is invalid JSON (refused), never new keys. `tojson` (and
`safe`) output is already JSON and is written as is.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import markupsafe
from jinja2.sandbox import SandboxedEnvironment

from monitor.config.rules import Webhook
from monitor.notify.formats.text import Markup, marked, no_escape
from monitor.notify.formats.view import event_type, timestamp
from monitor.store import Delivery


def render(webhook: Webhook, delivery: Delivery) -> Any:
    if webhook.template is None:
        raise ValueError("format 'template' needs a template file: set `template:` on the webhook")
    path = webhook.template
    compiled = load_template(path)
    variables = {
        "type": event_type(delivery),
        "delivery_id": delivery.id,
        "rule": delivery.rule,
        "data": delivery.payload,
        "timestamp": timestamp(delivery),
    }
    try:
        text = compiled.render(variables)
    except Exception as exc:  # undefined names, sandbox refusals, and whatever else the template's code raises
        raise ValueError(f"template {path}: {type(exc).__name__}: {exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"template {path}: the rendered text is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc


def load_template(path: Path) -> jinja2.Template:
    """The compiled template; ValueError naming the file when it cannot be read or compiled."""
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as exc:
        raise ValueError(f"template {path}: cannot be read: {exc.strerror or exc}") from exc
    return _compile(str(path), mtime)


@lru_cache(maxsize=64)
def _compile(path: str, mtime_ns: int) -> jinja2.Template:
    try:
        source = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"template {path}: cannot be read: {exc}") from exc
    try:
        return _environment().from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise ValueError(f"template {path}:{exc.lineno}: {exc.message}") from exc


@lru_cache(maxsize=1)
def _environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=False, finalize=json_text, keep_trailing_newline=True
    )
    env.filters["bold"] = bold
    env.policies["json.dumps_kwargs"] = {"sort_keys": False, "default": _undefined}
    return env


def json_text(value: object) -> object:
    """What a `{{ value }}` writes: the value as text escaped for the inside of a JSON string (a string as
    it is, anything else as its JSON), or unchanged when it is JSON already (`tojson`, `safe`)."""
    if isinstance(value, markupsafe.Markup):
        return value
    if isinstance(value, jinja2.Undefined):
        return str(value)  # StrictUndefined raises; an `x if c` without else writes nothing
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=_undefined)
    return json.dumps(text, ensure_ascii=False)[1:-1]


def _undefined(value: object) -> object:
    """`tojson` of an undefined name: the undefined error, not a TypeError about serialising it."""
    if isinstance(value, jinja2.Undefined):
        return str(value)  # StrictUndefined raises UndefinedError here
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def bold(snippet: str, delimiter: str = "**") -> str:
    """`{{ hit.snippet | bold("*") }}`: the `[[hit]]` markers of a snippet as `*hit*`."""
    return Markup(no_escape, delimiter).render(marked(snippet))
