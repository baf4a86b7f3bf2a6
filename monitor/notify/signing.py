"""Standard Webhooks signatures: HMAC-SHA256 over `id.timestamp.body`, secrets `whsec_<base64>`."""

from __future__ import annotations

import base64
import hashlib
import hmac


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256>`; the secret may lack its base64 padding, as the reference library allows."""
    raw = secret.removeprefix("whsec_")
    key = base64.b64decode(raw + "=" * (-len(raw) % 4))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def webhook_headers(message_id: str, timestamp: int, body: bytes, secret: str | None) -> dict[str, str]:
    """The Standard Webhooks headers; `webhook-signature` only when the webhook has a secret."""
    headers = {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "content-type": "application/json",
    }
    if secret:
        headers["webhook-signature"] = signature(secret, message_id, timestamp, body)
    return headers
