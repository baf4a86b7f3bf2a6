"""Rich text for the chat formats: marked snippets as spans, per-platform markup, and fitting to limits.

A snippet marks its hit as `[[hit]]`. `marked()` turns it into spans `(text, bold)`; a `Markup` renders
spans with the platform's escaping and bold delimiter. Truncation works on the spans, never on rendered
text, so a cut can never fall inside a bold delimiter, an escape sequence or a `[[ ]]` marker, and a bold
span that is cut is still closed. Lengths are counted in UTF-16 code units by default: never fewer than
the code points some platforms count, so a text within the limit in one count is within it in the other.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

ELLIPSIS = "…"
_MARKER = re.compile(r"\[\[(.+?)\]\]")
_WORD_BACKOFF = 30  # a cut moves back to a word boundary at most this many characters


@dataclass(frozen=True, slots=True)
class Span:
    text: str
    bold: bool = False


Rich = tuple[Span, ...]
Measure = Callable[[str], int]


def units(text: str) -> int:
    """Length in UTF-16 code units, as JavaScript counts it; never less than `len(text)`."""
    return len(text.encode("utf-16-le")) // 2


def dumps(value: Any) -> bytes:
    """The body as sent: compact JSON in UTF-8."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def json_size(value: Any) -> int:
    """Bytes that `value` takes in the body, quotes and escapes included."""
    return len(dumps(value))


def plain(text: str) -> Rich:
    return (Span(text),) if text else ()


def marked(snippet: str, hit: str | None = None) -> Rich:
    """Spans of a snippet whose hit is marked `[[like this]]`. With `hit`, only that exact marker counts,
    so brackets in the surrounding article text are not mistaken for one."""
    if hit:
        marker = f"[[{' '.join(hit.split())}]]"
        at = snippet.find(marker)
        if at >= 0:
            spans = (Span(snippet[:at]), Span(marker[2:-2], True), Span(snippet[at + len(marker) :]))
            return tuple(s for s in spans if s.text)
    spans_: list[Span] = []
    pos = 0
    for found in _MARKER.finditer(snippet):
        spans_ += [Span(snippet[pos : found.start()]), Span(found.group(1), True)]
        pos = found.end()
    spans_.append(Span(snippet[pos:]))
    return tuple(s for s in spans_ if s.text)


def clip_start(rich: Rich, keep: int) -> Rich:
    """Shorten plain text before the first bold span to its last `keep` characters, so a cut at the end
    of a long snippet still shows the hit."""
    if not rich or rich[0].bold or len(rich[0].text) <= keep or len(rich) == 1:
        return rich
    tail = rich[0].text[-keep:]
    if " " in tail:
        tail = tail.split(" ", 1)[1]
    return (Span(ELLIPSIS + tail), *rich[1:])


def length(rich: Rich) -> int:
    return sum(len(span.text) for span in rich)


def cut(rich: Rich, keep: int) -> Rich:
    """The first `keep` characters of the spans."""
    out: list[Span] = []
    for span in rich:
        if keep <= 0:
            break
        out.append(Span(span.text[:keep], span.bold))
        keep -= len(span.text)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Markup:
    """How one platform writes text: its escaping and its bold delimiter ("" for plain text)."""

    escape: Callable[[str], str]
    bold: str

    def render(self, rich: Rich) -> str:
        return "".join(self._span(span) for span in rich)

    def _span(self, span: Span) -> str:
        core = span.text.strip()
        if not span.bold or not self.bold or not core:
            return self.escape(span.text)
        lead = span.text[: len(span.text) - len(span.text.lstrip())]
        trail = span.text[len(span.text.rstrip()) :]
        return f"{lead}{self.bold}{self.escape(core)}{self.bold}{trail}"

    def fit(self, rich: Rich, limit: int, measure: Measure = units) -> str:
        """The rendered spans, or the longest rendered prefix plus an ellipsis that is within `limit`."""
        whole = self.render(rich)
        if measure(whole) <= limit:
            return whole
        if measure(ELLIPSIS) > limit:
            return ""
        low, high = 0, length(rich) - 1
        while low < high:  # the longest prefix that fits; rendering is monotone in the prefix length
            middle = (low + high + 1) // 2
            if measure(self._cut(rich, middle)) <= limit:
                low = middle
            else:
                high = middle - 1
        kept = "".join(span.text for span in cut(rich, low))
        space = kept.rfind(" ")
        if space > 0 and low - space <= _WORD_BACKOFF:
            low = space
        return self._cut(rich, low)

    def _cut(self, rich: Rich, keep: int) -> str:
        head = cut(rich, keep)
        if head:
            last = head[-1]
            head = (*head[:-1], Span(last.text.rstrip(), last.bold))
        return self.render(head) + ELLIPSIS

    def text(self, value: str, limit: int, measure: Measure = units) -> str:
        return self.fit(plain(value), limit, measure)


