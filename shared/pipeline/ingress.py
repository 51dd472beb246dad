"""The webhook's work: verify, validate, enqueue, answer. Acknowledged only after the message is queued.

Every signed body gets a clear answer: 200 once queued (or ignored), 4xx with a JSON error code when it can
never be processed (Square retries a 5xx for 72 hours), 503 only when the queue itself is down.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from shared.config.settings import WebhookSettings
from shared.core.json_input import JsonInputError, read_json
from shared.core.models import MAX_SQUARE_ID_LENGTH, SyncCommand, WebhookEnvelope
from shared.core.ports import Clock, Metrics, Queue
from shared.monitoring import otel
from shared.pipeline.messages import outbound
from shared.pipeline.registry import entity_id, route_for
from shared.pipeline.signature import is_valid_signature

log = logging.getLogger("tillbridge.webhook")


@dataclass(frozen=True)
class WebhookReply:
    status: int
    body: dict[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


def _error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> WebhookReply:
    return WebhookReply(status, {"error": {"code": code, "message": message}}, headers or {})


def _parse(body: bytes) -> tuple[WebhookEnvelope, dict[str, Any]] | WebhookReply:
    try:
        document = read_json(body)
    except JsonInputError as error:
        return _error(400, "invalid_json", f"the body is not acceptable JSON: {error}")
    if not isinstance(document, dict):
        return _error(400, "invalid_envelope", "the body is not a JSON object")
    try:
        return WebhookEnvelope.model_validate(document), document
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
    return SyncCommand(
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


def fitted(command: SyncCommand, queue: Queue) -> SyncCommand | None:
    """The command as the queue takes it: whole, else without the object (the worker fetches it from
    Square), else None (too large even then: only fields Square never makes that large remain)."""
    if queue.fits(outbound(command)):
        return command
    data = command.event.get("data")
    thin_data = {k: v for k, v in data.items() if k != "object"} if isinstance(data, dict) else {}
    thin = command.model_copy(update={"event": {**command.event, "data": thin_data}, "fetch": True})
    return thin if queue.fits(outbound(thin)) else None


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
    envelope, document = parsed
    with otel.span("square_webhook", envelope.event_id, event_type=envelope.type):
        reply = await _accept(envelope, document, queue=queue, clock=clock, metrics=metrics)
    if reply.status in (400, 413):
        metrics.increment("events_rejected", reason=reply.body["error"]["code"])
    return reply


async def _accept(
    parsed: WebhookEnvelope, document: dict[str, Any], *, queue: Queue, clock: Clock, metrics: Metrics
) -> WebhookReply:
    built = build_command(parsed, document, clock.now().isoformat())
    if built is None:
        metrics.increment("events_ignored", event_type=parsed.type)
        return WebhookReply(200, {"status": "ignored", "event_id": parsed.event_id, "type": parsed.type})
    if not built.entity_id:
        return _error(400, "invalid_envelope", "missing or invalid: data.id")
    if len(built.entity_id) > MAX_SQUARE_ID_LENGTH:
        return _error(400, "invalid_envelope", f"the object's id is over {MAX_SQUARE_ID_LENGTH} characters")
    command = fitted(built, queue)
    if command is None:
        return _error(413, "event_too_large", "the event does not fit the queue even without its object")
    try:
        await queue.send(outbound(command))
    except Exception as error:  # any queue failure: Square must retry, so never 2xx
        log.warning("enqueue failed for event %s: %s", parsed.event_id, type(error).__name__)
        metrics.increment("enqueue_failures")
        return _error(503, "queue_unavailable", "the event could not be queued; retry later", {"Retry-After": "10"})
    metrics.increment("events_received", event_type=parsed.type)
    log.info("queued event %s (%s)", parsed.event_id, parsed.type, extra={"correlation_id": parsed.event_id})
    return WebhookReply(200, {"status": "queued", "event_id": parsed.event_id})
