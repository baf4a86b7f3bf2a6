"""Structured logs with structlog: one event per line, event names in the past tense (`article_read`).

JSON lines when stderr is not a terminal (or `log.format: json`), a readable console form on a terminal.
Records of the standard library's loggers (httpx, apscheduler, watchdog) go through the same chain.
Values that look like secrets, and credentials inside URLs, are masked before anything is written.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
import threading
from collections.abc import MutableMapping
from typing import Any

import structlog

from monitor.settings import LogFormat

_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)
_SECRET_VALUE = re.compile(r"whsec_[A-Za-z0-9+/=]+")
_SECRET_KEYS = ("secret", "password", "token", "authorization")


def mask(value: str) -> str:
    """A text with URL credentials and Standard Webhooks secrets replaced by ***."""
    if "://" not in value and "whsec_" not in value:  # the common case, without a regex
        return value
    return _SECRET_VALUE.sub("whsec_***", _URL_CREDENTIALS.sub(r"\g<scheme>***@", value))


@functools.lru_cache(maxsize=1024)
def _secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in _SECRET_KEYS)


def redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event.items():
        if _secret_key(key):
            event[key] = "***"
        elif isinstance(value, str):
            event[key] = mask(value)
    return event


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
        redact,
    ]
    renderer: Any = structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=False)
    # Our own events go straight to stderr (a per-article event through the standard library's logging
    # costs several times more); the standard library's records go through the same processors below.
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        logger_factory=_line,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        cache_logger_on_first_use=False,  # a later configure() (tests, commands) applies to every logger
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
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
