"""The command line as a user meets it: real processes, exit codes, messages without tracebacks."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from monitor.cli.receiver import Receiver
from tests.conftest import (
    ROOT,
    SEED_RULES,
    SEEDS,
    DaemonProcess,
    copy_seeds,
    free_port,
    shipped_rules,
    this_checkout,
    wait_until,
)

pytestmark = pytest.mark.e2e  # every test runs `news-monitor` as a process: 0.1-2.5 s each, ~35 s in all


def run(*args: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    """`news-monitor ARGS` off a terminal, running this checkout's code (not whichever `monitor` is installed)."""
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**this_checkout(), **env},
    )


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
    # issue 17: the facts of each match, and the article's language
    seed = reports["003_1649dd4e54c446b5.txt"]
    matches = {m["rule"]: m for m in seed["matches"]}
    assert seed["language"] == "nl"
    assert matches["arrestaties"]["count"] == {"value": 8000, "qualifier": "almost", "text": "bijna achtduizend"}
    assert matches["dodental"]["count"] == {"value": 164, "qualifier": None, "text": "164"}
    assert all(hit["negated"] is False for m in seed["matches"] for hit in m["hits"])


def test_check_reports_every_file_and_fails_if_one_is_rejected(project: Path) -> None:
    (project / "bad.txt").write_bytes(b"no date here")
    good = str(sorted((project / "seeds").glob("*.txt"))[0])
    result = run("check", "bad.txt", good, cwd=project)
    assert result.returncode == 1
    assert "rejected" in result.stdout and "no_date" in result.stdout and "matches: hoogverraad" in result.stdout
    assert run("check", "--json", "bad.txt", cwd=project).returncode == 1


def test_check_of_a_file_that_does_not_exist_fails(project: Path) -> None:
    result = run("check", "nonexistent.txt", cwd=project)
    assert result.returncode == 1
    assert "nonexistent.txt" in result.stdout and "rejected" in result.stdout


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
        ("version: 1\nrules:\n  - name: x\n    quer: a\n", r"rules\.yaml:4:\d+: rule 'x': quer: unknown key"),
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
    assert re.search(expected, result.stderr), result.stderr


BROKEN_TEMPLATE_RULES = (
    "version: 1\nwebhooks:\n  hook:\n    url: http://127.0.0.1:9/x\n    format: template\n"
    "    template: broken.json.j2\nrules:\n  - {name: x, query: hoogverraad}\n"
)


@pytest.mark.parametrize(
    "command", [("validate",), ("test-rules",), ("status",), ("db", "prune", "--dry-run"), ("run",)], ids=" ".join
)
def test_every_command_that_loads_the_rules_checks_their_template_files(project: Path, command: tuple[str]) -> None:
    (project / "config" / "rules.yaml").write_text(BROKEN_TEMPLATE_RULES)
    (project / "config" / "broken.json.j2").write_text('{"rule": {{ rule }')  # a Jinja2 syntax error
    result = run(*command, cwd=project)
    assert "Traceback" not in result.stderr
    if command == ("status",):  # status reports the rules' problem in its report, and succeeds
        assert result.returncode == 0 and "broken.json.j2" in result.stdout, result.stdout
        return
    assert result.returncode == 1, result.stderr
    assert re.search(r"rules\.yaml:6: webhook 'hook': .*broken\.json\.j2", result.stderr), result.stderr


def test_validate_shows_every_problem_on_its_own_line(project: Path) -> None:
    rules = "version: 1\nrules:\n  - name: x\n    query: 'a AND (b'\n  - name: y\n    query: 'c OR'\n"
    (project / "config" / "rules.yaml").write_text(rules)
    result = run("validate", cwd=project)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: ") and "\\n" not in result.stderr, result.stderr
    assert "rules.yaml:4" in lines[0] and "rules.yaml:6" in lines[1]


