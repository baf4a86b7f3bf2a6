"""The `news-monitor` command: the error boundary, where every user error ends as one message on stderr
and exit status 1, never a traceback.

Commands import what they use when they run: `--help`, `--version`, `health` and `validate` start without
SQLAlchemy, httpx, watchdog or APScheduler (tests/test_cli.py checks it).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from monitor.cli import state, stories
from monitor.cli.args import ConfigOption, JsonOption, open_rules, open_settings, open_store
from monitor.cli.console import console, plural, printable, shown
from monitor.cli.db import db_app
from monitor.errors import MonitorError

if TYPE_CHECKING:
    from rich.text import Text

    from monitor.cli.evaluation import Evaluation
    from monitor.cli.receiver import Receiver
    from monitor.config.rules import RuleSet
    from monitor.config.settings import LimitsSettings, Settings
    from monitor.daemon import Daemon

app = typer.Typer(
    add_completion=True, no_args_is_help=True, rich_markup_mode=None, help="News-monitoring alert daemon."
)
app.add_typer(state.webhooks_app, name="webhooks")
app.add_typer(db_app, name="db")
BACKFILL_BATCH = 64  # files per transaction


def main() -> None:
    """The boundary: MonitorError, and the OSError of a busy port or an unreadable file, as one line."""
    try:
        app()
    except MonitorError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(_os_error(exc))


def _fail(message: str) -> None:
    from monitor.config.redaction import mask_text

    lines = "\n".join(shown(line) for line in mask_text(message).splitlines())  # a problem a line, each escaped
    console(stderr=True).print(f"[red]error:[/red] {lines}")
    sys.exit(1)


def _os_error(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"news-monitor {version('news-monitor')}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """News-monitoring alert daemon."""


def _listening(receiver: Receiver) -> Receiver:
    """Start a receiver; a busy or forbidden port is a user error."""
    try:
        return receiver.start()
    except OSError as exc:
        raise MonitorError(f"--port: cannot listen on {receiver.host}:{receiver.port}: {exc.strerror}") from None


@app.command()
def run(config: ConfigOption = None) -> None:
    """Run the daemon until SIGTERM or SIGINT."""
    import asyncio
    import gc

    gc.disable()  # until the rules are loaded and frozen (Daemon): nothing made before then is garbage
    from monitor.config.logs import configure
    from monitor.daemon import Daemon

    settings = open_settings(config)
    configure(settings.log.level, settings.log.format)
    asyncio.run(Daemon(settings).serve())


@app.command()
def demo(
    config: ConfigOption = None,
    port: Annotated[int, typer.Option(help="Port of the demo receiver on 127.0.0.1.")] = 8788,
    once: Annotated[bool, typer.Option("--once", help="Stop when the seeds' alerts have arrived.")] = False,
) -> None:
    """Run the daemon on the seeds with a local receiver that prints each alert (fresh state each time)."""
    import asyncio
    import os
    import tempfile

    from monitor.cli.receiver import Receiver
    from monitor.config.logs import configure
    from monitor.daemon import Daemon, run_until

    receiver = _listening(Receiver(port=port, on_request=_print_request))
    os.environ.setdefault("NEWSROOM_WEBHOOK_URL", f"{receiver.url}/hooks/newsroom")
    with tempfile.TemporaryDirectory(prefix="news-monitor-demo-") as state:
        throwaway = {"state": {"url": f"sqlite:///{state}/monitor.db"}, "http": {"enabled": False}}
        settings = open_settings(config, **throwaway, watch={"create_folders": True})  # its folder may be new
        configure(settings.log.level, "console")
        daemon = Daemon(settings)
        folders = ", ".join(shown(str(folder)) for folder in settings.watch.folders)
        console().print(f"[bold]demo:[/bold] watching {folders}; alerts to {receiver.url}")
        if once:
            expected = len(list(settings.watch.folders[0].glob("*.txt")))

            async def finished() -> bool:
                if not daemon.started:  # its stages (the deliverer among them) are not all there yet
                    return False
                processed = sum(v for k, v in daemon.counts.items() if k.startswith("articles_"))
                return processed >= expected and daemon.deliverer.in_flight == 0 and not await _open_deliveries(daemon)

            asyncio.run(run_until(daemon, finished))
        else:
            console().print("Drop dated .txt files into the folder to see them alerted; Ctrl-C stops.")
            asyncio.run(daemon.serve())
    receiver.stop()


def _print_request(request: Any) -> None:
    from rich.markup import escape

    from monitor.cli.receiver import summarize_request

    console().print(escape(summarize_request(request)) + "\n")


async def _open_deliveries(daemon: Daemon) -> bool:
    import asyncio

    open_states = [state.DeliveryState.pending, state.DeliveryState.retrying]
    return bool(await asyncio.to_thread(daemon.store.deliveries, open_states, 1))


@app.command()
def check(
    files: Annotated[list[Path], typer.Argument(metavar="FILE", help="Article files to try.")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Dry run: the date, the matching rules and their hits for each file, and the story it would join given
    the state store's articles of the story window. Writes no state, sends nothing. Exit status 1 if a file
    is rejected (or not found)."""
    settings = open_settings(config)
    ruleset = open_rules(settings.rules_file)
    reports = [_check_one(ruleset, path, settings.watch.max_article_bytes, settings.limits, settings) for path in files]
    if as_json:
        console().print_json(json.dumps(reports, ensure_ascii=False))
    else:
        for report in reports:
            _print_check(report)
    if any("error" in report for report in reports):
        raise typer.Exit(1)


