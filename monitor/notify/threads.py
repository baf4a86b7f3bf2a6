"""Story threads: what a rule with `story: first_then_updates` or `story: digest_updates` sends of a story.

    follow_up(thread, seen, draft, ...) -> Update | None    what is new in a later match, or None (held back)

The first match of such a rule in a story alerts as usual and starts the rule's thread there. A later match
in the story is a follow-up (naming the first alert in `update_of`, and saying what is new in `update`) when
at least one of these holds, else it is recorded, suppressed:

- **count**: its count is larger than every count the rule sent in the story (or the rule sent none);
- **rule**: the article matched a rule that no earlier article of the story matched. The rules that count
  are every rule of the rules file in force that the article matched (whatever its `story:` mode, whether
  its own alert was sent, held or suppressed by `realert`), compared with the rules that matched the story's
  earlier articles (their alerts in the store, and the batch's earlier articles);
- **outlet**: the article comes from an outlet that none of the story's earlier matched articles came from,
  and the rule sent nothing in the story for `stories.quiet`. An article's outlet is the first folder
  beneath the watched folder that holds it (`watched/reuters/2023/quake.txt`: `reuters`); a file directly
  in a watched folder, or outside them, has none.

Under `digest_updates` the first alert is sent at once and the follow-ups wait for the rule's digest.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath

QUIET = 3 * 3600.0  # seconds: `stories.quiet` by default
MODES = frozenset({"first_then_updates", "digest_updates"})  # the `story:` modes that keep a thread


@dataclass(frozen=True, slots=True)
class Followups:
    """What the story modes need beyond the rules: the watched folders (for outlets) and the quiet period."""

    roots: tuple[str, ...] = ()
    quiet: float = QUIET

    @classmethod
    def of(cls, roots: Iterable[str], quiet: float = QUIET) -> Followups:
        """Roots longest first: a file's outlet is taken beneath the innermost watched folder that holds it."""
        return cls(tuple(sorted((os.path.abspath(root) for root in roots), key=len, reverse=True)), quiet)

    def outlet(self, path: str) -> str | None:
        """The first folder beneath the watched folder that holds `path` (None: directly in it, or in none)."""
        absolute = os.path.abspath(path)
        for root in self.roots:
            if absolute.startswith(root + os.sep):
                head, sep, _ = absolute[len(root) + 1 :].partition(os.sep)
                return head if sep else None
        return None


@dataclass(frozen=True, slots=True)
class Thread:
    """A rule's thread in a story: its first alert (id, and the title chat formats show), the largest count
    it sent there and when it last sent one."""

    first: str
    title: str
    best: float | None
    last_at: float


@dataclass(slots=True)
class Seen:
    """What a story's earlier matched articles brought: the rules they matched and their outlets."""

    rules: set[str] = field(default_factory=set)
    outlets: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Update:
    """What is new in a follow-up: why (`reasons`, in the order count, rule, outlet) and the details."""

    reasons: tuple[str, ...]
    previous: float | None = None  # the largest count sent before (reason "count")
    count: float | None = None
    rules: tuple[str, ...] = ()  # the rules new to the story (reason "rule"), sorted
    outlet: str | None = None  # the outlet new to the story (reason "outlet")


def title(rule: str, path: str) -> str:
    """An alert's title as the chat formats show it (monitor.notify.formats.view)."""
    return f"{rule}: {PurePath(path).name or path}"


def follow_up(
    thread: Thread,
    seen: Seen,
    count: float | None,
    rules: Sequence[str],
    outlet: str | None,
    now: float,
    quiet: float,
) -> Update | None:
    """What is new in a later match of the thread's rule in its story (None: nothing, the match is held)."""
    reasons: list[str] = []
    if count is not None and (thread.best is None or count > thread.best):
        reasons.append("count")
    new_rules = tuple(sorted(set(rules) - seen.rules))
    if new_rules:
        reasons.append("rule")
    new_outlet = outlet is not None and outlet not in seen.outlets and now - thread.last_at >= quiet
    if new_outlet:
        reasons.append("outlet")
    if not reasons:
        return None
    return Update(
        tuple(reasons),
        thread.best if "count" in reasons else None,
        count if "count" in reasons else None,
        new_rules,
        outlet if new_outlet else None,
    )


def sent_follow_up(thread: Thread, count: float | None, now: float) -> Thread:
    """The thread after a follow-up with this count was sent."""
    best = thread.best if count is None or (thread.best is not None and thread.best >= count) else count
    return Thread(thread.first, thread.title, best, now)
