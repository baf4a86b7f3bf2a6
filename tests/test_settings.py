"""Settings: YAML, environment overrides, errors with file and line; durations; log redaction."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path

import pytest
import structlog

from monitor.config.durations import format_duration, parse_duration
from monitor.config.logs import configure
from monitor.config.redaction import mask_text
from monitor.config.settings import load_settings
from monitor.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("5m", 300), ("6h", 21600), ("1h30m", 5400), ("2d", 172800), ("500ms", 0.5), ("12", 12), (3, 3)],
    ids=["seconds", "minutes", "hours", "combined", "days", "milliseconds", "bare-number-text", "bare-number"],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "soon", "5 parsecs", "h5", "-5s"], ids=["empty", "word", "unit", "order", "sign"])
def test_bad_durations_say_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected e\.g\. 30s, 5m"):
        parse_duration(text)


def test_format_duration_round_trips() -> None:
    for text in ("5s", "5m", "2h", "10h", "1d"):
        assert format_duration(parse_duration(text)) == text


def test_yaml_then_environment_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "monitor.yaml"
    config.write_text("timezone: Europe/Amsterdam\nwatch:\n  folders: [in]\n  settle: 3s\n")
    monkeypatch.setenv("MONITOR_WATCH__SETTLE", "250ms")
    monkeypatch.setenv("MONITOR_STATE__URL", "sqlite:///elsewhere.db")
    settings = load_settings(config)
    assert settings.timezone == "Europe/Amsterdam"
    assert settings.watch.folders == [tmp_path / "in"]  # from the settings file's folder
    assert settings.watch.settle == timedelta(milliseconds=250)
    assert settings.state.url == "sqlite:///elsewhere.db"  # a variable's: from the working directory


@pytest.mark.parametrize(
    ("yaml", "line", "expected"),
    [
        ("watch:\n  observer: inotify\n", 2, "watch.observer: Input should be 'native' or 'polling'"),
        ("timezone: Mars/Olympus\n", 1, "unknown time zone 'Mars/Olympus'"),
        ("delivery:\n  concurrency: 0\n", 2, "delivery.concurrency"),
        ("watch:\n  settle: soon\n", 2, "expected e.g. 30s"),
        ("stat:\n  url: x\n", 1, "stat: unknown key (a typo?)"),
        ("http:\n  request_timeout: 0s\n", 2, "more than 0s and at most 1m"),
        ("http:\n  max_connections: 0\n", 2, "http.max_connections"),
        ("stories:\n  threshold: 0.22\n", 2, "stories.threshold: Input should be greater than or equal to 0.5"),
    ],
    ids=["enum", "timezone", "range", "duration", "typo", "request-timeout", "max-connections", "old-threshold"],
)
def test_settings_errors_name_file_and_line(tmp_path: Path, yaml: str, line: int, expected: str) -> None:
    config = tmp_path / "monitor.yaml"
    config.write_text(yaml)
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert f"{config}:{line}: " in str(caught.value)
    assert expected in str(caught.value)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    config = tmp_path / "monitor.yaml"
    config.write_text("watch:\n  folders: [a\n  settle: 2s\n")
    with pytest.raises(ConfigError, match=r"monitor\.yaml:\d+: invalid YAML"):
        load_settings(config)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("post to https://alice:s3cret@hooks.example/x failed", "https://***@hooks.example/x"),
        ("postgresql+psycopg://monitor:pw@db/monitor", "postgresql+psycopg://***@db/monitor"),
        ("secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw leaked", "whsec_***"),
    ],
    ids=["https", "database", "whsec"],
)
def test_mask_hides_credentials(text: str, shown: str) -> None:
    masked = mask_text(text)
    assert shown in masked
    assert "s3cret" not in masked and ":pw@" not in masked and "MfKQ9" not in masked


def test_json_logs_redact_secret_fields_and_urls(capsys: pytest.CaptureFixture[str]) -> None:
    configure("INFO", "json")
    structlog.get_logger("t").info(
        "delivery_failed", url="https://bob:hunter2@example.invalid/hook", secret="whsec_abc", webhook="n"
    )
    logging.getLogger("stdlib").warning("plain https://u:p@example.invalid/ message")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert lines[0]["event"] == "delivery_failed" and lines[0]["level"] == "info"
    assert lines[0]["url"] == "https://***@example.invalid/hook" and lines[0]["secret"] == "***"
    assert "u:p@" not in lines[1]["event"]
    assert "hunter2" not in json.dumps(lines)


def test_postgres_sessions_have_sane_defaults_and_refuse_nonsense(tmp_path: Path) -> None:
    from monitor.daemon import CONNECTIONS

    postgres = load_settings(None).state.postgres
    assert (postgres.statement_timeout, postgres.lock_timeout) == (timedelta(seconds=60), timedelta(seconds=10))
    assert postgres.pool_size is None and postgres.pool_timeout == timedelta(seconds=5)
    assert sum(CONNECTIONS.values()) == 10  # the figure docs/scale-out.md states ("Connections")
    assert "**10 per replica**" in (Path(__file__).parent.parent / "docs" / "scale-out.md").read_text()
    config = tmp_path / "monitor.yaml"
    config.write_text(json.dumps({"state": {"postgres": {"lock_timeout": "0s", "pool_size": 0}}}))
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert "state.postgres.lock_timeout" in str(caught.value) and "state.postgres.pool_size" in str(caught.value)


@pytest.mark.parametrize(
    ("lease", "timeout", "refused"),
    [("30s", "15s", False), ("29s", "15s", True), ("98s", "1m", False), ("97s", "1m", True), ("15s", "5s", False)],
    ids=["default", "default-too-short", "long-timeout", "long-timeout-too-short", "short"],
)
def test_the_lease_must_hold_an_attempt_two_thirds_of_the_way_to_its_renewal(
    lease: str, timeout: str, refused: bool
) -> None:
    """A lease is renewed every third of it: it must outlast the longest attempt (timeout + 5 s spare) in
    the two thirds left at a renewal, so 1.5 x (timeout + 5 s); the old rule (2 x timeout + 10 s) wanted 40 s
    for the default timeout, and the default lease was 2 min."""
    from monitor.config.rules import Webhook
    from monitor.config.settings import DeliverySettings

    webhooks = {"hook": Webhook(url="http://127.0.0.1:9/", timeout=timeout)}
    problems = DeliverySettings(lease=lease).lease_problems(webhooks, Path("rules.yaml"))
    assert bool(problems) is refused
    if refused:
        assert "needs delivery.lease of at least" in str(problems[0])
    unset = DeliverySettings()  # the default: 30 s, or what the longest timeout needs (a 30 s timeout: 52.5 s)
    assert unset.lease_problems(webhooks, Path("rules.yaml")) == []
    assert unset.lease_for({}) == timedelta(seconds=30)
    assert unset.lease_for(webhooks) == max(
        timedelta(seconds=30), 1.5 * (parse_duration(timeout) + timedelta(seconds=5))
    )


@pytest.mark.parametrize(
    ("http", "allowed"),
    [
        ({}, True),
        ({"host": "::1"}, True),
        ({"host": "localhost"}, True),
        ({"host": "0.0.0.0"}, False),
        ({"host": "monitor.internal"}, False),
        ({"host": "0.0.0.0", "reload": True}, True),
        ({"reload": False}, False),
    ],
    ids=["default", "ipv6-loopback", "localhost", "any-address", "host-name", "set-on", "set-off"],
)
def test_post_reload_is_on_by_default_only_on_a_loopback_address(http: dict[str, object], allowed: bool) -> None:
    assert load_settings(None, http=http).http.reload_allowed() is allowed


def test_a_missing_watched_folder_is_refused_unless_create_folders(tmp_path: Path) -> None:
    there = tmp_path / "there"
    there.mkdir()
    folders = [str(there), str(tmp_path / "gone")]
    with pytest.raises(ConfigError) as refused:
        load_settings(None, watch={"folders": folders}).watch.check_folders()
    assert str(refused.value) == (
        f"watch.folders: {str(tmp_path / 'gone')!r} does not exist (create it, or set watch.create_folders: true)"
    )
    load_settings(None, watch={"folders": folders, "create_folders": True}).watch.check_folders()


SETTINGS_WITH_PATHS = (
    "rules_file: rules.yaml\nwatch:\n  folders: [./in, /abs/in]\nstate:\n  url: sqlite:///state/monitor.db\n"
)


def test_relative_paths_of_a_settings_file_are_from_its_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 16: the systemd layout (settings in /etc/news-monitor/, another working directory) failed."""
    etc, work = tmp_path / "etc", tmp_path / "work"
    etc.mkdir()
    work.mkdir()
    (etc / "monitor.yaml").write_text(SETTINGS_WITH_PATHS, encoding="utf-8")
    monkeypatch.chdir(work)
    settings = load_settings(etc / "monitor.yaml")
    assert settings.rules_file == etc / "rules.yaml"
    assert settings.watch.folders == [etc / "in", Path("/abs/in")]
    assert settings.state.url == f"sqlite:///{etc / 'state' / 'monitor.db'}"
    monkeypatch.setenv("MONITOR_RULES_FILE", "mine.yaml")  # a variable's (or the command's) path: from here
    settings = load_settings(etc / "monitor.yaml", state={"url": "sqlite:///here.db"})
    assert (settings.rules_file, settings.state.url) == (Path("mine.yaml"), "sqlite:///here.db")
    assert settings.watch.folders == [etc / "in", Path("/abs/in")]


