"""The `news-monitor` command. User errors end here as a message on stderr and exit status 1."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from monitor.articles import read_article
from monitor.dbcli import db_app
from monitor.errors import ArticleError, MonitorError, RulesError
from monitor.logs import configure
from monitor.redaction import mask_text
from monitor.rules import RuleSet, load_rules
from monitor.settings import LimitsSettings, Settings, load_settings
from monitor.store import COMMAND_CONNECTIONS, State, Store

app = typer.Typer(add_completion=False, no_args_is_help=True, help="News-monitoring alert daemon.")
webhooks_app = typer.Typer(no_args_is_help=True, help="Webhook state.")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(db_app, name="db")
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
BACKFILL_BATCH = 64  # files per transaction

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Settings file [default: config/monitor.yaml]", envvar="MONITOR_CONFIG"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def main() -> None:
    try:
        app()
    except MonitorError as exc:
        err.print(f"[red]error:[/red] {escape(mask_text(str(exc)))}")
        sys.exit(1)


def _settings(config: Path | None, **overrides: object) -> Settings:
    return load_settings(config, **overrides)


@app.command()
def run(config: ConfigOption = None) -> None:
    """Run the daemon until SIGTERM or SIGINT."""
    gc.disable()  # until the rules are loaded and frozen (Daemon): nothing made before then is garbage
    from monitor.daemon import Daemon

    settings = _settings(config)
    configure(settings.log.level, settings.log.format)
    asyncio.run(Daemon(settings).serve())


@app.command()
def demo(
    config: ConfigOption = None,
    port: Annotated[int, typer.Option(help="Port of the demo receiver on 127.0.0.1.")] = 8788,
    once: Annotated[bool, typer.Option("--once", help="Stop when the seeds' alerts have arrived.")] = False,
) -> None:
    """Run the daemon on the seeds with a local receiver that prints each alert (fresh state each time)."""
    from monitor.daemon import Daemon, run_until
    from monitor.receiver import Receiver, describe

    receiver = Receiver(port=port, on_request=lambda r: out.print(escape(describe(r)) + "\n")).start()
    os.environ.setdefault("NEWSROOM_WEBHOOK_URL", f"{receiver.url}/hooks/newsroom")
    with tempfile.TemporaryDirectory(prefix="news-monitor-demo-") as state:
        settings = _settings(config, state={"url": f"sqlite:///{state}/monitor.db"}, http={"enabled": False})
        configure(settings.log.level, "console")
        daemon = Daemon(settings)
        out.print(
            f"[bold]demo:[/bold] watching {', '.join(map(str, settings.watch.folders))}; alerts to {receiver.url}"
        )
        if once:
            expected = len(list(settings.watch.folders[0].glob("*.txt")))

            async def finished() -> bool:
                processed = sum(v for k, v in daemon.counts.items() if k.startswith("articles_"))
                return processed >= expected and daemon.deliverer.in_flight == 0 and not await _open_deliveries(daemon)

            asyncio.run(run_until(daemon, finished))
        else:
            out.print("Drop dated .txt files into the folder to see them alerted; Ctrl-C stops.")
            asyncio.run(daemon.serve())
    receiver.stop()


async def _open_deliveries(daemon: object) -> bool:
    store: Store = daemon.store  # type: ignore[attr-defined]
    return bool(await asyncio.to_thread(store.deliveries, [State.pending, State.retrying], 1))


@app.command()
def check(
    files: Annotated[list[Path], typer.Argument(help="Article files to try.")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Dry run: the date, the matching rules and their hits for each file. Writes no state, sends nothing."""
    settings = _settings(config)
    ruleset = load_rules(settings.rules_file)
    reports = [_check_one(ruleset, path, settings.watch.max_article_bytes, settings.limits) for path in files]
    if as_json:
        out.print_json(json.dumps(reports, ensure_ascii=False))
        return
    for report in reports:
        if "error" in report:
            reason = f"({report['code']}) {escape(report['error'])}"
            out.print(f"[bold]{escape(report['path'])}[/bold]: [red]rejected[/red] {reason}")
            continue
        names = ", ".join(m["rule"] for m in report["matches"]) or "no rule"
        out.print(f"[bold]{escape(report['path'])}[/bold]  date {report['date']}  matches: {names}")
        for match in report["matches"]:
            out.print(f"  [cyan]{match['rule']}[/cyan] fired by {escape(match['clause'])}")
            for hit in match["hits"]:
                out.print(_highlighted(f"    {hit['start']}-{hit['end']}  ", hit["snippet"]))
            if match["hits_total"] > len(match["hits"]):
                out.print(f"    … and {match['hits_total'] - len(match['hits']):,} more hits (limits.max_hits)")


