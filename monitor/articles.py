"""Read one article file: `read_article(path) -> Article`, or an ArticleError with a reason code.

The header is optional white space, the word `date`, then `YYYY-MM`, `YYYY-MM-DD` or an ISO 8601
date-time, then the body, on the same line or the next.
"""

from __future__ import annotations

import calendar
import codecs
import enum
import errno
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from monitor.errors import ArticleError

DEFAULT_MAX_BYTES = 10 * 1024 * 1024

_HEADER = re.compile(
    r"\A\s*date[ \t]+"
    r"(?P<value>\d{4}-\d{2}(?:-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?)?)"
    r"(?=\s|\Z)[ \t]*\r?\n?",
    re.IGNORECASE,
)
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


class Precision(enum.StrEnum):
    month = "month"
    day = "day"
    time = "time"


@dataclass(frozen=True, slots=True)
class ArticleDate:
    value: datetime  # start of the month or day for the coarser precisions, in UTC when naive
    precision: Precision

    def latest(self) -> datetime:
        """The latest instant the header allows: a month's last day counts for month precision."""
        if self.precision is Precision.month:
            last = calendar.monthrange(self.value.year, self.value.month)[1]
            return self.value.replace(day=last) + timedelta(days=1) - timedelta(microseconds=1)
        if self.precision is Precision.day:
            return self.value + timedelta(days=1) - timedelta(microseconds=1)
        return self.value

    def isoformat(self) -> str:
        if self.precision is Precision.month:
            return self.value.strftime("%Y-%m")
        if self.precision is Precision.day:
            return self.value.date().isoformat()
        return self.value.isoformat()


@dataclass(frozen=True, slots=True)
class Article:
    path: str
    date: ArticleDate
    text: str  # the body after the header
    content_hash: str  # sha256 of the whole decoded text, UTF-8 encoded
    size: int  # bytes on disk


def parse_date(value: str) -> ArticleDate:
    """Parse the header value; raises ValueError for impossible dates such as 2022-13."""
    if len(value) == 7:
        return ArticleDate(datetime(int(value[:4]), int(value[5:7]), 1, tzinfo=UTC), Precision.month)
    if len(value) == 10:
        parsed = date.fromisoformat(value)
        return ArticleDate(datetime(parsed.year, parsed.month, parsed.day, tzinfo=UTC), Precision.day)
    moment = datetime.fromisoformat(value.replace(" ", "T", 1))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return ArticleDate(moment, Precision.time)


def decode(data: bytes, path: str | Path) -> str:
    """UTF-8 with or without BOM; Windows-1252 as the legacy fallback (not after a BOM); binary refused."""
    if b"\x00" in data:
        raise ArticleError(path, "binary file (NUL bytes)", "binary")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if data.startswith(codecs.BOM_UTF8):  # it says UTF-8: falling back would misread it
            raise ArticleError(path, f"invalid UTF-8 after a BOM (byte {exc.start + 3})", "encoding") from None
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError as legacy:
            raise ArticleError(path, f"neither UTF-8 nor Windows-1252 (byte {legacy.start})", "encoding") from None
    if len(_CONTROL.findall(text)) > len(text) // 100:
        raise ArticleError(path, "binary file (control characters)", "binary")
    return text


def parse_article(path: str | Path, text: str, size: int) -> Article:
    header = _HEADER.match(text)
    if header is None:
        expected = "expected a first line like 'date 2022-01', 'date 2022-01-08' or 'date 2022-01-08T09:30'"
        raise ArticleError(path, f"no date header: {expected}", "no_date")
    try:
        when = parse_date(header["value"])
    except ValueError as exc:
        raise ArticleError(path, f"impossible date {header['value']!r}: {exc}", "bad_date") from None
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Article(str(path), when, text[header.end() :], digest, size)


def read_article(path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES) -> Article:
    """Read and parse one article file. Every failure is an ArticleError with a reason code."""
    data = _read_bytes(path, max_bytes)
    return parse_article(path, decode(data, path), len(data))


def _read_bytes(path: str | Path, max_bytes: int) -> bytes:
    """The file's bytes; symbolic links are not followed, only regular files within the limit are read."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise ArticleError(path, "file vanished before it was read", "vanished") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ArticleError(path, "symbolic link, not followed", "symlink") from None
        raise ArticleError(path, f"cannot open: {exc.strerror}", "unreadable") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ArticleError(path, "not a regular file", "not_file")
        if info.st_size == 0:
            raise ArticleError(path, "empty file", "empty")
        if info.st_size > max_bytes:
            raise ArticleError(path, f"{info.st_size} bytes is over the limit of {max_bytes}", "too_large")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise ArticleError(path, f"cannot read: {exc.strerror}", "unreadable") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise ArticleError(path, f"grew over the limit of {max_bytes} bytes while read", "too_large")
    return data
