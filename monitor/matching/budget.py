"""How long matching one article may take: `Deadline.check()` raises `MatchBudgetExceeded` once it is past.

The budget is CPU seconds of the matching thread (`time.thread_time`), so that an article is "too costly"
by what it costs, not by how busy the machine is. Matching is linear in the text, so the budget is a
backstop: the engine looks at the clock once per candidate rule (once per 32 on a short text, where none takes
long: the clock is a system call) and every few thousand iterations of its long loops.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from monitor.errors import MatchBudgetExceeded

Budget = float | timedelta | None  # seconds, or a timedelta; None: no limit


@dataclass(slots=True)
class Deadline:
    budget: float | None = None  # seconds
    at: float | None = None  # `time.thread_time()` past which matching stops

    @classmethod
    def after(cls, budget: Budget) -> Deadline:
        if budget is None:
            return NO_LIMIT
        seconds = budget.total_seconds() if isinstance(budget, timedelta) else float(budget)
        return cls(seconds, time.thread_time() + seconds)

    def check(self) -> None:
        """Raise `MatchBudgetExceeded` (with no path: the engine does not know it) once the budget is spent."""
        if self.at is not None and time.thread_time() > self.at:
            raise MatchBudgetExceeded(self.budget or 0.0)

    def lift(self) -> None:
        """No limit from now on: for hits read lazily after matching returned."""
        self.at = None


NO_LIMIT = Deadline()  # shared: without a budget there is nothing to change
