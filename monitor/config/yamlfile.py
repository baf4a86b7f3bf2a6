"""YAML that remembers where each value stood, for errors that name a file, a line and a column."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.reader import ReaderError

from monitor.errors import YamlProblem


def load_yaml(path: Path) -> Any:
    """The round-trip tree of a YAML file (dicts and lists that know their lines)."""
    try:
        text = path.read_text(encoding="utf-8")
        return YAML(typ="rt").load(text)
    except OSError as exc:
        raise YamlProblem(f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise YamlProblem(f"not UTF-8 (byte {exc.start})") from None
    except ReaderError as exc:  # a character YAML does not allow (a NUL byte, other control characters)
        at_line = text.count("\n", 0, exc.position) + 1
        at_column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        message = f"invalid YAML: character U+{exc.character:04X} is not allowed"
        raise YamlProblem(message, at_line, at_column) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise YamlProblem(f"invalid YAML: {exc.problem}", line, column) from None


def load_yaml_fast(path: Path) -> Any:
    """Plain dicts and lists, parsed by libyaml when available; no line numbers (see `load_yaml`)."""
    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise YamlProblem(f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise YamlProblem(f"not UTF-8 (byte {exc.start})") from None
    try:
        node = loader.get_single_node()
        try:
            return None if node is None else _plain(node, loader, {})
        except _NotPlain:
            return loader.construct_document(node)
    except yaml.YAMLError:
        return load_yaml(path)  # to say where the error is
    finally:
        loader.dispose()


class _NotPlain(Exception):
    """A node that `_plain` leaves to PyYAML's constructor (merge keys, timestamps, sets, other tags)."""


_STR = "tag:yaml.org,2002:str"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_SCALARS = {f"tag:yaml.org,2002:{name}" for name in ("int", "float", "bool", "null")}


def _plain(node: yaml.Node, loader: yaml.constructor.SafeConstructor, seen: dict[int, Any]) -> Any:
    """What PyYAML's safe constructor makes of a tree of strings, numbers, booleans, nulls, lists and maps,
    in a third of the time: no generators, no recursion guard (an alias is the object already made)."""
    if type(node) is yaml.ScalarNode:
        if node.tag == _STR:
            return node.value
        if node.tag in _SCALARS:
            return loader.yaml_constructors[node.tag](loader, node)
        raise _NotPlain
    if id(node) in seen:
        return seen[id(node)]
    if type(node) is yaml.SequenceNode and node.tag == _SEQ:
        items: list[Any] = []
        seen[id(node)] = items
        items.extend([_plain_or_str(item, loader, seen) for item in node.value])
        return items
    if type(node) is yaml.MappingNode and node.tag == _MAP:
        mapping: dict[Any, Any] = {}
        seen[id(node)] = mapping
        for key_node, value_node in node.value:
            key = _plain_or_str(key_node, loader, seen)
            if isinstance(key, list | dict):
                raise _NotPlain  # for PyYAML's error
            mapping[key] = _plain_or_str(value_node, loader, seen)
        return mapping
    raise _NotPlain


def _plain_or_str(node: yaml.Node, loader: yaml.constructor.SafeConstructor, seen: dict[int, Any]) -> Any:
    """`_plain`, with a string (most nodes) taken without a second call."""
    if node.tag == _STR and type(node) is yaml.ScalarNode:
        return node.value
    return _plain(node, loader, seen)


def locate(raw: Any, loc: tuple[int | str, ...]) -> tuple[int | None, int | None]:
    """The 1-based line and column of the value at `loc` in the tree (the nearest known one)."""
    line = column = None
    node = raw
    for key in loc:
        try:
            if isinstance(node, dict) and key in node:
                lc: Any = getattr(node, "lc")  # noqa: B009 (ruamel containers carry line and column)
                line, column = lc.value(key) if not isinstance(node[key], dict | list) else lc.key(key)
            elif isinstance(node, list) and isinstance(key, int) and key < len(node):
                line, column = getattr(node, "lc").item(key)  # noqa: B009
            else:
                break
            node = node[key]
        except (AttributeError, KeyError, TypeError):
            break
    return (line + 1 if line is not None else None, column + 1 if column is not None else None)


def field_problem(error: Mapping[str, Any]) -> str:
    """A pydantic error as `dotted.field: what was expected`."""
    field = ".".join(str(part) for part in error["loc"]) or "top level"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key (a typo?)"
    elif error["type"] == "missing":
        message = "missing, and required"
    return f"{field}: {message}"