def test_a_settings_file_in_the_working_directory_keeps_its_paths_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ledger keys files by the path the scan makes from the folder as written: unchanged there."""
    (tmp_path / "monitor.yaml").write_text(SETTINGS_WITH_PATHS, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    for config in (Path("monitor.yaml"), tmp_path / "monitor.yaml"):
        settings = load_settings(config)
        assert settings.rules_file == Path("rules.yaml")
        assert [str(folder) for folder in settings.watch.folders] == ["in", "/abs/in"]  # Path("./in") is "in"
        assert settings.state.url == "sqlite:///state/monitor.db"


def test_the_shipped_settings_from_the_repository_give_the_paths_they_always_gave(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """README quick start (working directory: the clone): the same rules file, folder and state file, so the
    ledger's keys (`seeds/...`) of an existing state are unchanged."""
    root = Path(__file__).resolve().parent.parent
    monkeypatch.chdir(root)
    for config in (None, Path("config/monitor.yaml"), root / "config" / "monitor.yaml"):
        settings = load_settings(config)
        assert settings.rules_file == Path("config/rules.yaml")
        assert settings.watch.folders == [Path("seeds")]
        assert settings.state.url == "sqlite:///state/monitor.db"


def test_a_path_that_is_the_same_place_from_here_keeps_its_spelling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Settings given by an absolute path, the working directory elsewhere, a folder written so that it is
    the same place from either: kept as written, so the ledger's keys do not change (no file read again)."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "monitor.yaml").write_text("watch:\n  folders: [.]\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path / "in")
    assert load_settings(tmp_path / "in" / "monitor.yaml").watch.folders == [Path(".")]


