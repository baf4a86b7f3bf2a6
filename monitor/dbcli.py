"""`news-monitor db`: the state store's schema revision, and upgrading it (Alembic, monitor/migrations).

The daemon and the other commands give an empty database the current schema by themselves; a database
at an older revision is refused until `news-monitor db upgrade` has run once with the same settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from monitor.redaction import redact_url
from monitor.settings import load_settings
from monitor.store import COMMAND_CONNECTIONS, Store

db_app = typer.Typer(no_args_is_help=True, help="The state store's schema: show its revision, upgrade it.")
out = Console(highlight=False)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Settings file [default: config/monitor.yaml]", envvar="MONITOR_CONFIG"),
]


def _store(config: Path | None) -> Store:
    state = load_settings(config).state
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
    store = _store(config)
    try:
        found = store.revision()
    finally:
        store.close()
    from monitor import migrations  # Alembic: only for the commands that need it

    head = migrations.head()
    if found is None or found == head:
        state = "up to date" if found else "empty (the daemon creates the schema at start)"
    elif migrations.known(found):
        state = "older: run `news-monitor db upgrade`"
    else:
        state = "newer than this news-monitor"
    out.print(
        f"{redact_url(store.url)}: revision {found or 'none'} (this news-monitor needs {head}): {state}", soft_wrap=True
    )
    if found is not None and found != head:
        raise typer.Exit(1)