def join_within(
    parts: Sequence[str],
    limit: int,
    more: Callable[[int], str],
    sep: str = "\n",
    measure: Measure = units,
    hidden: int = 0,
) -> str:
    """Join `parts` with `sep`; if that exceeds `limit`, keep the first parts that fit and end with
    `more(number left out)`. `hidden` counts items left out before (a capped payload's other hits): when
    there are any, the `more` line is always there and counts them too. Each part must be within `limit`."""
    whole = sep.join(parts)
    if not hidden and measure(whole) <= limit:
        return whole
    kept: list[str] = []
    used = 0
    for index, part in enumerate(parts):
        step = measure(part) + (measure(sep) if kept else 0)
        left = len(parts) - index - 1 + hidden
        reserve = measure(sep) + measure(more(left)) if left else 0
        if used + step + reserve > limit:
            break
        kept.append(part)
        used += step
    left = len(parts) - len(kept) + hidden
    return sep.join([*kept, more(left)] if left else kept)


def take(
    items: Sequence[str], room: int, budget: int | None = None, measure: Measure = units, reserve: int = 100
) -> tuple[list[str], int]:
    """The first items, at most `room` of them and together within `budget`. When some are left out, one
    place (and `reserve` of the budget) stays free for a line that counts them: (items, number left out)."""
    if len(items) <= room and (budget is None or sum(measure(item) for item in items) <= budget):
        return list(items), 0
    kept: list[str] = []
    used = 0
    for item in items[: max(room - 1, 0)]:
        if budget is not None and used + measure(item) > budget - reserve:
            break
        kept.append(item)
        used += measure(item)
    return kept, len(items) - len(kept)


# Escaping, per platform: a few str.replace calls (each one pass in C, skipped when its character is absent)
# and at most two compiled regexes, no loop in Python per character. Article text is untrusted: whatever it
# holds, it is shown as text, never as a link, a mention, an image or formatting (docs/formats.md, "Escaping").
WORD_JOINER = "\u2060"  # invisible and not a word character: it splits `@name`, `~channel`, `](` and `{{`
# A list marker (`-`, `+`, `1.`, `1)`) or a setext/thematic line (`===`, `---`) at the start of a line: the
# backslash goes before its last character. "2022-01-07" or ". Ook" are no markers and stay as they are.
_LINE_START = re.compile(r"^([ \t]*(?:\d{1,9})?)((?<=\d)[.)]|(?<!\d)[-+=])(?=[ \t=-]|$)", re.MULTILINE)
_MARKER_STARTS = frozenset(" \t-+=0123456789")
Replacements = tuple[tuple[str, str], ...]


def _escapes(escaped: str, joined: str = "") -> Replacements:
    """A backslash before each of `escaped` (the backslash itself first), a word joiner after each of
    `joined`."""
    pairs = {char: "\\" + char for char in escaped}
    for char in joined:
        pairs[char] = pairs.get(char, char) + WORD_JOINER
    return tuple(pairs.items())


def _line_starts(text: str) -> str:
    """A backslash in each list marker or setext line at the start of a line (see _LINE_START)."""
    if "\n" not in text and text[:1] not in _MARKER_STARTS:  # the common case, without the regex
        return text
    return _LINE_START.sub(lambda found: f"{found[1]}\\{found[2]}", text)


def _replace(text: str, replacements: Replacements) -> str:
    for old, new in replacements:
        if old in text:
            text = text.replace(old, new)
    return text


_SLACK = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"))
_SLACK_PLAIN = re.compile(r"<(?=[!@#])")
_MARKDOWN = _escapes("\\*_~`|<>[]#", "@~")
_TEAMS = _escapes("\\*[]`|<>#~", "]{")
_TEAMS_UNDERSCORE = re.compile(r"_(?:(?<![^\W_]_)|(?![^\W_]))")  # not between two letters or digits


def escape_slack(text: str) -> str:
    """Slack mrkdwn: &, < and > as &amp; &lt; &gt;, so no <!channel>, <@U1>, <#C1> or <url|text> can act.
    Slack has no escape for * _ ~ `: they may still format (never link or mention)."""
    return _replace(text, _SLACK)


def escape_slack_plain(text: str) -> str:
    """Slack plain_text: a word joiner after < in <!…>, <@…>, <#…>, so nothing reads them as a mention."""
    return _SLACK_PLAIN.sub("<" + WORD_JOINER, text)


def escape_markdown(text: str) -> str:
    """Discord and Mattermost markdown: a backslash before each character that formats, links or makes an
    image, and before list markers at the start of a line; a word joiner after every @ and ~, so no
    `@name`, `@channel`, `@everyone` or `~channel` is a mention (Mattermost reads mentions from the raw text,
    where a backslash would not stop them)."""
    return _line_starts(_replace(text, _MARKDOWN))


def escape_teams(text: str) -> str:
    """Adaptive Card markdown (the CommonMark subset: bold, italic, lists, links): a backslash before
    * [ ] ` | < > # ~ and \\, before _ unless it is between two letters or digits (where CommonMark never
    reads it as emphasis; some mobile clients show the backslashes), and before list markers at the start of
    a line; a word joiner after ] (so `](` never makes a link) and after { (no {{DATE()}} function)."""
    text = _replace(text, _TEAMS)
    if "_" in text:
        text = _TEAMS_UNDERSCORE.sub(lambda _: "\\_", text)
    return _line_starts(text)


def no_escape(text: str) -> str:
    return text


SLACK = Markup(escape_slack, "*")
SLACK_PLAIN = Markup(escape_slack_plain, "")  # Slack plain_text objects
PLAIN = Markup(no_escape, "")  # plain text fields: no markup at all
MARKDOWN = Markup(escape_markdown, "**")
TEAMS = Markup(escape_teams, "**")
