"""The webhook endpoint's answers through the local host (real HTTP, real Azurite queue)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest

from devstack.stack import PROJECT_DIR, Stack, azurite_connection_string, free_port
from shared.pipeline.signature import sign
from tests.stackkit import StackKit, signed_post, wait_until

pytestmark = pytest.mark.integration


def _event(customer_id: str, event_type: str = "customer.created", **customer: object) -> bytes:
    event = {
        "merchant_id": "M",
        "type": event_type,
        "event_id": f"manual-{customer_id}-{event_type}",
        "created_at": "2026-11-22T10:00:00Z",
        "data": {
            "type": "customer",
            "id": customer_id,
            "object": {"customer": {"id": customer_id, "version": 0, **customer}},
        },
    }
    return json.dumps(event).encode()


def _sign(stack: Stack, body: bytes) -> str:
    return sign(
        body, signature_key=stack.env["SQUARE_WEBHOOK_SIGNATURE_KEY"], notification_url=stack.env["SQUARE_WEBHOOK_URL"]
    )


def test_signed_event_is_queued_and_reaches_the_crm(kit: StackKit, stack: Stack) -> None:
    body = _event("MANUALCUSTOMER0000000000001", given_name="Manual")
    response = signed_post(kit, body, _sign(stack, body))
    assert response.status_code == 200 and response.json()["status"] == "queued"
    wait_until(lambda: _keyed(kit, "MANUALCUSTOMER0000000000001", expect=1))


def test_bad_signature_is_401_json_and_nothing_is_synced(kit: StackKit, stack: Stack) -> None:
    body = _event("UNSIGNEDCUSTOMER0000000001", given_name="Forged")
    for signature in (None, "forged", _sign(stack, body + b" ")):
        response = signed_post(kit, body, signature)
        assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_signature"
    good = _event("SIGNEDAFTERFORGERY00000001", given_name="Real")
    assert signed_post(kit, good, _sign(stack, good)).status_code == 200
    wait_until(lambda: _keyed(kit, "SIGNEDAFTERFORGERY00000001", expect=1))  # processed after the forged ones
    _keyed(kit, "UNSIGNEDCUSTOMER0000000001", expect=0)


def test_malformed_oversized_and_ignored(kit: StackKit, stack: Stack) -> None:
    not_json = b"this is not json"
    assert signed_post(kit, not_json, _sign(stack, not_json)).json()["error"]["code"] == "invalid_json"
    no_id = json.dumps({"type": "customer.created", "data": {}}).encode()
    response = signed_post(kit, no_id, _sign(stack, no_id))
    assert response.status_code == 400 and "event_id" in response.json()["error"]["message"]
    huge = b'{"pad":"' + b"x" * (1024 * 1024) + b'"}'
    response = signed_post(kit, huge, _sign(stack, huge))
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"
    other = json.dumps(
        {"type": "invoice.created", "event_id": "inv-1", "data": {"type": "invoice", "id": "I1"}}
    ).encode()
    response = signed_post(kit, other, _sign(stack, other))
    assert response.status_code == 200 and response.json()["status"] == "ignored"


def test_queue_unavailable_is_503_so_square_retries(stack: Stack) -> None:
    port = free_port()
    dead = free_port()
    env = {
        **os.environ,
        **stack.env,
        "AzureWebJobsStorage": azurite_connection_string(dead, dead, dead),
        "SQUARE_WEBHOOK_URL": f"http://127.0.0.1:{port}/api/square/webhooks",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.host", "--port", str(port), "--log-level", "ERROR"],
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None and "ready" in process.stdout.readline()
        body = _event("QUEUEDOWNCUSTOMER000000001")
        signature = sign(
            body, signature_key=env["SQUARE_WEBHOOK_SIGNATURE_KEY"], notification_url=env["SQUARE_WEBHOOK_URL"]
        )
        response = httpx.post(
            f"http://127.0.0.1:{port}/api/square/webhooks",
            content=body,
            headers={"x-square-hmacsha256-signature": signature},
            timeout=60,
        )
        assert response.status_code == 503 and response.json()["error"]["code"] == "queue_unavailable"
        assert response.headers["Retry-After"] == "10"
    finally:
        process.terminate()
        process.wait(20)


def _keyed(kit: StackKit, customer_id: str, expect: int) -> None:
    assert len([c for c in kit.contacts() if c.get("tb_squarecustomerid") == customer_id]) == expect