def _print_check(report: dict[str, Any]) -> None:
    out = console()
    if "error" in report:
        reason = f"({report['code']}) {shown(report['error'])}"
        out.print(f"[bold]{shown(report['path'])}[/bold]: [red]rejected[/red] {reason}")
        return
    names = ", ".join(shown(m["rule"]) for m in report["matches"]) or "no rule"
    language = report["language"] or "none"
    out.print(f"[bold]{shown(report['path'])}[/bold]  date {report['date']}  language {language}  matches: {names}")
    for match in report["matches"]:
        count = f"  count {_shown_count(match['count'])}" if match["count"] else ""
        out.print(f"  [cyan]{shown(match['rule'])}[/cyan] fired by {shown(match['clause'])}{count}")
        for hit in match["hits"]:
            facts = f"  ({_shown_count(hit['count'])})" if hit["count"] else ""
            facts += "  negated" if hit["negated"] else ""
            out.print(_highlighted(f"    {hit['start']}-{hit['end']}  ", hit["snippet"], facts))
        if match["hits_total"] > len(match["hits"]):
            out.print(f"    … and {match['hits_total'] - len(match['hits']):,} more hits (limits.max_hits)")
    if report.get("story") is not None:
        out.print(f"  {stories.shown_preview(report['story'])}")


def _shown_count(count: dict[str, Any]) -> str:
    """`8000 (almost): "bijna achtduizend"`."""
    value = "?" if count["value"] is None else f"{count['value']:g}"
    qualifier = f" ({count['qualifier']})" if count["qualifier"] else ""
    return f"{value}{qualifier}: {shown(repr(count['text']))}"


def _highlighted(prefix: str, snippet: str, facts: str = "") -> Text:
    from rich.text import Text

    before, _, rest = printable(snippet).partition("[[")
    hit, _, after = rest.partition("]]")
    return Text(prefix + before) + Text(hit, style="bold yellow") + Text(after) + Text(facts, style="magenta")


def _check_one(
    ruleset: RuleSet, path: Path, max_bytes: int, limits: LimitsSettings, settings: Settings | None = None
) -> dict[str, Any]:
    from monitor.errors import ArticleError
    from monitor.ingest.articles import read_article
    from monitor.matching.language import article_language

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
        "language": matches[0].language if matches else article_language(article.path, article.text),
        "matches": [
            {
                "rule": m.rule,
                "clause": m.clause,
                "count": None if m.count is None else m.count.as_json(),
                "hits_total": m.hits_total,
                "hits": [h.as_json() for h in m.hits],
            }
            for m in matches
        ],
        "story": stories.preview(settings, article, [m.rule for m in matches]) if settings is not None else None,
    }


