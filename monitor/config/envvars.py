"""The `MONITOR_*` variables of the environment and of `.env`: which one set a settings key (so that a settings
error names its source, not the YAML file), and which name no setting at all (a typo, refused)."""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

PREFIX = "MONITOR_"
DELIMITER = "__"
ENV_FILE = Path(".env")
NOT_SETTINGS = frozenset({"MONITOR_CONFIG", "MONITOR_PG_HOME"})  # the CLI's --config; scripts/postgres.sh
NOT_SETTINGS_PREFIX = "MONITOR_TEST_"  # the test suite's (MONITOR_TEST_PG_URL)


def unknown_variables(fields: Collection[str]) -> list[str]:
    """The environment's `MONITOR_*` variables whose first part names none of the settings' `fields`.
    (pydantic-settings ignores them; a `.env` holding one is refused by pydantic-settings itself.)"""
    return sorted(
        name
        for name in os.environ
        if _is_setting(name.upper()) and name.upper().removeprefix(PREFIX).split(DELIMITER)[0].lower() not in fields
    )


def variable_for(loc: tuple[int | str, ...]) -> str | None:
    """The variable that set the settings key at `loc`, as an error names it (`MONITOR_HTTP__PORT`, or
    `.env: MONITOR_HTTP__PORT`); None if neither the environment nor `.env` set it (so: the YAML file). The
    environment comes first, as pydantic-settings reads them."""
    for variables, label in ((os.environ, "{}"), (_dotenv(), ".env: {}")):
        found = _variable_in({name.upper(): value for name, value in variables.items()}, loc)
        if found:
            return label.format(found)
    return None


def _variable_in(variables: Mapping[str, str | None], loc: tuple[int | str, ...]) -> str | None:
    if loc and str(loc[0]).upper() in variables:  # a `.env` variable that names no setting: its own key
        return str(loc[0]).upper()
    for depth in range(len(loc), 0, -1):
        name = PREFIX + DELIMITER.join(str(part) for part in loc[:depth]).upper()
        if name in variables and _holds(variables[name], loc[depth:]):
            return name
    return None


def _holds(value: str | None, rest: tuple[int | str, ...]) -> bool:
    """Whether a variable's JSON value holds the key at `rest` (a table variable such as MONITOR_HTTP='{...}')."""
    if not rest:
        return True
    try:
        node: Any = json.loads(value or "")
    except ValueError:
        return False
    for key in rest:
        in_list = isinstance(node, list) and isinstance(key, int) and key < len(node)
        if not (in_list or (isinstance(node, dict) and key in node)):
            return False
        node = node[key]
    return True


def _dotenv() -> dict[str, str | None]:
    if not ENV_FILE.is_file():
        return {}
    from dotenv import dotenv_values

    return dict(dotenv_values(ENV_FILE, encoding="utf-8"))


def _is_setting(name: str) -> bool:
    return name.startswith(PREFIX) and name not in NOT_SETTINGS and not name.startswith(NOT_SETTINGS_PREFIX)
