"""Every YAML example in README.md and docs/ loads as written: rules files with the rules loader, settings
with the settings loader (a fragment of either is completed with the keys it leaves out, nothing else)."""

from __future__ import annotations

import re
import shutil
import textwrap
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from monitor.rules import load_rules
from monitor.settings import load_settings
from tests.conftest import ROOT, SECRET

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
