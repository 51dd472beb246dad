"""The queue contract over Azure Service Bus (azure-servicebus SDK, not the output binding, because
only the SDK sets MessageId, SessionId and ScheduledEnqueueTimeUtc)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from azure.servicebus import ServiceBusMessage

from shared.core.errors import TransientError
from shared.core.ports import OutboundMessage

# the broker's own headers and the AMQP framing, beyond the body and the properties we set
BROKER_HEADER_ALLOWANCE = 8 * 1024
MAX_ID_LENGTH = 128  # MessageId and SessionId (the SDK raises ValueError above this)


def bounded_id(value: str) -> str:
    """An id Service Bus accepts: itself when short enough, else a prefix and a digest of the whole (stable,
    so duplicate detection and sessions still see one id per value)."""
    if len(value) <= MAX_ID_LENGTH:
        return value
    return f"{value[:80]}~{hashlib.sha256(value.encode('utf-8', 'surrogatepass')).hexdigest()[:40]}"


def wire_size(message: OutboundMessage) -> int:
    """What the message weighs against the tier's limit: body, our properties and ids, the broker's headers."""
    properties = sum(
        len(f"{name}{value}".encode("utf-8", "surrogatepass")) for name, value in message.properties.items()
    )
    ids = len(bounded_id(message.message_id)) + len(bounded_id(message.session_id))
    return len(message.body.encode("utf-8", "surrogatepass")) + properties + ids + BROKER_HEADER_ALLOWANCE


class SenderLike(Protocol):
    async def send_messages(self, message: ServiceBusMessage) -> None: ...

    async def close(self) -> None: ...


def to_servicebus_message(message: OutboundMessage, now: datetime) -> ServiceBusMessage:
    """MessageId = idempotency key (duplicate detection), delay = scheduled enqueue; no SessionId (the queue
    has no sessions: docs/decisions/0011f-no-service-bus-sessions.md)."""
    scheduled = now + timedelta(seconds=message.delay_seconds) if message.delay_seconds > 0 else None
    return ServiceBusMessage(
        message.body,
        message_id=bounded_id(message.message_id),
        session_id=bounded_id(message.session_id) if message.session_id else None,
        application_properties=dict(message.properties),  # type: ignore[arg-type]
        scheduled_enqueue_time_utc=scheduled,
        content_type="application/json",
        correlation_id=message.properties.get("event_id"),
    )


class ServiceBusQueue:
    """Queue port over one Service Bus queue; the sender link is opened once and reused."""

    def __init__(self, sender_factory: Callable[[], Awaitable[SenderLike]], max_message_bytes: int) -> None:
        """`max_message_bytes`: the tier's limit, headers included (setting SERVICEBUS_MAX_MESSAGE_BYTES)."""
        self._sender_factory = sender_factory
        self._max_message_bytes = max_message_bytes
        self._sender: SenderLike | None = None
        self._lock: asyncio.Lock | None = None

    async def _get_sender(self) -> SenderLike:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._sender is None:
                self._sender = await self._sender_factory()
            return self._sender

    def fits(self, message: OutboundMessage) -> bool:
        return wire_size(message) <= self._max_message_bytes

    async def send(self, message: OutboundMessage) -> None:
        sb_message = to_servicebus_message(message, datetime.now(UTC))
        try:
            sender = await self._get_sender()
            await sender.send_messages(sb_message)
        except Exception as error:
            await self._discard_sender()
            raise TransientError(f"Service Bus send failed: {type(error).__name__}") from error

    async def _discard_sender(self) -> None:
        sender, self._sender = self._sender, None
        if sender is not None:
            with contextlib.suppress(Exception):  # the link is already broken; the next send opens a new one
                await sender.close()


class _AsyncCredential:
    """Lets a sync azure-identity credential serve the async client (no aiohttp in production)."""

    def __init__(self, credential: Any) -> None:
        self._credential = credential

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        return await asyncio.to_thread(self._credential.get_token, *scopes, **kwargs)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> _AsyncCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        return None


def servicebus_sender_factory(
    queue_name: str, *, connection: str, namespace: str, client_id: str
) -> Callable[[], Awaitable[SenderLike]]:
    """Connection string, or identity-based (`SERVICEBUS_CONNECTION__fullyQualifiedNamespace`)."""

    async def open_sender() -> SenderLike:
        from azure.servicebus.aio import ServiceBusClient

        # Square waits 10 s for the acknowledgement: a short retry budget, then 503 and Square retries.
        fast_fail: dict[str, Any] = {"retry_total": 2, "retry_backoff_factor": 0.5, "retry_backoff_max": 2}
        if connection:
            client = ServiceBusClient.from_connection_string(connection, **fast_fail)
        else:
            from azure.identity import DefaultAzureCredential

            credential = _AsyncCredential(DefaultAzureCredential(managed_identity_client_id=client_id or None))
            client = ServiceBusClient(namespace, credential, **fast_fail)
        sender: SenderLike = client.get_queue_sender(queue_name)
        return sender

    return open_sender


class ServiceBusQueueStats:
    """Active and dead-lettered message counts from the queue's runtime properties.

    Reading runtime properties is a management operation: it needs Manage rights (e.g. Azure Service
    Bus Data Owner), which the deployed identity does not hold by default; the health page then shows
    the error and the workbook's metrics remain the source for queue depth.
    """

    def __init__(self, queue_name: str, *, connection: str, namespace: str, client_id: str) -> None:
        self._queue_name, self._connection, self._namespace, self._client_id = (
            queue_name,
            connection,
            namespace,
            client_id,
        )

    def _depth(self) -> dict[str, int | None]:
        from azure.servicebus.management import ServiceBusAdministrationClient

        if self._connection:
            client = ServiceBusAdministrationClient.from_connection_string(self._connection)
        else:
            from azure.identity import DefaultAzureCredential

            client = ServiceBusAdministrationClient(
                self._namespace, DefaultAzureCredential(managed_identity_client_id=self._client_id or None)
            )
        with client:
            runtime = client.get_queue_runtime_properties(self._queue_name)
        return {
            "active": runtime.active_message_count,
            "dead_letter": runtime.dead_letter_message_count,
            "scheduled": runtime.scheduled_message_count,
        }

    async def depth(self) -> dict[str, int | None]:
        return await asyncio.to_thread(self._depth)
