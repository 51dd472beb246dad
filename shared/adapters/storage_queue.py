"""The queue contract over Azure Storage Queues (Azurite locally): the same JSON message as Service Bus,
wrapped with the broker properties a storage queue lacks (message id, session id, properties)."""

from __future__ import annotations

import base64
import contextlib
import json
from dataclasses import dataclass
from typing import Any, Protocol

from shared.adapters.blocking import run_blocking
from shared.core.errors import TransientError
from shared.core.ports import OutboundMessage

MAX_VISIBILITY_SECONDS = 7 * 24 * 3600
# "Each message can be up to 64 KB in size" — of the message text as sent, here the Base64 envelope
# (learn.microsoft.com/rest/api/storageservices/queue-service-rest-api); Base64 alone costs a third of it.
MAX_MESSAGE_TEXT_BYTES = 64 * 1024
# a retry or held copy of a message carries a longer id and a traceparent: room for them
COPY_ALLOWANCE_BYTES = 1024


@dataclass(frozen=True)
class Envelope:
    message_id: str
    session_id: str
    properties: dict[str, str]
    body: str


def encode_envelope(message: OutboundMessage) -> str:
    """Base64 JSON, so any body survives the storage queue's XML transport."""
    document = {
        "message_id": message.message_id,
        "session_id": message.session_id,
        "properties": dict(message.properties),
        "body": message.body,
    }
    return base64.b64encode(json.dumps(document).encode("utf-8")).decode("ascii")


def decode_envelope(content: str) -> Envelope:
    document: dict[str, Any] = json.loads(base64.b64decode(content))
    return Envelope(
        message_id=str(document["message_id"]),
        session_id=str(document.get("session_id", "")),
        properties={str(k): str(v) for k, v in document.get("properties", {}).items()},
        body=str(document["body"]),
    )


class QueueClientLike(Protocol):
    def send_message(self, content: Any, *, visibility_timeout: int | None = None) -> Any: ...

    def create_queue(self) -> Any: ...


class StorageQueue:
    """Queue port over one storage queue; a delay becomes the initial visibility timeout."""

    def __init__(self, client: QueueClientLike) -> None:
        self._client = client
        self._created = False

    async def _ensure(self) -> None:
        if self._created:
            return
        from azure.core.exceptions import ResourceExistsError

        with contextlib.suppress(ResourceExistsError):
            await run_blocking(self._client.create_queue)
        self._created = True

    def fits(self, message: OutboundMessage) -> bool:
        return len(encode_envelope(message)) <= MAX_MESSAGE_TEXT_BYTES - COPY_ALLOWANCE_BYTES

    async def send(self, message: OutboundMessage) -> None:
        delay = min(MAX_VISIBILITY_SECONDS, round(message.delay_seconds)) or None
        try:
            await self._ensure()
            await run_blocking(self._client.send_message, encode_envelope(message), visibility_timeout=delay)
        except Exception as error:
            raise TransientError(f"storage queue send failed: {type(error).__name__}") from error


# Square waits 10 s for the acknowledgement: fail fast (and answer 503) rather than retry for minutes.
FAST_FAIL: dict[str, Any] = {
    "retry_total": 1,
    "initial_backoff": 0.5,
    "increment_base": 2,
    "connection_timeout": 3,
    "read_timeout": 5,
}


def storage_queue(connection_string: str, queue_name: str) -> StorageQueue:
    from azure.storage.queue import QueueClient

    return StorageQueue(QueueClient.from_connection_string(connection_string, queue_name, **FAST_FAIL))


class StorageQueueStats:
    """Depth of the events queue and of its poison queue (the local dead-letter queue)."""

    def __init__(self, connection_string: str, queue_name: str) -> None:
        from azure.storage.queue import QueueClient

        self._queue = QueueClient.from_connection_string(connection_string, queue_name, **FAST_FAIL)
        self._poison = QueueClient.from_connection_string(connection_string, f"{queue_name}-poison", **FAST_FAIL)

    def _count(self, client: Any) -> int | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return int(client.get_queue_properties().approximate_message_count or 0)
        except ResourceNotFoundError:
            return 0

    async def depth(self) -> dict[str, int | None]:
        return {
            "active": await run_blocking(self._count, self._queue),
            "dead_letter": await run_blocking(self._count, self._poison),
        }
