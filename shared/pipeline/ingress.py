"""The webhook's work: verify, validate, enqueue, answer. Acknowledged only after the message is queued."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from shared.config.settings import WebhookSettings
from shared.core.models import SyncCommand, WebhookEnvelope
from shared.core.ports import Clock, Metrics, Queue
from shared.monitoring import otel
from shared.pipeline.messages import outbound
from shared.pipeline.registry import entity_id, route_for
from shared.pipeline.signature import is_valid_signature

log = logging.getLogger("tillbridge.webhook")
# Service Bus Standard caps a message at 256 KB; above this the object is dropped and fetched by the worker.
MAX_INLINE_MESSAGE_BYTES = 192 * 1024


@dataclass(frozen=True)
class WebhookReply:
    status: int
    body: dict[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


def _error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> WebhookReply:
    return WebhookReply(status, {"error": {"code": code, "message": message}}, headers or {})


def _parse(body: bytes) -> WebhookEnvelope | WebhookReply:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _error(400, "invalid_json", "the body is not JSON")
    if not isinstance(document, dict):
        return _error(400, "invalid_envelope", "the body is not a JSON object")
    try:
        return WebhookEnvelope.model_validate(document)
    except ValidationError as error:
        fields = sorted({".".join(str(p) for p in issue["loc"]) for issue in error.errors()})
        return _error(400, "invalid_envelope", f"missing or invalid: {', '.join(fields)}")


def _embedded_version(envelope: WebhookEnvelope, key: str | None) -> int | None:
    embedded = (envelope.data.object or {}).get(key or "")
    version = embedded.get("version") if isinstance(embedded, dict) else None
    return version if isinstance(version, int) else None


def build_command(envelope: WebhookEnvelope, raw_event: dict[str, Any], received_at: str) -> SyncCommand | None:
    route = route_for(envelope.type)
    if route is None:
        return None
    command = SyncCommand(
        message_id=envelope.event_id,
        event_id=envelope.event_id,
        event_type=envelope.type,
        entity_kind=route.kind,
        entity_id=entity_id(envelope, route),
        merchant_id=envelope.merchant_id,
        received_at=received_at,
        fetch=route.full_object_key is None,
        source_version=_embedded_version(envelope, route.full_object_key),
        event=raw_event,
    )
    if len(command.model_dump_json()) > MAX_INLINE_MESSAGE_BYTES:
        thin_event = {**raw_event, "data": {k: v for k, v in raw_event["data"].items() if k != "object"}}
        command = command.model_copy(update={"event": thin_event, "fetch": True})
    return command


async def receive_webhook(
    body: bytes,
    signature: str | None,
    *,
    settings: WebhookSettings,
    queue: Queue,
    clock: Clock,
    metrics: Metrics,
) -> WebhookReply:
    if len(body) > settings.max_body_bytes:
        metrics.increment("events_rejected", reason="too_large")
        return _error(413, "payload_too_large", f"the body is over {settings.max_body_bytes} bytes")
    if not is_valid_signature(
        body, signature, signature_key=settings.signature_key, notification_url=settings.notification_url
    ):
        metrics.increment("events_rejected", reason="bad_signature")
        return _error(401, "invalid_signature", "missing or invalid x-square-hmacsha256-signature")
    parsed = _parse(body)
    if isinstance(parsed, WebhookReply):
        metrics.increment("events_rejected", reason=parsed.body["error"]["code"])
        return parsed
    with otel.span("square_webhook", parsed.event_id, event_type=parsed.type):
        return await _accept(parsed, body, queue=queue, clock=clock, metrics=metrics)


async def _accept(
    parsed: WebhookEnvelope, body: bytes, *, queue: Queue, clock: Clock, metrics: Metrics
) -> WebhookReply:
    command = build_command(parsed, json.loads(body), clock.now().isoformat())
    if command is None:
        metrics.increment("events_ignored", event_type=parsed.type)
        return WebhookReply(200, {"status": "ignored", "event_id": parsed.event_id, "type": parsed.type})
    if not command.entity_id:
        return _error(400, "invalid_envelope", "missing or invalid: data.id")
    try:
        await queue.send(outbound(command))
    except Exception as error:  # any queue failure: Square must retry, so never 2xx
        log.warning("enqueue failed for event %s: %s", parsed.event_id, type(error).__name__)
        metrics.increment("enqueue_failures")
        return _error(503, "queue_unavailable", "the event could not be queued; retry later", {"Retry-After": "10"})
    metrics.increment("events_received", event_type=parsed.type)
    log.info("queued event %s (%s)", parsed.event_id, parsed.type, extra={"correlation_id": parsed.event_id})
    return WebhookReply(200, {"status": "queued", "event_id": parsed.event_id})
