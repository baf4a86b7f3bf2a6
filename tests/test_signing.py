"""Standard Webhooks signing, checked against the reference implementation (the `standardwebhooks` package)."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from monitor.notify.signing import signature, webhook_headers

BODY = json.dumps(
    {"type": "alert.matched", "data": {"rule": "hoogverraad", "snippet": "Masimov … hoogverraad"}}
).encode()


def secret_of(size: int, prefix: str = "whsec_") -> str:
    return prefix + base64.b64encode(os.urandom(size)).decode()


def signed(secret: str, body: bytes = BODY, message_id: str = "msg_2f1c") -> dict[str, str]:
    return webhook_headers(message_id, int(time.time()), body, secret)


def test_known_answer_from_the_specification() -> None:
    # The example of the Standard Webhooks specification (and Svix's documentation).
    assert (
        signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            b'{"test": 2432232314}',
        )
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


@pytest.mark.parametrize("size", [16, 24, 32, 64])
@pytest.mark.parametrize("prefix", ["whsec_", ""], ids=["whsec", "bare"])
def test_signature_verifies_with_the_reference_package(size: int, prefix: str) -> None:
    secret = secret_of(size, prefix)
    headers = signed(secret)
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)


def test_secret_without_base64_padding_verifies() -> None:
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode().rstrip("=")
    assert not secret.endswith("=")
    Webhook(secret).verify(BODY, signed(secret))


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"{}", id="empty-object"),
        pytest.param('{"snippet":"Алматы — Tokajev, café"}'.encode(), id="non-ascii"),
        pytest.param(json.dumps({"text": "x" * 100_000}).encode(), id="large"),
    ],
)
def test_bodies_verify(body: bytes) -> None:
    secret = secret_of(32)
    Webhook(secret).verify(body, signed(secret, body))


def test_wrong_secret_fails() -> None:
    headers = signed(secret_of(32))
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(secret_of(32)).verify(BODY, headers)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda body, headers: (body.replace(b"hoogverraad", b"landverraad"), headers), id="body"),
        pytest.param(lambda body, headers: (body + b" ", headers), id="body-whitespace"),
        pytest.param(lambda body, headers: (body, headers | {"webhook-id": "msg_other"}), id="id"),
        pytest.param(
            lambda body, headers: (body, headers | {"webhook-timestamp": str(int(headers["webhook-timestamp"]) - 1)}),
            id="timestamp",
        ),
    ],
)
def test_tampering_fails(tamper: Callable[[bytes, dict[str, str]], tuple[bytes, dict[str, str]]]) -> None:
    secret = secret_of(32)
    body, headers = tamper(BODY, signed(secret))
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, headers)


def test_old_timestamp_is_refused_by_receivers() -> None:
    secret = secret_of(32)
    headers = webhook_headers("msg_1", int(time.time()) - 3600, BODY, secret)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(BODY, headers)


def test_headers() -> None:
    secret = secret_of(32)
    headers = webhook_headers("msg_1", 1700000000, BODY, secret)
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-timestamp"] == "1700000000"
    assert headers["content-type"] == "application/json"
    version, value = headers["webhook-signature"].split(",")
    assert version == "v1" and len(base64.b64decode(value, validate=True)) == 32
    assert headers["webhook-signature"] == signature(secret, "msg_1", 1700000000, BODY)


@pytest.mark.parametrize("secret", [None, ""], ids=["none", "empty"])
def test_no_secret_no_signature(secret: str | None) -> None:
    headers = webhook_headers("msg_1", 1700000000, BODY, secret)
    assert headers == {"webhook-id": "msg_1", "webhook-timestamp": "1700000000", "content-type": "application/json"}


def test_signature_covers_id_timestamp_and_body() -> None:
    secret = secret_of(32)
    base = signature(secret, "msg_1", 1700000000, BODY)
    assert base == signature(secret, "msg_1", 1700000000, BODY)
    assert base != signature(secret, "msg_2", 1700000000, BODY)
    assert base != signature(secret, "msg_1", 1700000001, BODY)
    assert base != signature(secret, "msg_1", 1700000000, BODY + b"\n")
