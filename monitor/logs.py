"""Logging: one line per event, `event_name key=value ...`; JSON lines when stderr is not a terminal."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

from monitor.settings import LogFormat

_PAIR = re.compile(r"(\w+)=(\S+)")
_URL_CREDENTIALS = re.compile(r"(://)[^/@\s]+@")


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "event", ...key=value pairs}`; credentials in URLs are masked."""

    def format(self, record: logging.LogRecord) -> str:
        message = _URL_CREDENTIALS.sub(r"\1***@", record.getMessage())
        event, _, rest = message.partition(" ")
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": event,
        }
        entry.update(dict(_PAIR.findall(rest)))
        if rest and not _PAIR.fullmatch(rest.split(" ")[0]):
            entry["message"] = rest
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        record.msg = _URL_CREDENTIALS.sub(r"\1***@", record.getMessage())
        record.args = None
        return super().format(record)


def configure(level: str = "INFO", fmt: LogFormat = "auto") -> None:
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if use_json else ConsoleFormatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "apscheduler", "watchdog"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
