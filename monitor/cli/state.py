"""`news-monitor status`, `deliveries`, `redeliver` and `webhooks`: the state store as an operator sees it.
The commands that only read create no state: before the daemon's first start they report that there is none."""

from __future__ import annotations

import enum
import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from monitor.cli.args import ConfigOption, JsonOption, open_existing_store, open_rules, open_settings, open_store
from monitor.cli.console import console, plural, shown
from monitor.errors import MonitorError

if TYPE_CHECKING:
    from monitor.store import Store

webhooks_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Webhook state.")
NO_STATE: dict[str, Any] = {"files": {}, "last_rejections": [], "outbox": {}, "webhooks": []}


class DeliveryState(enum.StrEnum):
    """The states of monitor.store.State, without importing SQLAlchemy to offer them as choices."""

    pending = "pending"
    retrying = "retrying"
    delivered = "delivered"
    dead = "dead"


def status(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Articles read and rejected, the outbox by state, each webhook's last delivery and error, the rules."""
    settings = open_settings(config)
    found = open_existing_store(config)
    report = found.status() if found is not None else dict(NO_STATE)
    try:
        ruleset = open_rules(settings.rules_file)
        report["rules"] = {"file": ruleset.path, "count": len(ruleset.rules), "names": [r.name for r in ruleset.rules]}
    except MonitorError as exc:
        report["rules"] = {"file": str(settings.rules_file), "error": str(exc)}
    if as_json:
        _print_json(report)
        return
    _print_status(report)


def _print_status(report: dict[str, Any]) -> None:
    from monitor.config.redaction import mask_text

    out = console()
    files = ", ".join(f"{k} {v}" for k, v in sorted(report["files"].items())) or "none yet"
    out.print(f"[bold]articles[/bold]  {files}")
    for row in report["last_rejections"]:
        reason = shown(row["reason"] or "")
        out.print(f"  rejected {_when(row['seen_at'])}  {shown(row['path'])}  ({row['code']}) {reason}")
    outbox = ", ".join(f"{k} {v}" for k, v in sorted(report["outbox"].items())) or "empty"
    out.print(f"[bold]outbox[/bold]    {outbox}")
    for hook in report["webhooks"]:
        reason = shown(mask_text(hook["disabled_reason"] or ""))
        state = "[red]DISABLED[/red] " + reason if hook["disabled"] else "enabled"
        name = shown(hook["name"])
        out.print(f"[bold]webhook[/bold]   {name}: {state}; last delivery {_when(hook['last_delivery_at'])}")
        if hook["last_error"]:
            out.print(f"          last error {_when(hook['last_error_at'])}: {shown(mask_text(hook['last_error']))}")
    rules = report["rules"]
    summary = rules.get("error") or f"{rules['count']} loaded: {', '.join(rules['names'])}"
    out.print(f"[bold]rules[/bold]     {shown(rules['file'])}: {shown(mask_text(summary))}")


def _print_json(data: Any) -> None:
    """State for scripts, masked as logs are: a `last_error` stored by an older version may hold a URL's secrets."""
    from monitor.config.redaction import mask_text

    console().print_json(mask_text(json.dumps(data, default=str)))


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "never"
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def list_deliveries(
    config: ConfigOption = None,
    state: Annotated[list[DeliveryState] | None, typer.Option("--state", help="Only these states.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, oldest first.")] = 1000,
    as_json: JsonOption = False,
) -> None:
    """List deliveries of the outbox (pending, retrying, delivered, dead)."""
    from rich.table import Table

    from monitor.config.redaction import mask_text

    found = open_existing_store(config)
    rows = found.deliveries([s.value for s in state] if state else None, limit) if found is not None else []
    if as_json:
        _print_json([{**asdict(d), "state": d.state.value} for d in rows])
        return
    table = Table("webhook", "kind", "rule", "state", "attempts", "last status", "last error", "due")
    table.columns.insert(0, _id_column(max((len(d.id) for d in rows), default=2)))
    for d in rows:
        table.add_row(
            d.id,
            shown(d.webhook),
            d.kind,
            shown(d.rule),
            d.state.value,
            str(d.attempts),
            str(d.last_status or "-"),
            shown(mask_text(d.last_error or "-")),
            _when(d.due_at),
        )
    console().print(table)


def _id_column(width: int) -> Any:
    """Ids are never cut, even on a narrow terminal: they are what `redeliver` takes."""
    from rich.table import Column

    return Column("id", no_wrap=True, min_width=width)


def redeliver(
    ids: Annotated[list[str] | None, typer.Argument(metavar="ID", help="Delivery ids (webhook-id).")] = None,
    all_dead: Annotated[bool, typer.Option("--all-dead", help="Every dead delivery.")] = False,
    config: ConfigOption = None,
) -> None:
    """Queue deliveries again under their original ids (a running daemon sends them within seconds).
    Exit status 1 if an id is not found (the others are queued)."""
    if not ids and not all_dead:
        raise MonitorError("name delivery ids or --all-dead")
    found = open_existing_store(config)
    if found is None:  # no state yet: nothing to queue, and nothing created
        count, missing = 0, list(dict.fromkeys(ids or []))
    elif all_dead:
        count, missing = found.requeue(None), []
    else:
        queued = {delivery_id: found.requeue([delivery_id]) for delivery_id in dict.fromkeys(ids or [])}
        count, missing = sum(queued.values()), [delivery_id for delivery_id, n in queued.items() if not n]
    console().print(f"queued {plural(count, 'delivery', 'deliveries')} again")
    if missing:
        raise MonitorError("no delivery with id " + ", ".join(missing))


@webhooks_app.command("enable")
def webhook_enable(name: str, config: ConfigOption = None) -> None:
    """Enable a webhook disabled by a 410 Gone (its held deliveries go out again)."""
    _known_webhook(name, config).set_webhook_disabled(name, False)
    console().print(f"webhook {shown(name)} enabled")


@webhooks_app.command("disable")
def webhook_disable(name: str, config: ConfigOption = None) -> None:
    """Hold a webhook's deliveries until it is enabled again."""
    _known_webhook(name, config).set_webhook_disabled(name, True, "disabled by the operator")
    console().print(f"webhook {shown(name)} disabled")


def _known_webhook(name: str, config: Path | None) -> Store:
    """The store, if `name` is a webhook of the rules file or one the store already keeps a state for."""
    from monitor.config.yamlfile import load_yaml
    from monitor.errors import ConfigError, YamlProblem

    settings = open_settings(config)
    try:
        raw = load_yaml(settings.rules_file)
    except YamlProblem as exc:
        raise ConfigError(exc.message, source=settings.rules_file) from None
    webhooks = raw.get("webhooks") if isinstance(raw, dict) else None
    opened = open_store(config)
    known = set(webhooks or {}) | {hook["name"] for hook in opened.status(recent=0)["webhooks"]}
    if name not in known:
        names = ", ".join(sorted(known)) or "none"
        raise MonitorError(f"{settings.rules_file}: no webhook {name!r} (webhooks: {names})")
    return opened
