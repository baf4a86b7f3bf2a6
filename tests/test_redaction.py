"""The one redactor: URLs and free texts masked (userinfo, query values, whsec_), and log lines through it."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from monitor.config.logs import configure
from monitor.config.redaction import mask_text, redact_url, secret_name

SECRET = "SECRET42"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.example/x?token=SECRET42&x=1", "https://hooks.example/x?token=***&x=***"),
        ("https://alice:SECRET42@hooks.example:8443/x", "https://***@hooks.example:8443/x"),
        ("postgresql+psycopg://monitor:SECRET42@db/monitor", "postgresql+psycopg://***@db/monitor"),
        ("https://u:p@SECRET42@h/x", "https://***@h/x"),
        ("https://h/x?SECRET42", "https://h/x?***"),
        ("https://h/x?a=1&&b=SECRET42", "https://h/x?a=***&&b=***"),
        ("https://h/x#access_token=SECRET42", "https://h/x#access_token=***"),
        ("https://h/a/https://u:SECRET42@k/", "https://h/a/https://***@k/"),
        ("/hook?token=SECRET42", "/hook?token=***"),
        ("https://h/x", "https://h/x"),
        ("sqlite:///state/monitor.db", "sqlite:///state/monitor.db"),
        ("http://[::1/x?token=SECRET42", "http://[::1/x?token=***"),
    ],
    ids=[
        *("query", "userinfo", "database", "at-in-password", "bare", "empty-part", "fragment", "nested"),
        *("relative", "plain", "no-host", "unparseable"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert SECRET not in redact_url(url)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "HTTP 302 redirect to http://127.0.0.1:9/hook?token=SECRET42 not followed",
            "HTTP 302 redirect to http://127.0.0.1:9/hook?token=*** not followed",
        ),
        ("HTTP 302 redirect to /hook?token=SECRET42 not followed", "redirect to /hook?token=*** not followed"),
        ("url='ftp://host/x?token=SECRET42')", "url='ftp://host/x?token=***')"),
        ('{"u":"http://h/?t=SECRET42","e":"bob@x"}', '{"u":"http://h/?t=***","e":"bob@x"}'),
        ("key whsec_SECRET42+/= leaked", "key whsec_*** leaked"),
        ("two https://a:SECRET42@h/ and https://h/?k=SECRET42 urls", "two https://***@h/ and https://h/?k=*** urls"),
    ],
    ids=["redirect", "relative-redirect", "repr", "json", "whsec", "two-urls"],
)
def test_mask_text(text: str, shown: str) -> None:
    assert shown in mask_text(text)
    assert SECRET not in mask_text(text)


@pytest.mark.parametrize(
    "text", ["article_read", "Is it? Yes.", 're.compile(r"(?P<n>x)")', "/news/x.txt", "a@b.example"]
)
def test_mask_text_leaves_other_text_alone(text: str) -> None:
    assert mask_text(text) == text


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_tracebacks_in_logs_are_masked(capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    """The rendered exception, ours and the standard library's, passes through the redactor too."""
    configure("INFO", fmt)  # type: ignore[arg-type]
    try:
        raise ConnectionError(f"cannot reach https://bob:{SECRET}@h.example/hook?token={SECRET}")
    except ConnectionError:
        structlog.get_logger("t").exception("delivery_crashed", detail=["https://h/?token=" + SECRET])
        logging.getLogger("stdlib").exception("failed at https://h.example/x?token=%s", SECRET)
    written = capsys.readouterr().err
    assert "Traceback" in written and "ConnectionError: cannot reach https://***@h.example/hook?token=***" in written
    assert SECRET not in written
    if fmt == "json":
        assert [json.loads(line)["event"] for line in written.splitlines()] == [
            "delivery_crashed",
            "failed at https://h.example/x?token=***",
        ]


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("secret", True),
        ("webhook_secret", True),
        ("Authorization", True),
        ("DB_PASSWORD", True),
        ("access_token", True),
        ("webhook", False),
        ("url", False),
        ("error", False),
    ],
)
def test_fields_named_like_secrets_are_known_by_name(name: str, secret: bool) -> None:
    assert secret_name(name) is secret