def _highlighted(prefix: str, snippet: str) -> Text:
    before, _, rest = snippet.partition("[[")
    hit, _, after = rest.partition("]]")
    return Text(prefix + before) + Text(hit, style="bold yellow") + Text(after)


def _check_one(ruleset: RuleSet, path: Path, max_bytes: int, limits: LimitsSettings) -> dict[str, Any]:
    try:
        article = read_article(path, max_bytes)
        matches = ruleset.engine.match(
            article, max_hits=limits.max_hits, hit_chars=limits.hit_chars, budget=limits.match_budget
        )
    except ArticleError as exc:
        return {"path": str(path), "error": exc.reason, "code": exc.code}
    return {
        "path": str(path),
        "date": article.date.isoformat(),
        "content_hash": article.content_hash,
        "matches": [
            {"rule": m.rule, "clause": m.clause, "hits_total": m.hits_total, "hits": [asdict(h) for h in m.hits]}
            for m in matches
        ],
    }


@app.command()
def validate(config: ConfigOption = None) -> None:
    """Check settings and rules (and run the rules' examples). Exit status 1 on any problem."""
    from monitor.evaluation import run_examples

    settings = _settings(config)
    ruleset = load_rules(settings.rules_file)
    if problems := settings.delivery.lease_problems(ruleset.webhooks, settings.rules_file):
        raise RulesError(problems)
    failures = [r for r in run_examples(ruleset) if not r.passed]
    for failure in failures:
        what = "should match" if failure.expected else "should not match"
        err.print(f"{ruleset.path}: rule {failure.rule!r}: example {what}: {failure.text!r}")
    if failures:
        raise typer.Exit(1)
    out.print(f"ok: {len(ruleset.rules)} rules, {len(ruleset.webhooks)} webhooks")


@app.command("test-rules")
def test_rules(config: ConfigOption = None) -> None:
    """Run every rule's examples; a table with pass/fail per rule. Exit status 1 if any fails."""
    from monitor.evaluation import run_examples

    ruleset = load_rules(_settings(config).rules_file)
    results = run_examples(ruleset)
    table = Table("rule", "examples", "passed", "failed")
    for rule in ruleset.rules:
        mine = [r for r in results if r.rule == rule.name]
        failed = [r for r in mine if not r.passed]
        table.add_row(
            rule.name,
            str(len(mine)),
            str(len(mine) - len(failed)),
            "\n".join(f"{'should match' if f.expected else 'should not match'}: {escape(f.text)}" for f in failed)
            or "-",
        )
    out.print(table)
    if any(not r.passed for r in results):
        raise typer.Exit(1)


