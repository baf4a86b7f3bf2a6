"""The one exception tree of news-monitor.

    MonitorError
    ├── ConfigError      settings that cannot be used (file, key, what was expected)
    ├── RulesError       a rules file that cannot be loaded (file, line, column, what was expected)
    ├── ArticleError     an article file that cannot be read (path, reason); becomes a recorded rejection
    ├── StoreError       the state store is missing, unwritable or of another schema
    └── DeliveryError    a webhook attempt that failed (webhook, status or transport error)

Every message says what failed, where, and what was expected, and never carries a secret.
"""

from __future__ import annotations

from pathlib import Path


class MonitorError(Exception):
    """Base class: every error news-monitor raises on purpose."""


class ConfigError(MonitorError):
    def __init__(self, message: str, *, source: str | Path | None = None) -> None:
        self.source = str(source) if source else None
        super().__init__(f"{source}: {message}" if source else message)


class RulesError(MonitorError):
    """One or more problems in a rules file, each with its location."""

    def __init__(self, problems: list[RuleProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class RuleProblem:
    """One problem in a rules file: `file:line:column: message`."""

    __slots__ = ("column", "file", "line", "message")

    def __init__(self, file: str | Path, line: int | None, message: str, column: int | None = None) -> None:
        self.file = str(file)
        self.line = line
        self.column = column
        self.message = message

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.message}"


class ArticleError(MonitorError):
    def __init__(self, path: str | Path, reason: str, code: str) -> None:
        self.path = str(path)
        self.reason = reason
        self.code = code
        super().__init__(f"{path}: {reason}")

    def __reduce__(self) -> tuple[type[ArticleError], tuple[str, str, str]]:
        """Picklable: it comes back from the worker process that reads large articles."""
        return ArticleError, (self.path, self.reason, self.code)


class StoreError(MonitorError):
    pass


class DeliveryError(MonitorError):
    def __init__(self, webhook: str, message: str) -> None:
        self.webhook = webhook
        super().__init__(f"webhook {webhook!r}: {message}")


class MatchBudgetExceeded(ArticleError):
    """Matching one article took more than its budget (`limits.match_budget`), code "too_costly".

    The engine raises it with an empty path, since it matches text; a caller that knows the file re-raises it
    with `with_path(path)`.
    """

    def __init__(self, budget: float, path: str | Path = "") -> None:
        self.budget = budget
        super().__init__(path, f"matching took more than its budget of {budget:g} s of CPU", "too_costly")

    def __reduce__(self) -> tuple[type[MatchBudgetExceeded], tuple[float, str]]:  # type: ignore[override]
        return MatchBudgetExceeded, (self.budget, self.path)

    def with_path(self, path: str | Path) -> MatchBudgetExceeded:
        return MatchBudgetExceeded(self.budget, path)
