"""The one exception tree of news-monitor.

    MonitorError
    ├── ConfigError             settings that cannot be used (file or variable, key, what was expected)
    ├── RulesError              a rules file that cannot be loaded: its problems, one `file:line:column: message` each
    ├── YamlProblem             a YAML file that cannot be read or parsed (line, column); its loader (settings,
    │                           rules, labels) re-raises it as a ConfigError or RulesError naming the file
    ├── QueryError              a rule's query that does not compile (0-based position); also a ValueError;
    │                           loading the rules turns it into a RulesError problem
    ├── ArticleError            an article file that cannot be read (path, reason, code); becomes a recorded rejection
    │   └── MatchBudgetExceeded matching it took more CPU than `limits.match_budget` (code "too_costly")
    └── StoreError              the state store is missing, unwritable, unreachable or of another schema

A failed delivery is no exception but data: the deliverer's `Attempt` (outcome, status, masked error), stored
with the delivery. Every message says what failed, where, and what was expected, and never carries a secret.
At the command line (`monitor.cli.main.main`) every MonitorError ends as `error: <message>` on stderr (one line
a problem) and exit status 1, never a traceback.
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


class YamlProblem(MonitorError):
    """A YAML file that cannot be read or parsed, where it happened (1-based) when known; without the file's
    name: the loader that opened the file adds it."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        self.message, self.line, self.column = message, line, column
        super().__init__(message)


class QueryError(MonitorError, ValueError):
    """A query that does not compile, with the 0-based position in the query when known."""

    def __init__(self, message: str, position: int | None = None) -> None:
        self.position = position
        super().__init__(message)


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