def test_a_path_that_is_the_same_place_from_a_sibling_folder_keeps_its_spelling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found in review: settings in `a/c/`, the working directory `a/b/`, `../c/in` names the same folder from
    both: kept as written (spelled absolute, its ledger keys would change and every file be read again)."""
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "c" / "in").mkdir(parents=True)
    (tmp_path / "a" / "c" / "monitor.yaml").write_text("watch:\n  folders: [../c/in]\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path / "a" / "b")
    assert load_settings(tmp_path / "a" / "c" / "monitor.yaml").watch.folders == [Path("../c/in")]


def test_from_the_root_folder_paths_of_a_settings_file_are_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found in review: systemd without WorkingDirectory runs in `/`; `in` of `/etc/x/monitor.yaml` was spelled
    `etc/x/in` (relative to `/`), which a WorkingDirectory added later would have moved."""
    (tmp_path / "etc" / "in").mkdir(parents=True)
    (tmp_path / "etc" / "monitor.yaml").write_text("watch:\n  folders: [in]\n", encoding="utf-8")
    monkeypatch.chdir("/")
    assert load_settings(tmp_path / "etc" / "monitor.yaml").watch.folders == [tmp_path / "etc" / "in"]


def test_a_path_whose_old_place_exists_and_new_one_does_not_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upgraded deployment whose working directory is not the settings file's folder: its state would be
    a new, empty one, and every file read and alerted again. Refused, naming both places."""
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "monitor.yaml").write_text("state:\n  url: sqlite:///monitor.db\n", encoding="utf-8")
    (tmp_path / "monitor.db").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"^state\.url: 'monitor\.db' is taken from the settings file's folder"):
        load_settings(Path("etc/monitor.yaml"))
