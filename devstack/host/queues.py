"""Service Bus queue triggers over Azurite storage queues, with the broker's delivery semantics:
peek-lock ≈ visibility timeout, delivery count ≈ dequeue count, dead-letter ≈ `<queue>-poison`,
sessions ≈ one message at a time per session id, scheduled enqueue ≈ initial visibility, and a batch
trigger (`cardinality=many`) ≈ whatever is waiting, up to `maxMessageBatchSize`, handed over as one list
(completed together on return, abandoned together on an exception, like the Service Bus extension)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.functions.servicebus import ServiceBusMessage
from azure.storage.queue import QueueClient, QueueMessage

from shared.adapters.storage_queue import decode_envelope

log = logging.getLogger("devstack.host.queues")
DEAD_LETTER_SUFFIX = "/$deadletterqueue"
POLL_RETRY: dict[str, Any] = {
    "retry_total": 1,
    "initial_backoff": 0.5,
    "increment_base": 2,
    "connection_timeout": 3,
    "read_timeout": 10,
}
Invoke = Callable[[Any, dict[str, Any]], Awaitable[Any]]


def storage_queue_name(service_bus_path: str) -> tuple[str, bool]:
    """`q` → (`q`, False); `q/$deadletterqueue` → (`q-poison`, True)."""
    if service_bus_path.endswith(DEAD_LETTER_SUFFIX):
        return service_bus_path[: -len(DEAD_LETTER_SUFFIX)] + "-poison", True
    return service_bus_path, False


@dataclass
class QueueOptions:
    lock_seconds: int = 30
    max_delivery_count: int = 10
    max_concurrent_calls: int = 16
    batch_size: int = 16
    max_poll_interval: float = 0.5
    max_message_batch: int = 1000  # host.json maxMessageBatchSize (batch triggers only)
    concurrent_batches: int = 1  # batches of one trigger in flight at once


def to_function_message(message: QueueMessage, dead_lettered: bool) -> ServiceBusMessage:
    envelope = decode_envelope(str(message.content))
    inserted = message.inserted_on.astimezone(UTC) if message.inserted_on else None
    return ServiceBusMessage(
        body=envelope.body.encode("utf-8"),
        message_id=envelope.message_id,
        session_id=envelope.session_id or None,
        application_properties=dict(envelope.properties),
        user_properties=dict(envelope.properties),
        delivery_count=int(message.dequeue_count or 1),
        enqueued_time_utc=inserted,
        content_type="application/json",
        correlation_id=envelope.properties.get("event_id"),
        dead_letter_reason="MaxDeliveryCountExceeded" if dead_lettered else None,
        lock_token=message.pop_receipt,
    )


class QueuePoller:
    def __init__(
        self, function: Any, connection_string: str, queue_path: str, options: QueueOptions, invoke: Invoke
    ) -> None:
        self.function = function
        self.name, self.dead_letter = storage_queue_name(queue_path)
        self.options = options
        self.invoke = invoke
        self.arg_name = function.get_trigger().name
        self.sessions = str(getattr(function.get_trigger(), "is_sessions_enabled", "")).lower() == "true"
        cardinality = getattr(function.get_trigger(), "cardinality", None)
        self.batch = str(getattr(cardinality, "value", cardinality) or "").lower() == "many"
        self.client = QueueClient.from_connection_string(connection_string, self.name, **POLL_RETRY)
        self.poison = (
            None
            if self.dead_letter
            else QueueClient.from_connection_string(connection_string, self.name + "-poison", **POLL_RETRY)
        )
        self._slots = asyncio.Semaphore(options.max_concurrent_calls)
        self._session_locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.stopping = False

    async def ensure_queues(self) -> None:
        for client in (self.client, self.poison):
            if client is None:
                continue
            with contextlib.suppress(ResourceExistsError):
                await asyncio.to_thread(client.create_queue)

    def _receive(self) -> list[QueueMessage]:
        pages = self.client.receive_messages(
            messages_per_page=self.options.batch_size,
            visibility_timeout=self.options.lock_seconds,
            max_messages=self.options.batch_size,
        )
        return list(pages)

    def _receive_batch(self) -> list[QueueMessage]:
        """Everything waiting, up to the batch size (a storage queue hands out 32 at a time)."""
        messages: list[QueueMessage] = []
        while len(messages) < self.options.max_message_batch:
            want = min(32, self.options.max_message_batch - len(messages))
            page = list(
                self.client.receive_messages(
                    messages_per_page=want, visibility_timeout=self.options.lock_seconds, max_messages=want
                )
            )
            messages += page
            if len(page) < want:
                break
        return messages

    async def run(self) -> None:
        await self.ensure_queues()
        idle = 0.05
        if self.batch:
            self._slots = asyncio.Semaphore(self.options.concurrent_batches)
        while not self.stopping:
            if self.batch:
                await self._slots.acquire()  # a batch is received only when it can start at once
            try:
                messages = await asyncio.to_thread(self._receive_batch if self.batch else self._receive)
            except Exception as error:  # Azurite restarting: keep polling
                log.warning("receive from %s failed: %s", self.name, type(error).__name__)
                messages = []
            found = bool(messages)
            if self.batch:
                if messages:
                    task = asyncio.create_task(self._process_batch(messages))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                else:
                    self._slots.release()
                messages = []
            for message in messages:
                await self._slots.acquire()
                task = asyncio.create_task(self._process(message))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if found:
                idle = 0.05
            else:
                await asyncio.sleep(idle)
                idle = min(idle * 2, self.options.max_poll_interval)

    async def drain(self, timeout: float) -> None:
        self.stopping = True
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=timeout)

    async def _process(self, message: QueueMessage) -> None:
        try:
            if self.poison is not None and (message.dequeue_count or 1) > self.options.max_delivery_count:
                await asyncio.to_thread(self.poison.send_message, message.content)
                await asyncio.to_thread(self.client.delete_message, message)
                log.warning("message moved to %s-poison after %s deliveries", self.name, message.dequeue_count)
                return
            function_message = to_function_message(message, self.dead_letter)
            lock = self._session_lock(function_message.session_id)
            async with lock:
                await self._invoke(message, function_message)
        finally:
            self._slots.release()

    async def _settle_all(self, messages: list[QueueMessage], complete: bool) -> None:
        slots = asyncio.Semaphore(8)  # the SDK's connection pool holds 10

        async def one(message: QueueMessage) -> None:
            async with slots:
                with contextlib.suppress(Exception):  # if settling fails, the lock expires on its own
                    if complete:
                        await asyncio.to_thread(self.client.delete_message, message)
                    else:
                        await asyncio.to_thread(self.client.update_message, message, visibility_timeout=1)

        await asyncio.gather(*(one(message) for message in messages))

    async def _process_batch(self, messages: list[QueueMessage]) -> None:
        try:
            poisoned = [m for m in messages if self.poison and (m.dequeue_count or 1) > self.options.max_delivery_count]
            for message in poisoned:
                assert self.poison is not None
                await asyncio.to_thread(self.poison.send_message, message.content)
            await self._settle_all(poisoned, complete=True)
            deliver = [m for m in messages if m not in poisoned]
            if not deliver:
                return
            batch = [to_function_message(m, self.dead_letter) for m in deliver]
            try:
                await self.invoke(self.function, {self.arg_name: batch})
            except Exception:
                log.exception("function %s failed; the batch will be redelivered", self.function.get_function_name())
                await self._settle_all(deliver, complete=False)
                return
            await self._settle_all(deliver, complete=True)
        finally:
            self._slots.release()

    def _session_lock(self, session_id: str | None) -> asyncio.Lock:
        if not self.sessions or not session_id:
            return asyncio.Lock()
        lock = self._session_locks.get(session_id)
        if lock is None:
            lock = self._session_locks[session_id] = asyncio.Lock()
        return lock

    async def _invoke(self, message: QueueMessage, function_message: ServiceBusMessage) -> None:
        try:
            await self.invoke(self.function, {self.arg_name: function_message})
        except Exception:
            log.exception("function %s failed; message will be redelivered", self.function.get_function_name())
            # Abandon: visible again soon (Service Bus redelivers at once; a short pause avoids a hot loop).
            # If this fails too, the lock (visibility timeout) expires on its own.
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.client.update_message, message, visibility_timeout=1)
            return
        await asyncio.to_thread(self.client.delete_message, message)