@pytest.mark.parametrize(
    ("rules", "problems", "failed"),
    [
        (None, [], []),
        ("version: 1\nrules:\n  - name: x\n    query: 'a AND (b'\n", [r"rules\.yaml:4:\d+: rule 'x'"], []),
        ("version: 1\nrules:\n  - name: x\n    query: a\n    examples:\n      match: [b]\n", [], ["x"]),
    ],
    ids=["ok", "problem", "example"],
)
def test_validate_json_for_scripts(project: Path, rules: str | None, problems: list[str], failed: list[str]) -> None:
    if rules is not None:
        (project / "config" / "rules.yaml").write_text(rules)
    result = run("validate", "--json", cwd=project)
    report = json.loads(result.stdout)
    assert result.returncode == (0 if report["ok"] else 1) and report["ok"] == (not problems and not failed)
    assert len(report["problems"]) == len(problems)
    assert all(re.search(p, line) for p, line in zip(problems, report["problems"], strict=True))
    assert [f["rule"] for f in report["failed_examples"]] == failed


def test_test_rules_json_for_scripts(project: Path) -> None:
    result = run("test-rules", "--json", cwd=project)
    assert result.returncode == 0, result.stderr
    rows = {row["rule"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {"hoogverraad", "arrestaties", "csto", "dodental"}
    assert all(row["examples"] == row["passed"] > 0 and row["failed"] == [] for row in rows.values())


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
    assert counts == dict.fromkeys(
        ["deliveries", "alerts", "digest_claims", "files", "articles", "reading", "story_articles", "chat_threads"], "0"
    )


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


def test_demo_once_on_an_empty_folder_ends(project: Path) -> None:
    """Found in review: with no file to wait for, `--once` asked for the deliverer before the daemon had made
    it, and the error was swallowed at every check: it never ended (the run's timeout fails this test)."""
    for seed in (project / "seeds").iterdir():
        seed.unlink()
    result = run("demo", "--once", "--port", "0", cwd=project)
    assert result.returncode == 0, result.stderr
    assert not [line for line in result.stdout.splitlines() if line.startswith("ALERT ")]


# Issue 16: a CLI that fits its users' habits. Every run here is off a terminal, as in a script or a container.

PROBE = """
import sys
from monitor.cli.main import app
try:
    app(sys.argv[1:], prog_name="news-monitor")
except BaseException:
    pass
sys.stderr.write("\\nMODULES " + " ".join(sorted(sys.modules)))
"""
HEAVY = {
    "pydantic",
    "sqlalchemy",
    "httpx",
    "watchdog",
    "apscheduler",
    "alembic",
    "jinja2",
    "monitor.matching",
    "monitor.store",
}


@pytest.mark.parametrize(
    ("args", "allowed"),
    [
        (["--help"], set()),
        (["--version"], set()),
        (["check", "--help"], {"pydantic"}),  # typer coerces a command's parameters with pydantic
        (["validate"], {"pydantic", "httpx", "monitor.matching"}),  # URLs parsed as httpx does; rules compiled
        (["health", "--url", "http://127.0.0.1:9/healthz", "--timeout", "0.5"], {"pydantic", "httpx"}),
    ],
    ids=["help", "version", "check-help", "validate", "health"],
)
def test_light_commands_import_only_what_they_use(project: Path, args: list[str], allowed: set[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        env=this_checkout(),
    )
    modules = set(result.stderr.rpartition("MODULES ")[2].split())
    assert "typer" in modules
    imported = {heavy for heavy in HEAVY - allowed if any(m == heavy or m.startswith(heavy + ".") for m in modules)}
    assert not imported, f"`news-monitor {' '.join(args)}` imported {sorted(imported)}"


def test_version_is_the_installed_distributions() -> None:
    from importlib.metadata import version

    result = run("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"news-monitor {version('news-monitor')}"


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize(
    "command", [["run"], ["receive", "--port", "{port}"], ["demo", "--port", "{port}"]], ids=["run", "receive", "demo"]
)
def test_a_busy_port_is_one_line_on_stderr_and_exit_1(project: Path, busy_port: int, command: list[str]) -> None:
    args = [arg.format(port=busy_port) for arg in command]
    result = run(*args, cwd=project, MONITOR_HTTP__PORT=str(busy_port), MONITOR_LOG__FORMAT="json")
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if not line.startswith("{")]  # json log lines
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and f"127.0.0.1:{busy_port}" in lines[0]
    assert "in use" in lines[0].lower()


@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_list_not_written_as_json_is_one_line_naming_the_variable(project: Path, command: str) -> None:
    result = run(command, cwd=project, MONITOR_WATCH__FOLDERS="inbox")
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: MONITOR_WATCH__FOLDERS: ") and """'["inbox"]'""" in result.stderr


SETTINGS_MISTAKES = [
    ("MONITOR_HTTP__PORT", "abc", "http.port: Input should be a valid integer"),
    ("MONITOR_WATCH__FOLDER", '["inbox"]', "watch.folder: unknown key (a typo?)"),
    ("MONITOR_TIMEZONEE", "UTC", "not a setting (a typo?)"),
]


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize(("name", "value", "expected"), SETTINGS_MISTAKES, ids=["value", "nested-typo", "typo"])
def test_a_settings_mistake_in_the_environment_names_the_variable(
    project: Path, command: str, name: str, value: str, expected: str
) -> None:
    result = run(command, cwd=project, **{name: value})
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"error: {name}: {result.stderr.partition(name + ': ')[2].strip()}"]
    assert expected in result.stderr and "monitor.yaml" not in result.stderr


@pytest.mark.parametrize(("name", "value", "expected"), SETTINGS_MISTAKES, ids=["value", "nested-typo", "typo"])
def test_a_settings_mistake_in_dotenv_names_the_file_and_the_variable(
    project: Path, name: str, value: str, expected: str
) -> None:
    (project / ".env").write_text(f"{name}='{value}'\n")
    result = run("validate", cwd=project)
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"error: .env: {name}: ") and expected in result.stderr
    assert "monitor.yaml" not in result.stderr


def test_a_settings_mistake_in_the_file_names_its_line_whatever_the_environment_sets(project: Path) -> None:
    settings = project / "config" / "monitor.yaml"
    settings.write_text(settings.read_text() + "http:\n  host: 127.0.0.1\n  port: abc\n")
    line = len(settings.read_text().splitlines())
    result = run(
        "validate",
        cwd=project,
        MONITOR_HTTP__HOST="127.0.0.2",
        MONITOR_TEST_PG_URL="x",
        MONITOR_CONFIG="config/monitor.yaml",
    )
    assert result.returncode == 1
    assert result.stderr == f"error: config/monitor.yaml:{line}: http.port: Input should be a valid integer, " + (
        "unable to parse string as an integer\n"
    )


def test_log_levels_are_case_insensitive(project: Path) -> None:
    assert run("validate", cwd=project, MONITOR_LOG__LEVEL="debug").returncode == 0
    settings = project / "config" / "monitor.yaml"
    settings.write_text(settings.read_text().replace("level: INFO", "level: warning"))
    result = run("validate", cwd=project)
    assert result.returncode == 0, result.stderr


def test_redeliver_of_an_unknown_id_fails(project: Path) -> None:
    result = run("redeliver", "msg_doesnotexist", cwd=project)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "no delivery with id msg_doesnotexist" in result.stderr


@pytest.mark.parametrize("action", ["disable", "enable"])
def test_webhooks_refuses_a_webhook_the_rules_do_not_name(project: Path, action: str) -> None:
    result = run("webhooks", action, "nosuchhook", cwd=project)
    assert result.returncode == 1
    assert "no webhook 'nosuchhook'" in result.stderr and "newsroom" in result.stderr
    status = json.loads(run("status", "--json", cwd=project).stdout)
    assert [hook["name"] for hook in status["webhooks"]] == []


def test_commands_that_only_read_create_no_state(project: Path) -> None:
    status = run("status", cwd=project)
    assert status.returncode == 0 and "none yet" in status.stdout and "outbox    empty" in status.stdout
    assert json.loads(run("status", "--json", cwd=project).stdout)["outbox"] == {}
    assert run("deliveries", "--json", cwd=project).stdout.strip() == "[]"
    assert run("redeliver", "msg_x", cwd=project).returncode == 1
    assert not (project / "state").exists()


def test_delivery_states_offered_are_the_stores() -> None:
    from monitor.cli.state import DeliveryState
    from monitor.store import State

    assert [s.value for s in DeliveryState] == [s.value for s in State]


def test_webhooks_disable_and_enable_a_webhook_of_the_rules(project: Path) -> None:
    assert run("webhooks", "disable", "newsroom", cwd=project).returncode == 0
    status = json.loads(run("status", "--json", cwd=project).stdout)
    assert [(hook["name"], hook["disabled"]) for hook in status["webhooks"]] == [("newsroom", True)]
    assert run("webhooks", "enable", "newsroom", cwd=project).returncode == 0


def test_help_shows_the_default_settings_file() -> None:
    result = run("check", "--help")
    assert result.returncode == 0
    assert "config/monitor.yaml" in result.stdout and "MONITOR_CONFIG" in result.stdout


def test_validate_counts_in_words(project: Path) -> None:
    result = run("validate", cwd=project)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok: 4 rules, 1 webhook"


def test_check_escapes_terminal_codes_of_names_and_texts(project: Path) -> None:
    name = "\x1b]0;pwned\x07\x1b[31mrood.txt"
    # ESC makes an article binary (rejected); the C1 CSI (U+009B) is text, and a terminal code to some terminals
    (project / name).write_text("date 2022-01-07\nKarim Masimov \x9b2J is opgepakt wegens hoogverraad.\n")
    (project / ("\x1b[32m" + "bad.txt")).write_text("no date \x1b[5m here\n")
    result = run("check", name, "\x1b[32mbad.txt", cwd=project)
    assert not {"\x1b", "\x07", "\x9b"} & set(result.stdout)
    assert "\\x1b]0;pwned\\x07\\x1b[31mrood.txt" in result.stdout
    assert "hoogverraad" in result.stdout and "Masimov \\x9b2J is" in result.stdout


def test_health_asks_the_port_of_the_settings(daemon_factory: Callable[..., DaemonProcess], receiver: Receiver) -> None:
    daemon = daemon_factory(shipped_rules(receiver.url)).start()
    result = run("health", "--config", str(daemon.home / "monitor.yaml"), cwd=daemon.home)
    assert result.returncode == 0, result.stderr
    assert daemon.stop() == 0
    result = run("health", "--config", str(daemon.home / "monitor.yaml"), "--timeout", "2", cwd=daemon.home)
    assert result.returncode == 1
    assert f"127.0.0.1:{daemon.port}/healthz" in result.stderr and "Traceback" not in result.stderr


def test_state_commands_print_whole_lines_and_ids_that_feed_redeliver(
    daemon_factory: Callable[..., DaemonProcess], receiver: Receiver
) -> None:
    daemon = daemon_factory(shipped_rules(receiver.url)).start()
    names = copy_seeds(daemon.watched)
    hostile = "\x1b[31m\x1b]0;pwned\x07kapot.txt"
    (daemon.watched / hostile).write_text("no date here\n")
    daemon.wait_settled([*names, hostile])
    config = ("--config", str(daemon.home / "monitor.yaml"))
    try:
        listed = run("deliveries", *config, cwd=daemon.home)
        status = run("status", *config, cwd=daemon.home)
        store = daemon.store()
        ids = [d.id for d in store.deliveries()]
        store.close()
        assert len(ids) == 5
        table = listed.stdout.splitlines()
        for delivery_id in ids:  # whole, one row each: an id cut to `msg_21a3…` cannot be redelivered
            assert sum(delivery_id in line for line in table) == 1, listed.stdout
        again = run("redeliver", ids[0], *config, cwd=daemon.home)
        assert again.returncode == 0 and again.stdout.strip() == "queued 1 delivery again"
        assert "\x1b" not in status.stdout and "\x07" not in status.stdout
        assert any(
            "\\x1b[31m\\x1b]0;pwned\\x07kapot.txt" in line and "no_date" in line for line in status.stdout.splitlines()
        )
        rules_line = next(line for line in status.stdout.splitlines() if line.startswith("rules"))
        assert str(daemon.home / "rules.yaml") in rules_line and rules_line.endswith("dodental")  # not cut at 80
    finally:
        assert daemon.stop() == 0


TEMPLATE = ROOT / "tests" / "golden" / "template.json.j2"


def receive(port: int) -> subprocess.Popen[str]:
    """`news-monitor receive --port PORT`, its output in pipes."""
    command = [sys.executable, "-m", "monitor", "receive", "--port", str(port)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=this_checkout())


@pytest.mark.slow
def test_receive_prints_every_format(daemon_factory: Callable[..., DaemonProcess], tmp_path: Path) -> None:
    port = free_port()
    printer = receive(port)
    formats = ["generic", "slack", "discord", "mattermost", "teams", "template"]
    try:
        rules = shipped_rules(f"http://127.0.0.1:{port}/generic")
        shutil.copyfile(TEMPLATE, tmp_path / "template.json.j2")
        for name in formats[1:]:
            rules["webhooks"][name] = {"url": f"http://127.0.0.1:{port}/{name}", "format": name}
        rules["webhooks"]["template"]["template"] = str(tmp_path / "template.json.j2")
        rules["rules"] = [{"name": "hoogverraad", "query": "hoogverraad", "notify": ["newsroom", *formats[1:]]}]
        assert printer.stdout is not None
        assert printer.stdout.readline().startswith(f"listening on http://127.0.0.1:{port}")
        daemon = daemon_factory(rules).start()
        shutil.copyfile(SEEDS / "000_3107e6f82356df66.txt", daemon.watched / "000_3107e6f82356df66.txt")
        daemon.wait_settled(["000_3107e6f82356df66.txt"])
        assert daemon.stop() == 0
    finally:
        printer.terminate()
        output, errors = printer.communicate(timeout=10)
    requests = [block for block in output.split("\n\n") if "webhook-id msg_" in block]
    assert len(requests) == len(formats), output + errors
    for block in requests:
        assert "None" not in block, block
        assert "hoogverraad" in block and "3107e6f82356df66" in block, block  # markdown may escape `_`


@pytest.mark.parametrize("command", [["db", "current"], ["db", "upgrade"], ["db", "prune"]], ids=" ".join)
def test_db_commands_name_an_unparseable_variable_in_one_line(project: Path, command: list[str]) -> None:
    result = run(*command, cwd=project, MONITOR_WATCH__FOLDERS="inbox")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "MONITOR_WATCH__FOLDERS" in result.stderr


def test_db_current_and_prune_before_the_first_start_create_no_state(project: Path) -> None:
    current = run("db", "current", cwd=project)
    assert current.returncode == 0 and "revision none" in current.stdout, current.stderr
    for dry_run in (["--dry-run"], []):
        pruned = run("db", "prune", *dry_run, cwd=project)
        assert pruned.returncode == 0 and "deliveries" in pruned.stdout, pruned.stderr
    assert not (project / "state").exists()
    assert "--config FILE" in run("db", "prune", "--help", cwd=project).stdout  # as every command says it


def test_receive_prints_a_digest_whose_alerts_were_pruned() -> None:
    """A kept digest whose alert rows are gone is sent with each alert as its id only (monitor/store.py):
    `receive` answers it and prints the ids, rather than failing the request with a traceback."""
    import httpx

    port = free_port()
    printer = receive(port)
    digest = {"rule": "r", "slot": "2026-01-01T09:00:00+00:00", "count": 2}
    digest["alerts"] = [{"alert_id": "alr_gone"}, {"alert_id": "alr_also_gone"}]
    try:
        assert printer.stdout is not None
        assert printer.stdout.readline().startswith(f"listening on http://127.0.0.1:{port}")
        body = {"type": "alert.digest", "data": digest}
        response = httpx.post(f"http://127.0.0.1:{port}/hook", json=body, headers={"webhook-id": "msg_1"}, timeout=10)
        assert response.status_code == 200
    finally:
        printer.terminate()
        output, errors = printer.communicate(timeout=10)
    assert "Traceback" not in errors, errors
    assert "DIGEST r" in output and "alr_gone" in output and "alr_also_gone" in output, output


def test_validate_refuses_a_missing_watched_folder_in_one_line(project: Path) -> None:
    result = run("validate", cwd=project, MONITOR_WATCH__FOLDERS='["inbox"]')
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: watch.folders: 'inbox' does not exist (create it, or set watch.create_folders: true)"
    )
    assert not (project / "inbox").exists()
    made = run("validate", cwd=project, MONITOR_WATCH__FOLDERS='["inbox"]', MONITOR_WATCH__CREATE_FOLDERS="true")
    assert made.returncode == 0, made.stderr
    assert not (project / "inbox").exists()  # validate checks, it makes nothing


def test_shell_completion_is_offered_and_completes_commands() -> None:
    """Through the installed `news-monitor` script: a shell completes that name (its variable is named after it)."""
    script = Path(sys.executable).parent / "news-monitor"
    if not script.exists():
        pytest.skip(f"no installed news-monitor script beside {sys.executable}")

    def installed(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        argv = [str(script), *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, env={**this_checkout(), **env})

    assert "--install-completion" in installed("--help").stdout
    shown = installed("--show-completion", "bash")
    assert shown.returncode == 0 and "complete -o default -F _news_monitor_completion news-monitor" in shown.stdout
    # What bash asks when Tab is pressed after `news-monitor va`:
    asked = installed(_NEWS_MONITOR_COMPLETE="complete_bash", COMP_WORDS="news-monitor va", COMP_CWORD="1")
    assert asked.returncode == 0 and asked.stdout.split() == ["validate"], asked.stderr


def test_the_systemd_layout_runs_with_paths_from_the_settings_files_folder(receiver: Receiver, tmp_path: Path) -> None:
    """deploy/news-monitor.service: settings in /etc/news-monitor/, another working directory. The rules file,
    the watched folder and the state file written relative in the settings file are found beside it."""
    import signal

    import httpx
    from ruamel.yaml import YAML

    etc, var = tmp_path / "etc" / "news-monitor", tmp_path / "var" / "lib" / "news-monitor"
    (etc / "articles").mkdir(parents=True)
    var.mkdir(parents=True)
    YAML(typ="safe").dump(shipped_rules(receiver.url), etc / "rules.yaml")
    port = free_port()
    settings = (
        "rules_file: rules.yaml\nwatch:\n  folders: [articles]\n  settle: 0.5s\nstate:\n  url: sqlite:///monitor.db\n"
    )
    (etc / "monitor.yaml").write_text(settings + f"http:\n  port: {port}\nlog:\n  format: json\n", encoding="utf-8")
    assert run("validate", cwd=var, MONITOR_CONFIG=str(etc / "monitor.yaml")).returncode == 0
    env = {**this_checkout(), "MONITOR_CONFIG": str(etc / "monitor.yaml")}
    log = (tmp_path / "daemon.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "monitor", "run"], cwd=var, env=env, stdout=log, stderr=log)
    try:
        ready = f"http://127.0.0.1:{port}/readyz"

        def answers() -> bool:
            assert proc.poll() is None, (tmp_path / "daemon.log").read_text()
            try:
                return httpx.get(ready, timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(answers, 30, "the daemon's /readyz")
        copy_seeds(etc / "articles")
        assert receiver.wait_for(lambda got: len(got) >= 1, timeout=30), (tmp_path / "daemon.log").read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        log.close()
    assert (etc / "monitor.db").exists() and not (var / "monitor.db").exists()
    assert not (var / "articles").exists()
