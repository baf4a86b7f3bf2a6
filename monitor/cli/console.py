"""What the command line prints: rich consoles that neither wrap nor cut off a terminal, and outside text
(file names, snippets, receivers' errors) made safe to show.

Off a terminal (a pipe, journald, Docker logs) rich would wrap every line at 80 columns and cut table cells
with "…"; scripts and log readers want whole lines, and a delivery id must stay whole to feed `redeliver`.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

WIDE = 100_000  # the width off a terminal: lines as long as they are, tables as wide as their cells

# C0 and C1 control characters and DEL, written as escapes: an article's name or text cannot move the
# cursor, recolour the terminal, set its title or forge a line of output.
_CONTROL = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_CONTROL |= {ord("\t"): "\\t", ord("\n"): "\\n", ord("\r"): "\\r"}


@functools.cache
def console(stderr: bool = False) -> Console:
    """The console for stdout (or stderr): rich on a terminal; unwrapped and uncut off one."""
    from rich.console import Console

    found = Console(stderr=stderr, highlight=False)
    if found.is_terminal:
        return found
    return Console(stderr=stderr, highlight=False, width=WIDE, soft_wrap=True)


def printable(text: str) -> str:
    """`text` with its control characters (terminal escape codes, line breaks) written as `\\xNN`."""
    return text.translate(_CONTROL)


def shown(text: str) -> str:
    """Outside text for a rich markup string: control characters escaped, `[...]` not taken as markup."""
    from rich.markup import escape

    return escape(printable(text))


def plural(count: int, one: str, many: str | None = None) -> str:
    """`1 webhook`, `2 webhooks`, `1 delivery`, `3 deliveries`."""
    return f"{count:,} {one if count == 1 else (many or one + 's')}"


class LazyConsole:
    """Stands for `console(stderr)` and makes it on first use: a module can keep one at import time without
    importing rich (`news-monitor --help` and `--version` never print through one)."""

    def __init__(self, stderr: bool = False, highlight: bool = False) -> None:
        self._stderr = stderr  # highlight: always off, as console() makes it

    def __getattr__(self, name: str) -> Any:
        return getattr(console(self._stderr), name)
