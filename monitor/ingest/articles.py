"""Read one article file: `read_article(path) -> Article`, or an ArticleError with a reason code.

The header is optional white space, the word `date`, then `YYYY-MM`, `YYYY-MM-DD` or an ISO 8601
date-time, then the body, on the same line or the next. Any date the header can hold is handled, up to
9999-12-31; a date in the future is kept as written (embargoed articles are dated ahead).

Given the watched folder it came from (`root`), a file is opened beneath that folder one component at a
time without following a symbolic link (`openat` with `O_NOFOLLOW`), so that no path, however its folders
are swapped for links while it is read, leads outside. A failure that may pass by itself (no file
descriptors, no memory, an I/O error) is `transient`: the caller tries the file again later rather than
recording it as rejected.
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
_LATEST = datetime.max.replace(tzinfo=UTC)
# errno values that say nothing about the file: out of descriptors, memory or buffer space, an I/O error,
# a signal. The file is tried again later, never recorded as rejected for them.
TRANSIENT_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EIO, errno.EAGAIN, errno.EINTR})
_BOMS = (  # longest first: the UTF-32 LE mark begins with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


class ArticleOutcome(enum.StrEnum):
    """What became of an article file (`pipeline.Processed.outcome`); the recorded ones are stored in the
    ledger's `outcome` column as these strings, and they label the `monitor_articles_total` metric."""

    accepted = "accepted"  # read and recorded: its content is claimed (alerts queued when rules matched)
    unchanged = "unchanged"  # the same content under the same name (touched, or rewritten as it was)
    duplicate = "duplicate"  # the same content as another file already claimed
    rejected = "rejected"  # cannot be read (the reason code says why); recorded, not read again unless it changes
    seen = "seen"  # in the ledger with the same size and modification time: not read again
    skipped = "skipped"  # dated before `--since` (backfill): not recorded, so a later run can take it
    failed = "failed"  # a transient failure or the store failed: not recorded, tried again later
    elsewhere = "elsewhere"  # another replica is reading it (PostgreSQL): found again by a reconcile scan
    pending = "pending"  # read, not yet recorded (a batch's step before its transaction)


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
            return _end_of_day(self.value.replace(day=last))
        if self.precision is Precision.day:
            return _end_of_day(self.value)
        return self.value

    def isoformat(self) -> str:
        if self.precision is Precision.month:
            return self.value.strftime("%Y-%m")
        if self.precision is Precision.day:
            return self.value.date().isoformat()
        return self.value.isoformat()


def _end_of_day(start: datetime) -> datetime:
    """The last microsecond of the day that starts at `start` (9999-12-31 has no next day to count back from)."""
    if start.date() == date.max:
        return _LATEST
    return start + timedelta(days=1) - timedelta(microseconds=1)


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
    """UTF-8 with or without BOM, UTF-16 and UTF-32 with their BOM; Windows-1252 as the legacy fallback (not
    after a BOM); binary refused."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return _decode_marked(data[len(bom) :], encoding, path)
    if b"\x00" in data:
        if _looks_wide(data):
            raise ArticleError(path, "UTF-16 or UTF-32 without a byte order mark: save it as UTF-8", "encoding")
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
    return _not_binary(text, path)


def _decode_marked(data: bytes, encoding: str, path: str | Path) -> str:
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        name = encoding.upper().replace("-LE", "").replace("-BE", "")
        raise ArticleError(path, f"invalid {name} after its byte order mark (byte {exc.start})", "encoding") from None
    return _not_binary(text, path)


def _not_binary(text: str, path: str | Path) -> str:
    """The text, unless more than 1 % of it is control characters (counted in C, without a list of them)."""
    if _CONTROL.search(text) and _CONTROL.subn("", text)[1] > len(text) // 100:
        raise ArticleError(path, "binary file (control characters)", "binary")
    return text


def _looks_wide(data: bytes) -> bool:
    """Whether NUL bytes sit where UTF-16 or UTF-32 puts them for mostly ASCII text: every other byte."""
    head = data[:4096]
    return len(head) >= 8 and (
        head[1::2].count(0) >= len(head) // 2 * 0.9 or head[0::2].count(0) >= len(head) // 2 * 0.9
    )


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


def read_article(path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES, root: str | Path | None = None) -> Article:
    """Read and parse one article file (beneath the folder `root`, when given). Every failure is an
    ArticleError with a reason code."""
    data = _read_bytes(path, max_bytes, root)
    return parse_article(path, decode(data, path), len(data))


def unavailable(path: str | Path, doing: str, exc: OSError) -> ArticleError:
    """The error for an OSError: transient (tried again later) or `unreadable`."""
    if exc.errno in TRANSIENT_ERRNOS:
        return ArticleError(path, f"cannot {doing} now: {exc.strerror}; tried again later", "transient")
    return ArticleError(path, f"cannot {doing}: {exc.strerror}", "unreadable")


def _open(path: str | Path, root: str | Path | None) -> int:
    """A descriptor of the file: beneath `root` through no symbolic link, or (no root) not itself a link."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
    if root is None:
        return os.open(path, flags)
    relative = os.path.relpath(path, root)
    parts = relative.split(os.sep)
    if relative.startswith(os.pardir) or os.path.isabs(relative) or not parts:
        raise ArticleError(path, f"outside the watched folder {root}", "outside")
    folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=folder)
            os.close(folder)
            folder = inner
        return os.open(parts[-1], flags, dir_fd=folder)
    except NotADirectoryError:
        raise ArticleError(path, "a folder on its path is a symbolic link or a file, not followed", "symlink") from None
    finally:
        os.close(folder)


def _read_bytes(path: str | Path, max_bytes: int, root: str | Path | None = None) -> bytes:
    """The file's bytes; symbolic links are not followed, only regular files within the limit are read."""
    try:
        fd = _open(path, root)
    except FileNotFoundError:
        raise ArticleError(path, "file vanished before it was read", "vanished") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ArticleError(path, "symbolic link, not followed", "symlink") from None
        raise unavailable(path, "open", exc) from None
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
        raise unavailable(path, "read", exc) from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise ArticleError(path, f"grew over the limit of {max_bytes} bytes while read", "too_large")
    return data
