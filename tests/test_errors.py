"""The one exception tree (monitor/errors.py) and the CLI's error boundary: every MonitorError, whichever
module raises it, ends as one `error:` line a problem on stderr and exit status 1, never a traceback."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from monitor import errors
from monitor.cli import main as cli
from monitor.config.yamlfile import load_yaml
from monitor.errors import (
    ArticleError,
    ConfigError,
    MatchBudgetExceeded,
    MonitorError,
    QueryError,
    RuleProblem,
    RulesError,
    StoreError,
    YamlProblem,
)
from monitor.matching.query import Compiler

# One instance of every MonitorError subclass, as the code raises it; a new subclass must be added here.
EXAMPLES: dict[type[MonitorError], MonitorError] = {
    MonitorError: MonitorError("--port: cannot listen on 127.0.0.1:80: Permission denied"),
    ConfigError: ConfigError("unknown key (a typo?)", source="config/monitor.yaml:3"),
    RulesError: RulesError([RuleProblem("config/rules.yaml", 4, "rule 'x': query: empty query", 12)]),
    YamlProblem: YamlProblem("invalid YAML: mapping values are not allowed here", 2, 7),
    QueryError: QueryError("wildcard 'a*' needs at least two letters that are not wildcards", 0),
    ArticleError: ArticleError("in/a.txt", "no date header", "no_date"),
    MatchBudgetExceeded: MatchBudgetExceeded(0.5, "in/huge.txt"),
    StoreError: StoreError("cannot open state store postgresql+psycopg://***@db/monitor: refused"),
}


def _subclasses(cls: type[MonitorError]) -> set[type[MonitorError]]:
    found = {cls}
    for sub in cls.__subclasses__():
        if sub.__module__.startswith("monitor."):
            found |= _subclasses(sub)
    return found


def test_every_exception_class_of_errors_py_is_in_the_tree_and_has_an_example() -> None:
    defined = {obj for _, obj in inspect.getmembers(errors, inspect.isclass) if issubclass(obj, BaseException)}
    assert all(issubclass(cls, MonitorError) for cls in defined), "an exception outside the MonitorError tree"
    assert _subclasses(MonitorError) == set(EXAMPLES), "a MonitorError subclass without an example here"


@pytest.mark.parametrize("error", list(EXAMPLES.values()), ids=[cls.__name__ for cls in EXAMPLES])
def test_the_cli_boundary_prints_each_error_as_one_line_and_exits_1(
    error: MonitorError, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def command() -> None:
        raise error

    monkeypatch.setattr(cli, "app", command)
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [f"error: {error}"]
    assert "Traceback" not in err


def test_errors_raised_by_the_query_compiler_and_the_yaml_loader_are_monitor_errors(tmp_path: Path) -> None:
    with pytest.raises(MonitorError) as caught:
        Compiler({}).compile("a* AND")
    assert isinstance(caught.value, QueryError) and isinstance(caught.value, ValueError)
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: b: c\n")
    with pytest.raises(MonitorError) as problem:
        load_yaml(broken)
    assert isinstance(problem.value, YamlProblem) and problem.value.line == 1
