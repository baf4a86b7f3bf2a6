"""Stories (issue 18): near-duplicate and same-event articles within a time window share a story id.

Interface agreed between the parts being built (the index, the store and the pipeline, the rules' story
modes, evaluation): what a claimed article's place in its story looks like.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# What a rule does with the articles of one story (`story:` in the rules file).
StoryMode = Literal["alert_each", "first_then_updates", "digest_updates"]


@dataclass(frozen=True, slots=True)
class StoryRef:
    """Where a claimed article stands in its story."""

    story: str  # "story_" + 16 hex digits (from the content hash of the article that started the story)
    version: int  # 1 for a file's first content; N for the Nth distinct content seen under the same path
    started: bool  # whether this article started the story
    previous_version: str | None = None  # the content hash of the same file's previous version, if any
    similarity: float = 0.0  # to the most similar earlier article of the story (0.0 when it started it)
