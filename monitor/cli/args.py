"""What the commands share: the `--config` and `--json` options, and the settings and state store they open.
Light to import: pydantic and SQLAlchemy come in when a command calls `settings()` or `store()`."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from monitor.config.rules import RuleSet
    from monitor.config.settings import Settings
    from monitor.store import Store

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        metavar="FILE",
        help="Settings file; default config/monitor.yaml.",
        envvar="MONITOR_CONFIG",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def open_settings(config: Path | None, **overrides: object) -> Settings:
    from pydantic_settings import SettingsError

    from monitor.config.settings import load_settings
    from monitor.errors import ConfigError

    try:
        return load_settings(config, **overrides)
    except SettingsError as exc:  # a value pydantic-settings could not even parse, before any validation
        raise ConfigError(_unparsed(exc)) from None


def _unparsed(exc: Exception) -> str:
    """Which variables (or .env) held the value that could not be parsed, and how lists are written."""
    found = re.search(r'field "(\w+)" from source "(\w+)"', str(exc))
    field, source = found.groups() if found else ("", "")
    prefix = f"MONITOR_{field.upper()}"
    names = sorted(k for k in os.environ if k.upper() == prefix or k.upper().startswith(prefix + "__"))
    where = {"EnvSettingsSource": ", ".join(names) or prefix, "DotEnvSettingsSource": f".env ({prefix}...)"}
    reason = f" ({exc.__cause__})" if exc.__cause__ else ""
    return (
        f"{where.get(source, source or 'settings')}: cannot parse the value of {field or 'a setting'}{reason};"
        f" a list or table is written as JSON, e.g. MONITOR_WATCH__FOLDERS='[\"inbox\"]'"
    )


def open_rules(path: Path | str) -> RuleSet:
    """The rules file loaded as the daemon loads it: its webhooks' template files checked too."""
    from monitor.config.rules import load_rules

    return load_rules(path, check_template=check_template)


def check_template(path: Path) -> object:
    """`load_template`, imported only for a rules file with a template (it brings jinja2 and the formats)."""
    from monitor.notify.formats.template import load_template

    return load_template(path)


def open_store(config: Path | None) -> Store:
    """The state store of the settings, given the current schema if it is empty (a command that writes)."""
    from monitor.store import COMMAND_CONNECTIONS, Store

    state = open_settings(config).state
    opened = Store(state.url, state.postgres, COMMAND_CONNECTIONS)
    opened.create()
    return opened


def open_existing_store(config: Path | None) -> Store | None:
    """The state store for a command that only reads: None while its SQLite file does not exist, which such
    a command does not create (nor its folder)."""
    if no_state_yet(open_settings(config).state.url):
        return None
    return open_store(config)


def no_state_yet(url: str) -> bool:
    """Whether the state store is a SQLite file that does not exist yet (before the daemon's first start)."""
    from monitor.store import no_state_yet as missing

    return missing(url)
