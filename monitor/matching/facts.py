"""The facts of a hit beyond its words: the number the text attaches to it, and whether it is denied.

`Count` is what a hit's count looks like in matches and payloads (`Count.as_json()`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

# None: the number as written; the others say how the text qualifies it ("bijna achtduizend": almost).
Qualifier = Literal["almost", "at_least", "more_than", "about", "less_than", "at_most", "vague"]


@dataclass(frozen=True, slots=True)
class Count:
    """A number attached to a hit: `value` None for a vague quantity ("honderden", "dozens")."""

    value: int | float | None
    qualifier: Qualifier | None
    text: str  # the words in the article, e.g. "bijna achtduizend"

    def as_json(self) -> dict[str, Any]:
        return {"value": self.value, "qualifier": self.qualifier, "text": self.text}


def hit_facts(text: str, start: int, end: int, language: str | None) -> tuple[Count | None, bool]:
    """(the count the text attaches to text[start:end], whether the hit is negated): placeholder until the
    facts analysis lands (wip-facts)."""
    return None, False