@app.command()
def validate(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Check settings and rules (and run the rules' examples). Exit status 1 on any problem."""
    from monitor.cli.evaluation import run_examples
    from monitor.errors import RulesError

    try:
        settings = open_settings(config)
        settings.watch.check_folders()
        ruleset = open_rules(settings.rules_file)
        if problems := settings.delivery.lease_problems(ruleset.webhooks, settings.rules_file):
            raise RulesError(problems)
    except MonitorError as exc:
        if not as_json:
            raise
        _print_validation({"ok": False, "problems": str(exc).splitlines(), "failed_examples": []})
        raise typer.Exit(1) from None
    failures = [r for r in run_examples(ruleset) if not r.passed]
    if as_json:
        found = [_example(f) for f in failures]
        counts = {"rules": len(ruleset.rules), "webhooks": len(ruleset.webhooks)}
        _print_validation({"ok": not failures, **counts, "problems": [], "failed_examples": found})
    for failure in [] if as_json else failures:
        what = "should match" if failure.expected else "should not match"
        console(stderr=True).print(shown(f"{ruleset.path}: rule {failure.rule!r}: example {what}: {failure.text!r}"))
    if failures:
        raise typer.Exit(1)
    if not as_json:
        console().print(f"ok: {plural(len(ruleset.rules), 'rule')}, {plural(len(ruleset.webhooks), 'webhook')}")


def _print_validation(report: dict[str, Any]) -> None:
    from monitor.config.redaction import mask_text

    console().print_json(mask_text(json.dumps(report, ensure_ascii=False)))


def _example(result: Any) -> dict[str, Any]:
    return {"rule": result.rule, "text": result.text, "should_match": result.expected}


@app.command("test-rules")
def test_rules(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Run every rule's examples; a table with pass/fail per rule. Exit status 1 if any fails."""
    from rich.table import Table

    from monitor.cli.evaluation import run_examples

    ruleset = open_rules(open_settings(config).rules_file)
    results = run_examples(ruleset)
    rows: list[dict[str, Any]] = []
    for rule in ruleset.rules:
        mine = [r for r in results if r.rule == rule.name]
        failed = [_example(r) for r in mine if not r.passed]
        rows.append({"rule": rule.name, "examples": len(mine), "passed": len(mine) - len(failed), "failed": failed})
    if as_json:
        console().print_json(json.dumps(rows, ensure_ascii=False))
    else:
        table = Table("rule", "examples", "passed", "failed")
        for row in rows:
            lines = "\n".join(
                f"{'should match' if f['should_match'] else 'should not match'}: {shown(f['text'])}"
                for f in row["failed"]
            )
            table.add_row(shown(row["rule"]), str(row["examples"]), str(row["passed"]), lines or "-")
        console().print(table)
    if any(not r.passed for r in results):
        raise typer.Exit(1)


@app.command()
def backfill(
    folder: Annotated[
        Path, typer.Argument(metavar="FOLDER", help="A folder of existing article files (with subfolders).")
    ],
    config: ConfigOption = None,
    no_send: Annotated[bool, typer.Option("--no-send", help="Record matches as alerts, deliver nothing.")] = False,
    since: Annotated[
        datetime | None,
        typer.Option(metavar="YYYY-MM-DD", help="Only articles dated on or after this day.", formats=["%Y-%m-%d"]),
    ] = None,
) -> None:
    """Run existing files through the pipeline. Resumable: files the ledger has seen are skipped.
    A running daemon delivers what this queues (or run the daemon afterwards)."""
    from rich.progress import Progress

    from monitor.config.logs import configure
    from monitor.ingest.pipeline import Pipeline
    from monitor.ingest.storyline import Storyline
    from monitor.ingest.watch import scan

    settings = open_settings(config)
    configure("WARNING", settings.log.format)
    if not folder.is_dir():
        raise MonitorError(f"{folder}: not a folder")
    ruleset = open_rules(settings.rules_file)
    store = open_store(config)
    options = settings.stories
    stories = Storyline(options.window.total_seconds(), options.threshold) if options.enabled else None
    pipeline = Pipeline(
        store,
        lambda: ruleset,
        settings.watch.max_article_bytes,
        settings.limits,
        roots=[folder],
        stories=stories,
        quiet=options.quiet.total_seconds(),
    )
    paths = sorted(entry.path for entry in scan([folder], settings.watch.suffixes))
    counts: dict[str, int] = {}
    with Progress(console=console(stderr=True), transient=False) as progress:
        task = progress.add_task("backfill", total=len(paths))
        for start in range(0, len(paths), BACKFILL_BATCH):
            batch = paths[start : start + BACKFILL_BATCH]
            for result in pipeline.process_many(batch, send=not no_send, since=since.date() if since else None):
                counts[result.outcome] = counts.get(result.outcome, 0) + 1
                counts["alerts"] = counts.get("alerts", 0) + result.alerts
            progress.advance(task, len(batch))
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    console().print(f"backfill of {plural(len(paths), 'file')}: {summary}")


app.command()(state.status)
app.command("deliveries")(state.list_deliveries)
app.command("stories")(stories.list_stories)
app.command()(state.redeliver)


@app.command()
def health(
    config: ConfigOption = None,
    url: Annotated[
        str | None,
        typer.Option(
            metavar="URL", help="The endpoint to ask; default /healthz on the settings' http.host and http.port."
        ),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds.")] = 5.0,
) -> None:
    """Exit 0 if the daemon's health endpoint answers 200 (for HEALTHCHECK and probes), else 1."""
    import httpx

    url = url or _health_url(config)
    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.HTTPError as exc:
        raise MonitorError(f"{url}: {type(exc).__name__}: {exc}") from None
    if response.status_code != 200:
        raise MonitorError(f"{url}: HTTP {response.status_code}: {response.text.strip()}")
    console().print(shown(response.text.strip()))


def _health_url(config: Path | None) -> str:
    """The daemon's own health endpoint, from the settings it runs with (http.host, http.port)."""
    http = open_settings(config).http
    if not http.enabled:
        raise MonitorError("http.enabled is false: the daemon serves no health endpoint to ask")
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(http.host, http.host)
    return f"http://{f'[{host}]' if ':' in host else host}:{http.port}/healthz"


@app.command()
def receive(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8788,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """A webhook receiver that prints each alert, in any format: point a webhook at http://127.0.0.1:PORT/."""
    import threading

    from monitor.cli.receiver import Receiver

    receiver = _listening(Receiver(host=host, port=port, on_request=_print_request))
    console().print(f"listening on {receiver.url}; Ctrl-C stops")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        receiver.stop()


def _print_grouping(result: Evaluation) -> None:
    """The story grouping's scores, then every split labelled story and every merging predicted story."""
    from rich.table import Table

    grouping = result.grouping
    assert grouping is not None

    def ratio(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    table = Table(
        "stories", "labelled", "predicted", "pairs", "precision", "recall", "B-cubed P", "B-cubed R", "B-cubed F1"
    )
    table.add_row(
        f"{grouping.articles} articles",
        str(grouping.stories_labelled),
        str(grouping.stories_predicted),
        f"{grouping.pairs_right}/{grouping.pairs_predicted} of {grouping.pairs_labelled}",
        ratio(grouping.precision),
        ratio(grouping.recall),
        ratio(grouping.bcubed_precision),
        ratio(grouping.bcubed_recall),
        ratio(grouping.bcubed_f1),
    )
    out = console()
    out.print(table)
    for miss in result.grouping_misses:
        side = "labelled story" if miss.kind == "split" else "predicted story"
        out.print(f"[bold]{miss.kind}[/bold] {side} [cyan]{shown(miss.story)}[/cyan]:")
        for other, files in miss.parts:
            out.print(f"    {shown(other)}: {shown(', '.join(files))}")


@app.command()
def evaluate(
    folder: Annotated[Path, typer.Argument(metavar="FOLDER", help="Folder of labelled article files.")],
    labels: Annotated[
        Path,
        typer.Option(
            "--labels",
            metavar="CSV",
            help="CSV: file, one 0/1 column per rule; optional count_RULE, negated_RULE, story.",
        ),
    ],
    rules: Annotated[
        Path | None, typer.Option("--rules", metavar="FILE", help="Rules file; default the settings' rules_file.")
    ] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Score the rules on labelled articles: precision, recall and F1 per rule, and every miss with its hits;
    with a `story` column, the story grouping's pairwise and B-cubed precision and recall."""
    from rich.table import Table

    from monitor.cli.evaluation import evaluate as score

    result = score(open_rules(rules or open_settings(config).rules_file), folder, labels)
    if as_json:
        console().print_json(json.dumps(result.to_json(), ensure_ascii=False))
        return
    table = Table("rule", "labelled", "fired", "TP", "FP", "FN", "precision", "recall", "F1", "counts", "negation")
    for row in result.rows():
        table.add_row(*(shown(cell) for cell in row))
    out = console()
    out.print(f"{result.articles} articles in {shown(str(folder))}")
    if result.scores:
        out.print(table)
    if result.grouping is not None:
        _print_grouping(result)
    _print_misses(result)


def _print_misses(result: Evaluation) -> None:
    """Every false positive, false negative, wrong count, wrong negation and negated hit, with its hits."""
    out = console()
    for miss in result.misses:
        kind = miss.kind.replace("_", " ")
        if miss.kind == "false_positive":
            why = f"fired by {miss.clause}"
        elif miss.kind == "false_negative":
            why = "near misses:" if miss.hits else "no term occurs"
        elif miss.kind == "wrong_count":
            why = f"labelled {miss.expected}, found {miss.found}"
        elif miss.kind == "wrong_negation":
            why = f"labelled negated={miss.expected}, every hit negated={miss.found}"
        else:
            why = "denied hits:"
        out.print(f"[bold]{kind}[/bold] [cyan]{shown(miss.rule)}[/cyan] {shown(miss.file)}: {shown(why)}")
        for hit in miss.hits:
            facts = f"  ({_shown_count(asdict(hit.count))})" if hit.count else ""
            out.print(
                _highlighted(f"    {hit.start}-{hit.end}  ", hit.snippet, facts + ("  negated" if hit.negated else ""))
            )
