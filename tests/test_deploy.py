"""Deployment files, tested as far as this machine allows: no Docker engine runs here, so the image's own
ENTRYPOINT and HEALTHCHECK commands run outside a container, with the image's environment."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, this_checkout, wait_until

pytestmark = pytest.mark.e2e
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instruction(name: str) -> str:
    """The argument of a Dockerfile instruction, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    found = re.search(rf"^{name}\s+(.*)$", joined, re.MULTILINE)
    assert found, f"no {name} in the Dockerfile"
    return found.group(1).strip()


def image_env() -> dict[str, str]:
    pairs = re.findall(r"(\w+)=('[^']*'|\S+)", instruction("ENV"))
    return {key: value.strip("'") for key, value in pairs}


def command(argv: list[str]) -> list[str]:
    """The image's command with its program taken from this venv."""
    program = shutil.which(argv[0], path=str(Path(sys.executable).parent))
    assert program, f"{argv[0]} is not installed in this environment"
    return [program, *argv[1:]]


def test_entrypoint_is_exec_form_and_the_healthcheck_passes(tmp_path: Path) -> None:
    entrypoint = json.loads(instruction("ENTRYPOINT"))
    assert entrypoint == ["news-monitor", "run"]  # exec form: SIGTERM reaches the daemon itself
    health = json.loads(instruction("HEALTHCHECK").split("CMD", 1)[1])
    assert re.search(r"^USER 10001:10001$", DOCKERFILE, re.MULTILINE), "a numeric non-root user (runAsNonRoot)"
    assert "useradd --system --uid 10001 --gid 10001" in DOCKERFILE and DOCKERFILE.index(
        "pip install ."
    ) < DOCKERFILE.index("COPY monitor")
    shutil.copytree(ROOT / "config", tmp_path / "config")
    (tmp_path / "articles").mkdir()  # the image makes its /data/articles (mkdir -p): run refuses a missing folder
    assert "mkdir -p /data/articles" in DOCKERFILE
    port = free_port()
    env = {**this_checkout(), **image_env()}  # this checkout's code, whatever is installed
    env |= {
        "MONITOR_WATCH__FOLDERS": json.dumps([str(tmp_path / "articles")]),
        "MONITOR_STATE__URL": f"sqlite:///{tmp_path / 'state' / 'monitor.db'}",
        "MONITOR_HTTP__HOST": "127.0.0.1",  # the image listens on 0.0.0.0 inside its own network
        "MONITOR_HTTP__PORT": str(port),
    }
    assert health == ["news-monitor", "health"]  # it asks the port of the settings: MONITOR_HTTP__PORT here

    def healthcheck() -> int:  # as Docker runs it: in the image's WORKDIR (its config/), with its ENV
        return subprocess.run(command(health), cwd=tmp_path, env=env, capture_output=True).returncode

    log = (tmp_path / "daemon.log").open("wb")
    proc = subprocess.Popen(command(entrypoint), cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: healthcheck() == 0, 30, "HEALTHCHECK")
        assert '"event": "daemon_ready"' in (tmp_path / "daemon.log").read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert healthcheck() == 1  # stopped: unhealthy
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_systemd_unit_verifies(tmp_path: Path) -> None:
    unit = tmp_path / "news-monitor.service"
    text = (ROOT / "deploy" / "news-monitor.service").read_text()
    # The unit names the install location; point it at this venv's program so that verify can find it.
    unit.write_text(text.replace("/opt/news-monitor/.venv/bin/news-monitor", command(["news-monitor"])[0]))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    problems = [line for line in result.stderr.splitlines() if "news-monitor.service" in line]
    assert result.returncode == 0 and not problems, result.stderr


def test_shipped_files_point_at_documents_and_sections_that_exist() -> None:
    """A comment like `docs/rules.md, "The query language"` or `README "Rules"` names a file and a heading
    that are there."""
    shipped = [ROOT / "Dockerfile", *(ROOT / "config").glob("*.yaml"), *(ROOT / "deploy").iterdir()]
    pointers = [
        (path, match)
        for path in shipped
        for match in re.finditer(r'(README|[\w./-]+\.md),? "([^"]+)"', path.read_text())
    ]
    assert pointers, "no pointer found: the pattern no longer matches how the files cite the docs"
    for path, match in pointers:
        document = ROOT / match.group(1).replace("README", "README.md").replace(".md.md", ".md")
        assert document.is_file(), f"{path.name} names {match.group(1)}, which does not exist"
        headings = re.findall(r"^#+ (.+)$", document.read_text(), re.MULTILINE)
        assert match.group(2) in headings, f"{path.name} names a section {match.group(2)!r} that is not in {document}"


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern that matches the path or one of its folders decides."""
    folders = [path] + ["/".join(path.split("/")[:i]) for i in range(1, path.count("/") + 1)]
    ignored = False
    for pattern in patterns:
        if any(fnmatch(name, pattern.lstrip("!").rstrip("/")) for name in folders):
            ignored = not pattern.startswith("!")
    return ignored


def test_build_context_holds_what_the_image_copies_and_nothing_else() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    copied = [source for line in re.findall(r"^COPY (.+) \S+$", DOCKERFILE, re.MULTILINE) for source in line.split()]
    assert copied == ["pyproject.toml", "README.md", "monitor", "config"]
    for source in copied:
        assert not _ignored(source, patterns) and not _ignored(f"{source}/x.py", patterns), source
    for left_out in [
        ".venv/bin/python",
        ".git/HEAD",
        "state/monitor.db",
        ".env",
        "tests/conftest.py",
        "monitor/__pycache__/cli.cpython-311.pyc",
        ".mypy_cache/3.11/x.json",
    ]:
        assert _ignored(left_out, patterns), f"{left_out} would be sent to the Docker daemon"
