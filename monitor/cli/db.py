"""`news-monitor db`: the state store's schema revision, upgrading it (Alembic, monitor/store/migrations), and
pruning it by the retention settings (monitor/store/retention.py, as the daemon does every `prune_interval`).

The daemon and the other commands give an empty database the current schema by themselves; a database
at an older revision is refused until `news-monitor db upgrade` has run once with the same settings.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from monitor.cli.args import ConfigOption, no_state_yet, open_rules, open_settings
from monitor.cli.console import LazyConsole as Console  # rich is imported when a command prints
from monitor.config.redaction import redact_url

if TYPE_CHECKING:  # imported when a command runs: `news-monitor --help` needs neither pydantic nor SQLAlchemy
    from monitor.store import Store

db_app = typer.Typer(
    no_args_is_help=True, help="The state store: show its schema revision, upgrade it, prune it by retention."
)
out = Console(highlight=False)


def _store(config: Path | None) -> Store:
    from monitor.store import COMMAND_CONNECTIONS, Store

    state = open_settings(config).state
    return Store(state.url, state.postgres, COMMAND_CONNECTIONS)


@db_app.command()
def upgrade(
    config: ConfigOption = None,
    revision: Annotated[str, typer.Option(help="The revision to upgrade to.")] = "head",
) -> None:
    """Upgrade the schema of the state store (state.url) to this news-monitor's revision; safe to repeat."""
    store = _store(config)
    try:
        before, after = store.upgrade(revision)
    finally:
        store.close()
    where = redact_url(store.url)
    if before == after:
        out.print(f"{where}: schema already at revision {after}", soft_wrap=True)
    else:
        out.print(f"{where}: schema upgraded from revision {before or 'none (empty)'} to {after}", soft_wrap=True)


@db_app.command()
def current(config: ConfigOption = None) -> None:
    """Show the schema revision of the state store and the one this news-monitor needs. Exit 1 if they differ."""
    url = open_settings(config).state.url
    found = None if no_state_yet(url) else _revision(config)  # before the first start: no file is made
    from monitor.store import migrations  # Alembic: only for the commands that need it

    head = migrations.head()
    if found is None or found == head:
        state = "up to date" if found else "empty (the daemon creates the schema at start)"
    elif migrations.known(found):
        state = "older: run `news-monitor db upgrade`"
    else:
        state = "newer than this news-monitor"
    out.print(
        f"{redact_url(url)}: revision {found or 'none'} (this news-monitor needs {head}): {state}", soft_wrap=True
    )
    if found is not None and found != head:
        raise typer.Exit(1)


def _revision(config: Path | None) -> str | None:
    store = _store(config)
    try:
        return store.revision()
    finally:
        store.close()


@db_app.command()
def prune(
    config: ConfigOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")] = False,
) -> None:
    """Delete what `state.retention` lets go (as the daemon does every prune_interval); prints rows per table."""
    from monitor.store import COMMAND_CONNECTIONS, Store
    from monitor.store.retention import TABLES, longest_realert
    from monitor.store.retention import prune as prune_store

    settings = open_settings(config)
    realert = longest_realert(open_rules(settings.rules_file))  # alerts outlive the longest realert window
    where, started = redact_url(settings.state.url), time.monotonic()
    if no_state_yet(settings.state.url):  # before the first start: nothing to prune, and no file is made
        counts: dict[str, int] | None = dict.fromkeys(TABLES, 0)
    else:
        store = Store(settings.state.url, settings.state.postgres, COMMAND_CONNECTIONS)
        try:
            store.create()
            counts = prune_store(
                store,
                settings.state.retention,
                settings.watch.folders,
                realert,
                dry_run=dry_run,
                stories=settings.stories.window,
            )
        finally:
            store.close()
    if counts is None:
        out.print(f"{where}: another replica is pruning; nothing done", soft_wrap=True)
        return
    verb = "would delete" if dry_run else "deleted"
    out.print(f"{where}: {verb} (in {time.monotonic() - started:.1f}s)", soft_wrap=True)
    for table in TABLES:
        out.print(f"  {table:<14} {counts[table]:>10,}")