@app.command()
def backfill(
    folder: Annotated[Path, typer.Argument(help="A folder of existing article files (with subfolders).")],
    config: ConfigOption = None,
    no_send: Annotated[bool, typer.Option("--no-send", help="Record matches as alerts, deliver nothing.")] = False,
    since: Annotated[
        datetime | None, typer.Option(help="Only articles dated on or after this day.", formats=["%Y-%m-%d"])
    ] = None,
) -> None:
    """Run existing files through the pipeline. Resumable: files the ledger has seen are skipped.
    A running daemon delivers what this queues (or run the daemon afterwards)."""
    from rich.progress import Progress

    from monitor.pipeline import Pipeline
    from monitor.watch import scan

    settings = _settings(config)
    configure("WARNING", settings.log.format)
    if not folder.is_dir():
        raise MonitorError(f"{folder}: not a folder")
    ruleset = load_rules(settings.rules_file)
    store = _store(config)
    pipeline = Pipeline(store, lambda: ruleset, settings.watch.max_article_bytes, settings.limits, roots=[folder])
    paths = sorted(entry.path for entry in scan([folder], settings.watch.suffixes))
    counts: dict[str, int] = {}
    with Progress(console=err, transient=False) as progress:
        task = progress.add_task("backfill", total=len(paths))
        for start in range(0, len(paths), BACKFILL_BATCH):
            batch = paths[start : start + BACKFILL_BATCH]
            for result in pipeline.process_many(batch, send=not no_send, since=since.date() if since else None):
                counts[result.outcome] = counts.get(result.outcome, 0) + 1
                counts["alerts"] = counts.get("alerts", 0) + result.alerts
            progress.advance(task, len(batch))
    out.print(f"backfill of {len(paths)} files: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


def _store(config: Path | None) -> Store:
    state = _settings(config).state
    store = Store(state.url, state.postgres, COMMAND_CONNECTIONS)
    store.create()
    return store


@app.command()
def status(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Articles read and rejected, the outbox by state, each webhook's last delivery and error, the rules."""
    settings = _settings(config)
    report = _store(config).status()
    try:
        ruleset = load_rules(settings.rules_file)
        report["rules"] = {"file": ruleset.path, "count": len(ruleset.rules), "names": [r.name for r in ruleset.rules]}
    except MonitorError as exc:
        report["rules"] = {"file": str(settings.rules_file), "error": str(exc)}
    if as_json:
        _print_json(report)
        return
    files = ", ".join(f"{k} {v}" for k, v in sorted(report["files"].items())) or "none yet"
    out.print(f"[bold]articles[/bold]  {files}")
    for row in report["last_rejections"]:
        out.print(
            f"  rejected {_when(row['seen_at'])}  {escape(row['path'])}  ({row['code']}) {escape(row['reason'] or '')}"
        )
    outbox = ", ".join(f"{k} {v}" for k, v in sorted(report["outbox"].items())) or "empty"
    out.print(f"[bold]outbox[/bold]    {outbox}")
    for hook in report["webhooks"]:
        reason = escape(mask_text(hook["disabled_reason"] or ""))
        state = "[red]DISABLED[/red] " + reason if hook["disabled"] else "enabled"
        out.print(f"[bold]webhook[/bold]   {hook['name']}: {state}; last delivery {_when(hook['last_delivery_at'])}")
        if hook["last_error"]:
            out.print(f"          last error {_when(hook['last_error_at'])}: {escape(mask_text(hook['last_error']))}")
    rules = report["rules"]
    summary = rules.get("error") or f"{rules['count']} loaded: {', '.join(rules['names'])}"
    out.print(f"[bold]rules[/bold]     {escape(rules['file'])}: {escape(mask_text(summary))}")


def _print_json(data: Any) -> None:
    """State for scripts, masked as logs are: a `last_error` stored by an older version may hold a URL's secrets."""
    out.print_json(mask_text(json.dumps(data, default=str)))


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "never"
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@app.command("deliveries")
def list_deliveries(
    config: ConfigOption = None,
    state: Annotated[list[State] | None, typer.Option("--state", help="Only these states.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, oldest first.")] = 1000,
    as_json: JsonOption = False,
) -> None:
    """List deliveries of the outbox (pending, retrying, delivered, dead)."""
    rows = _store(config).deliveries([s.value for s in state] if state else None, limit)
    if as_json:
        _print_json([{**asdict(d), "state": d.state.value} for d in rows])
        return
    table = Table("id", "webhook", "kind", "rule", "state", "attempts", "last status", "last error", "due")
    for d in rows:
        table.add_row(
            d.id,
            d.webhook,
            d.kind,
            d.rule,
            d.state.value,
            str(d.attempts),
            str(d.last_status or "-"),
            escape(mask_text(d.last_error or "-")),
            _when(d.due_at),
        )
    out.print(table)


@app.command()
def redeliver(
    ids: Annotated[list[str] | None, typer.Argument(help="Delivery ids (webhook-id).")] = None,
    all_dead: Annotated[bool, typer.Option("--all-dead", help="Every dead delivery.")] = False,
    config: ConfigOption = None,
) -> None:
    """Queue deliveries again under their original ids (a running daemon sends them within seconds)."""
    if not ids and not all_dead:
        raise MonitorError("name delivery ids or --all-dead")
    count = _store(config).requeue(None if all_dead else ids)
    out.print(f"queued {count} deliveries again")


@webhooks_app.command("enable")
def webhook_enable(name: str, config: ConfigOption = None) -> None:
    """Enable a webhook disabled by a 410 Gone (its held deliveries go out again)."""
    _store(config).set_webhook_disabled(name, False)
    out.print(f"webhook {name} enabled")


@webhooks_app.command("disable")
def webhook_disable(name: str, config: ConfigOption = None) -> None:
    """Hold a webhook's deliveries until it is enabled again."""
    _store(config).set_webhook_disabled(name, True, "disabled by the operator")
    out.print(f"webhook {name} disabled")


@app.command()
def health(
    url: Annotated[str, typer.Option(help="The endpoint to ask.")] = "http://127.0.0.1:8787/healthz",
    timeout: Annotated[float, typer.Option(help="Seconds.")] = 5.0,
) -> None:
    """Exit 0 if the daemon's health endpoint answers 200 (for HEALTHCHECK and probes), else 1."""
    import httpx

    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.HTTPError as exc:
        raise MonitorError(f"{url}: {type(exc).__name__}: {exc}") from None
    if response.status_code != 200:
        raise MonitorError(f"{url}: HTTP {response.status_code}: {response.text.strip()}")
    out.print(response.text.strip())


@app.command()
def receive(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8788,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """A webhook receiver that prints each alert: point a webhook at http://127.0.0.1:PORT/."""
    from monitor.receiver import Receiver, describe

    receiver = Receiver(host=host, port=port, on_request=lambda r: out.print(escape(describe(r)) + "\n")).start()
    out.print(f"listening on {receiver.url}; Ctrl-C stops")
    try:
        import threading

        threading.Event().wait()
    except KeyboardInterrupt:
        receiver.stop()


@app.command()
def evaluate(
    folder: Annotated[Path, typer.Argument(help="Folder of labelled article files.")],
    labels: Annotated[Path, typer.Option("--labels", help="CSV: file, then one 0/1 column per rule.")],
    rules: Annotated[Path | None, typer.Option("--rules", help="Rules file [default: from the settings]")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Score the rules on labelled articles: precision, recall and F1 per rule, and every miss with its hits."""
    from monitor.evaluation import evaluate as score

    result = score(load_rules(rules or _settings(config).rules_file), folder, labels)
    if as_json:
        out.print_json(json.dumps(result.to_json(), ensure_ascii=False))
        return
    table = Table("rule", "labelled", "fired", "TP", "FP", "FN", "precision", "recall", "F1")
    for row in result.rows():
        table.add_row(*row)
    out.print(f"{result.articles} articles in {folder}")
    out.print(table)
    for miss in result.misses:
        kind = "false positive" if miss.kind == "false_positive" else "false negative"
        why = f"fired by {miss.clause}" if miss.clause else ("near misses:" if miss.hits else "no term occurs")
        out.print(f"[bold]{kind}[/bold] [cyan]{miss.rule}[/cyan] {escape(miss.file)}: {escape(why)}")
        for hit in miss.hits:
            out.print(_highlighted(f"    {hit.start}-{hit.end}  ", hit.snippet))
