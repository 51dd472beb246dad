"""The webhook's decisions, with a fake queue: status codes, JSON errors, nothing unsigned enqueued."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from shared.config.settings import WebhookSettings
from shared.core.models import SyncCommand
from shared.monitoring.metrics import LogMetrics
from shared.pipeline.ingress import receive_webhook
from shared.pipeline.signature import sign
from tests.conftest import example
from tests.fakes import FakeQueue, FixedClock

SETTINGS = WebhookSettings(
    signature_key="test-key", notification_url="https://h.example/api/square/webhooks", max_body_bytes=1_048_576
)


def post(body: bytes, queue: FakeQueue, *, signature: str | None = None, metrics: LogMetrics | None = None) -> Any:
    header = (
        signature
        if signature is not None
        else sign(body, signature_key=SETTINGS.signature_key, notification_url=SETTINGS.notification_url)
    )
    return asyncio.run(
        receive_webhook(
            body, header, settings=SETTINGS, queue=queue, clock=FixedClock(), metrics=metrics or LogMetrics()
        )
    )


def body_of(name: str) -> bytes:
    return json.dumps(example(name), separators=(",", ":")).encode()


def test_valid_customer_event_is_queued_before_the_200() -> None:
    queue = FakeQueue()
    reply = post(body_of("customer.created.json"), queue)
    assert reply.status == 200 and reply.body == {
        "status": "queued",
        "event_id": "e12b5591-e0b6-4967-810a-307c7efcb1a7",
    }
    (message,) = queue.sent
    assert message.message_id == "e12b5591-e0b6-4967-810a-307c7efcb1a7"
    assert message.session_id == ""  # no sessions (docs/decisions/0011f-no-service-bus-sessions.md)
    command = SyncCommand.model_validate_json(message.body)
    assert command.event_type == "customer.created" and not command.fetch
    assert command.event["data"]["object"]["customer"]["given_name"] == "Jenkins"


def test_bad_or_missing_signature_is_401_and_never_enqueued() -> None:
    queue = FakeQueue()
    for signature in ("", "AAAA", sign(b"other", signature_key="test-key", notification_url=SETTINGS.notification_url)):
        reply = post(body_of("customer.updated.json"), queue, signature=signature)
        assert reply.status == 401 and reply.body["error"]["code"] == "invalid_signature"
    assert queue.sent == []


def test_not_json_is_400() -> None:
    reply = post(b"<xml/>", FakeQueue())
    assert reply.status == 400 and reply.body["error"]["code"] == "invalid_json"


def test_envelope_without_required_fields_is_400_naming_them() -> None:
    reply = post(json.dumps({"type": "customer.created"}).encode(), FakeQueue())
    assert reply.status == 400 and reply.body["error"]["code"] == "invalid_envelope"
    assert "event_id" in reply.body["error"]["message"] and "data" in reply.body["error"]["message"]
    assert post(b"[1,2]", FakeQueue()).body["error"]["code"] == "invalid_envelope"


def test_oversized_body_is_413_before_any_work() -> None:
    queue = FakeQueue()
    reply = post(b"{" + b" " * 1_048_577 + b"}", queue, signature="irrelevant")
    assert reply.status == 413 and reply.body["error"]["code"] == "payload_too_large" and queue.sent == []


def test_unhandled_event_types_are_acknowledged_and_counted() -> None:
    queue, metrics = FakeQueue(), LogMetrics()
    reply = post(body_of("webhooks.test_notification.json"), queue, metrics=metrics)
    assert reply.status == 200 and reply.body["status"] == "ignored" and queue.sent == []
    assert metrics.total("events_ignored") == 1


def test_queue_failure_is_503_so_square_retries() -> None:
    queue = FakeQueue(fail_with=ConnectionError("down"))
    reply = post(body_of("customer.created.json"), queue)
    assert reply.status == 503 and reply.body["error"]["code"] == "queue_unavailable"
    assert reply.headers["Retry-After"] == "10"


def test_huge_customer_event_is_thinned_to_fit_the_queue() -> None:
    event = example("customer.updated.json")
    queue = FakeQueue(max_body_bytes=8_000)
    event["data"]["object"]["customer"]["note"] = "x" * 8_000
    assert post(json.dumps(event).encode(), queue).status == 200
    command = SyncCommand.model_validate_json(queue.sent[0].body)
    assert command.fetch and "object" not in command.event["data"]
    assert len(queue.sent[0].body) < 8_000
