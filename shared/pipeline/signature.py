"""Square webhook signatures: base64(HMAC-SHA256(key, notification_url + raw_body)).

Algorithm as in square/square-python-sdk `src/square/utils/webhooks_helper.py` (verify_signature); the
official vectors live in tests/fixtures/square_examples/webhook_signature_vectors.json.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

SIGNATURE_HEADER = "x-square-hmacsha256-signature"


def sign(body: bytes, *, signature_key: str, notification_url: str) -> str:
    """The header value Square sends for this body (used by the emulator and tests)."""
    digest = hmac.new(signature_key.encode("utf-8"), notification_url.encode("utf-8") + body, hashlib.sha256)
    return base64.b64encode(digest.digest()).decode("ascii")


def is_valid_signature(body: bytes, header: str | None, *, signature_key: str, notification_url: str) -> bool:
    """Constant-time check over the raw bytes, before any parsing."""
    if not header or not body:
        return False
    expected = sign(body, signature_key=signature_key, notification_url=notification_url)
    return hmac.compare_digest(expected.encode("ascii"), header.strip().encode("utf-8", "replace"))
