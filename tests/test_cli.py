"""The command line as a user meets it: real processes, exit codes, messages without tracebacks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, SEED_RULES, SEEDS


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """The command of this checkout (whatever `monitor` the environment would import from `cwd`)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "monitor", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "config", tmp_path / "config")
    shutil.copytree(SEEDS, tmp_path / "seeds")
    return tmp_path


def test_check_json_shows_the_seeds_matches_and_writes_no_state(project: Path) -> None:
    result = run("check", "--json", *(str(p) for p in sorted((project / "seeds").glob("*.txt"))), cwd=project)
    assert result.returncode == 0, result.stderr
    reports = {Path(r["path"]).name: r for r in json.loads(result.stdout)}
    assert {name: {m["rule"] for m in r["matches"]} for name, r in reports.items()} == SEED_RULES
    hit = reports["000_3107e6f82356df66.txt"]["matches"][0]["hits"][0]
    assert hit["snippet"].count("[[") == 1 and hit["text"] in hit["snippet"]
    assert not (project / "state").exists()


def test_check_reports_a_bad_file_without_failing(project: Path) -> None:
    (project / "bad.txt").write_bytes(b"no date here")
    result = run("check", "bad.txt", cwd=project)
    assert result.returncode == 0
    assert "rejected" in result.stdout and "no_date" in result.stdout


def test_validate_and_test_rules_pass_on_the_shipped_rules(project: Path) -> None:
    assert run("validate", cwd=project).returncode == 0
    result = run("test-rules", cwd=project)
    assert result.returncode == 0, result.stdout
    for rule in ("hoogverraad", "arrestaties", "csto", "dodental"):
        assert rule in result.stdout


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ("version: 1\nrules:\n  - name: x\n    query: 'a AND (b'\n", r"rules\.yaml:4:\d+: rule 'x': unexpected end"),
        ("version: 1\nrules:\n  - name: x\n    quer: a\n", r"rules\.yaml:4:\d+: rules\.0\.quer: unknown key"),
        (
            "version: 1\nwebhooks:\n  w:\n    url: ${NOPE_NOT_SET}\nrules: []\n",
            r"rules\.yaml:4: environment variable NOPE_NOT_SET",
        ),
        ("version: 1\nrules: [\n", r"rules\.yaml:\d+:\d+: invalid YAML"),
        (
            "version: 1\nrules:\n  - name: x\n    query: a\n    notify: [ghost]\n",
            r"rules\.yaml:5: rule 'x': unknown webhook 'ghost'",
        ),
        (
            "version: 1\nrules:\n  - name: x\n    query: a\n    examples:\n      match: [b]\n",
            r"rule 'x': example should match: 'b'",
        ),
    ],
    ids=["query", "typo", "env", "yaml", "webhook", "example"],
)
def test_validate_names_file_line_and_what_was_expected(project: Path, rules: str, expected: str) -> None:
    (project / "config" / "rules.yaml").write_text(rules)
    result = run("validate", cwd=project)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert __import__("re").search(expected, result.stderr), result.stderr


def test_run_refuses_invalid_rules_with_one_message(project: Path) -> None:
    (project / "config" / "rules.yaml").write_text("version: 1\nrules:\n  - name: x\n    query: 'a AND (b'\n")
    result = run("run", cwd=project)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "rules.yaml:4" in result.stderr


def test_db_prune_dry_run_on_a_new_store_prints_every_table_and_prunes_nothing(project: Path) -> None:
    result = run("db", "prune", "--dry-run", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "would delete" in result.stdout
    counts = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()[1:]}
    assert counts == dict.fromkeys(["deliveries", "alerts", "digest_claims", "files", "articles"], "0")


def test_db_prune_refuses_invalid_rules_with_one_message(project: Path) -> None:
    """The prune needs the rules' realert windows (alerts outlive them): no rules, no prune."""
    (project / "config" / "rules.yaml").write_text("version: 1\nrules:\n  - name: x\n    query: 'a AND (b'\n")
    result = run("db", "prune", cwd=project)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "rules.yaml:4" in result.stderr
    assert not (project / "state").exists()


def test_demo_once_prints_the_seeds_alerts(project: Path) -> None:
    result = run("demo", "--once", "--port", "0", cwd=project)
    assert result.returncode == 0, result.stderr
    alerts = [line for line in result.stdout.splitlines() if line.startswith("ALERT ")]
    assert len(alerts) == sum(len(rules) for rules in SEED_RULES.values())
