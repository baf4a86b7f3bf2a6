"""Secrets and bad webhook settings end to end: the real daemon, a real receiver on 127.0.0.1, real files.

A webhook URL's query token reaches no log line, stored error, database file or command output, even when a
receiver echoes it back; URLs that cannot be sent to are refused at load; an attempt that raises something
unexpected fails with its reason and follows the webhook's schedule to dead.
"""

from __future__ import annotations

import json

import pytest

from monitor.cli.receiver import Received, Receiver
from tests.conftest import DaemonProcess, wait_until
from tests.helpers import cli, one_rule, write_articles

pytestmark = pytest.mark.e2e
TOKEN = "tok3n-SECRET-4711"
BROKEN = """version: 1
webhooks:
  hook:
    url: '{url}'
rules:
  - {{name: hoogverraad, query: '*hoogverraad*'}}
"""


def written_anywhere(daemon: DaemonProcess) -> dict[str, str]:
    """Everything the daemon wrote: its log and every file of its state folder (SQLite and its WAL)."""
    found = {"log": daemon.log.read_text()}
    for path in sorted((daemon.home / "state").iterdir()):
        found[path.name] = path.read_bytes().decode("latin-1")
    return found


def test_a_redirect_that_echoes_the_webhook_url_leaks_its_token_nowhere(receiver: Receiver, daemon_factory) -> None:
    def echo(request: Received) -> tuple[int, dict[str, str]]:
        return 302, {"Location": receiver.url + request.path}  # the path with its query: the token

    receiver.respond = echo
    daemon = daemon_factory(one_rule(f"{receiver.url}/hook?token={TOKEN}", retry_schedule=["0.1s"])).start()
    names = write_articles(daemon.watched, range(1))
    daemon.wait_settled(names)
    listed = cli(daemon.config, "deliveries", "--json")
    status = cli(daemon.config, "status", "--json")
    table = cli(daemon.config, "deliveries")
    assert daemon.stop() == 0
    assert [r.path for r in receiver.received] == [f"/hook?token={TOKEN}"] * 2, "the token was sent, and echoed"
    outputs = {"deliveries --json": listed.stdout, "status --json": status.stdout, "deliveries": table.stdout}
    for where, text in {**written_anywhere(daemon), **outputs}.items():
        assert TOKEN not in text, f"the token is in {where}"
    (row,) = json.loads(listed.stdout)
    assert (row["state"], row["attempts"], row["last_status"]) == ("dead", 2, 302)
    assert row["last_error"] == f"HTTP 302 redirect to {receiver.url}/hook?token=*** not followed"
    assert '"event": "delivery_dead"' in daemon.log.read_text()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            f"ftp://127.0.0.1/hook?token={TOKEN}",
            "expected an http:// or https:// URL, got 'ftp://127.0.0.1/hook?token=***'",
        ),
        ("http://127.0.0.1:70000/hook", "port 70000 is out of range 1 to 65535"),
    ],
    ids=["ftp-with-token", "port-70000"],
)
def test_a_reload_with_a_bad_url_is_refused_with_its_line_and_no_token(
    receiver: Receiver, daemon_factory, url: str, message: str
) -> None:
    daemon = daemon_factory(one_rule(receiver.url + "/hook")).start()
    broken = daemon.home / "rules.yaml.new"
    broken.write_text(BROKEN.format(url=url), encoding="utf-8")
    broken.replace(daemon.home / "rules.yaml")
    wait_until(lambda: "rules_reload_failed" in daemon.log.read_text(), 20, "the invalid rules to be refused")
    failed = next(json.loads(line) for line in daemon.log.read_text().splitlines() if "rules_reload_failed" in line)
    assert "rules.yaml:4:" in json.dumps(failed) and f"webhooks.hook.url: {message}" in json.dumps(failed)
    names = write_articles(daemon.watched, range(1))
    assert receiver.wait_for(lambda got: len(got) == 1, timeout=20), "the old rules stay in force"
    daemon.wait_settled(names)
    assert daemon.stop() == 0
    assert receiver.received[0].path == "/hook"
    assert TOKEN not in daemon.log.read_text()


def test_validate_refuses_port_70000_with_file_and_line(daemon_factory) -> None:
    daemon = daemon_factory(one_rule("http://127.0.0.1/hook"))
    (daemon.home / "rules.yaml").write_text(BROKEN.format(url="http://127.0.0.1:70000/hook"), encoding="utf-8")
    result = cli(daemon.config, "validate")
    assert result.returncode == 1
    assert f"{daemon.home / 'rules.yaml'}:4:" in " ".join(result.stderr.split())
    assert "port 70000 is out of range 1 to 65535" in " ".join(result.stderr.split())


def test_an_attempt_that_raises_fails_with_its_reason_and_ends_dead(receiver: Receiver, daemon_factory) -> None:
    """A header value httpx cannot encode (not ASCII) passes load and raises UnicodeEncodeError at every attempt:
    each attempt fails with that reason, and after its schedule the delivery is dead, not retried forever."""
    rules = one_rule(
        f"{receiver.url}/hook?token={TOKEN}", retry_schedule=["100ms", "100ms"], headers={"X-Team": "rédaction"}
    )
    daemon = daemon_factory(rules).start()
    names = write_articles(daemon.watched, range(1))
    daemon.wait_settled(names, timeout=20)
    listed = cli(daemon.config, "deliveries", "--json")
    assert daemon.stop() == 0
    (row,) = json.loads(listed.stdout)
    assert (row["state"], row["attempts"], row["last_status"]) == ("dead", 3, None)
    assert row["last_error"].startswith("UnicodeEncodeError: 'ascii' codec can't encode character")
    log = daemon.log.read_text()
    crashed = [json.loads(line) for line in log.splitlines() if '"delivery_attempt_crashed"' in line]
    assert len(crashed) == 3 and all("Traceback" in event["exception"] for event in crashed), "once per attempt"
    assert '"event": "delivery_dead"' in log and "delivery_crashed" not in log
    assert receiver.received == []
    assert TOKEN not in log


def test_the_state_folder_is_where_written_anywhere_looks(daemon_factory) -> None:
    """written_anywhere reads the files the daemon writes: a token stored there would be found."""
    daemon = daemon_factory(one_rule("http://127.0.0.1/hook"))
    (daemon.home / "state").mkdir()
    (daemon.home / "state" / "monitor.db").write_bytes(TOKEN.encode())
    daemon.log.write_text("")
    assert TOKEN in written_anywhere(daemon)["monitor.db"]
