"""Structured logs with structlog: one event per line, event names in the past tense (`article_read`).

JSON lines when stderr is not a terminal (or `log.format: json`), a readable console form on a terminal.
Records of the standard library's loggers (httpx, apscheduler, watchdog) go through the same chain.
Fields named like secrets (`secret_name`) are masked; every other value, the rendered traceback included, passes through
`mask_text` (monitor.config.redaction): URL userinfo, query values and `whsec_` secrets never reach the output.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import MutableMapping
from typing import Any

import structlog

from monitor.config.redaction import MASK, mask_text, secret_name
from monitor.config.settings import LogFormat

_PLAIN = (int, float, bool)


def mask_event(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A processor, after `format_exc_info`: a field named like a secret (`secret`, `token`, ...) as ***,
    every other value through `mask_text`: messages, tracebacks, and the text of values of other types."""
    for key, value in event.items():
        if secret_name(key):
            event[key] = MASK
        elif type(value) is str:  # most values (ints, short strings) cost a type check and no call
            event[key] = mask_text(value)
        elif value is not None and type(value) not in _PLAIN:
            event[key] = _masked(value)
    return event


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if value is None or isinstance(value, int | float):
        return value
    if isinstance(value, list | tuple):
        return [_masked(item) for item in value]
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    return mask_text(repr(value))  # what the renderers would write: an exception, a path, an object


class _Line:
    """Writes each rendered event as one line to the current stderr; knows the name it was asked for
    (`get_logger(__name__)`), for `logger` in events. A failed write is dropped, as `logging` does: a log
    line is never worth stopping the daemon for."""

    _lock = threading.Lock()

    def __init__(self, name: str) -> None:
        self.name = name

    def msg(self, message: str) -> None:
        stream = sys.stderr
        with self._lock:
            try:
                stream.write(message + "\n")
                stream.flush()
            except (OSError, ValueError):
                pass

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


def _line(*args: Any) -> _Line:
    return _Line(str(args[0]) if args else "")


def configure(level: str = "INFO", fmt: LogFormat = "auto") -> None:
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
    ]
    renderer: Any = structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=False)
    # Our own events go straight to stderr (a per-article event through the standard library's logging
    # costs several times more); the standard library's records go through the same processors below.
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, mask_event, renderer],
        logger_factory=_line,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        cache_logger_on_first_use=False,  # a later configure() (tests, commands) applies to every logger
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],  # a record's `extra` as fields of its event
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            mask_event,  # after the traceback is text
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "apscheduler", "watchdog", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
