"""Every YAML example in README.md and docs/ loads as written: rules files with the rules loader, settings
with the settings loader (a fragment of either is completed with the keys it leaves out, nothing else)."""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from monitor.cli.main import app
from monitor.config.rules import load_rules
from monitor.config.settings import load_settings
from tests.conftest import ROOT, SECRET, this_checkout

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXAMPLES = [
    pytest.param(
        textwrap.dedent(found.group(1)), id=f"{path.name}:{path.read_text()[: found.start()].count(chr(10)) + 1}"
    )
    for path in DOCUMENTS
    for found in re.finditer(r"^ *```yaml\n(.*?)^ *```", path.read_text(), re.MULTILINE | re.DOTALL)
]
TEMPLATE = ROOT / "tests" / "golden" / "template.json.j2"


def test_the_documents_have_yaml_examples() -> None:
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("text", EXAMPLES)
def test_yaml_example_loads(text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = YAML(typ="safe").load(text)
    config = tmp_path / "config"
    config.mkdir()
    if {"rules", "webhooks", "lists"} & data.keys():
        for name in re.findall(r"\$\{(\w+)", text):
            value = SECRET if "SECRET" in name else f"http://127.0.0.1:9/{name.lower()}"
            monkeypatch.setenv(name, value)
        for hook in (data.get("webhooks") or {}).values():
            if "template" in hook:  # a relative template path is read from the rules file's folder
                (config / hook["template"]).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(TEMPLATE, config / hook["template"])
        head = "" if "version" in data else "version: 1\n"
        tail = "" if "rules" in data else "\nrules: []\n"
        (config / "rules.yaml").write_text(head + text + tail)
        ruleset = load_rules(config / "rules.yaml")
        assert len(ruleset.rules) == len(data.get("rules") or [])
    else:
        (config / "monitor.yaml").write_text(text)
        load_settings(config / "monitor.yaml")


# -- command lines -----------------------------------------------------------------------------------------------
COMMAND_LINES = sorted(
    {
        found.group(1)
        for path in [*DOCUMENTS, ROOT / "Dockerfile", *sorted((ROOT / "deploy").iterdir())]
        for found in re.finditer(r"`news-monitor ([^`<]*)`", path.read_text(encoding="utf-8"))
    }
)
# Run as written, off a terminal, on a copy of the project: every one that needs no running daemon and
# changes nothing outside its folder (not `run`, `health`, `redeliver ID`, nor `--install-completion`,
# which edits the shell's start-up file).
RUNNABLE = [line for line in COMMAND_LINES if not re.search(r"[A-Z]{2}|\[|run$|^health|^redeliver|--install", line)]


def test_the_documents_have_command_lines() -> None:
    assert len(COMMAND_LINES) >= 20 and len(RUNNABLE) >= 10


@pytest.mark.parametrize("line", COMMAND_LINES)
def test_command_line_names_real_commands_and_options(line: str) -> None:
    """`news-monitor db prune [--dry-run]`: `db prune` is a command, and `--dry-run` one of its options."""
    from typer.testing import CliRunner

    words = line.replace("\\|", "|").split()
    path = list(itertools.takewhile(lambda word: re.fullmatch(r"[a-z][a-z-]*", word), words))
    shown = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    for option in re.findall(r"--[a-z-]+", line):
        assert option in shown.output, f"{line}: {option} is not an option of news-monitor {' '.join(path)}"


@pytest.mark.parametrize("line", RUNNABLE)
def test_command_line_runs_as_written(line: str, tmp_path: Path) -> None:
    for folder in ("config", "seeds", "tests/data"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    result = subprocess.run(
        [sys.executable, "-m", "monitor", *line.split()],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=this_checkout(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
