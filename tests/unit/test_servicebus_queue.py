"""The production Service Bus path, against the SDK's own message type (no broker needed)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from azure.servicebus import ServiceBusMessage

from shared.adapters.servicebus_queue import ServiceBusQueue, to_servicebus_message
from shared.core.errors import TransientError
from shared.core.ports import OutboundMessage

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_message_carries_id_and_properties() -> None:
    message = to_servicebus_message(
        OutboundMessage("evt-1", "", '{"a":1}', properties={"event_id": "evt-1", "event_type": "customer.created"}),
        NOW,
    )
    assert isinstance(message, ServiceBusMessage)
    assert message.message_id == "evt-1" and message.session_id is None
    assert message.application_properties == {"event_id": "evt-1", "event_type": "customer.created"}
    assert message.content_type == "application/json" and message.correlation_id == "evt-1"
    assert str(message) == '{"a":1}' and message.scheduled_enqueue_time_utc is None


def test_delay_becomes_scheduled_enqueue_time() -> None:
    message = to_servicebus_message(OutboundMessage("evt-1:retry:2", "customer:C1", "{}", delay_seconds=30), NOW)
    assert message.scheduled_enqueue_time_utc == NOW + timedelta(seconds=30)
    assert message.message_id == "evt-1:retry:2"


class FakeSender:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[ServiceBusMessage] = []
        self.fail = fail
        self.closed = False

    async def send_messages(self, message: ServiceBusMessage) -> None:
        if self.fail:
            raise ConnectionError("link detached")
        self.sent.append(message)

    async def close(self) -> None:
        self.closed = True


def test_sender_link_is_opened_once_and_reused() -> None:
    senders: list[FakeSender] = []

    async def factory() -> FakeSender:
        senders.append(FakeSender())
        return senders[-1]

    async def scenario() -> None:
        queue = ServiceBusQueue(factory, 262_144)
        await queue.send(OutboundMessage("a", "s", "{}"))
        await queue.send(OutboundMessage("b", "s", "{}"))

    asyncio.run(scenario())
    assert len(senders) == 1 and [m.message_id for m in senders[0].sent] == ["a", "b"]


def test_send_failure_is_transient_and_reopens_the_link() -> None:
    senders = [FakeSender(fail=True), FakeSender()]
    opened: list[FakeSender] = []

    async def factory() -> FakeSender:
        opened.append(senders[len(opened)])
        return opened[-1]

    async def scenario() -> None:
        queue = ServiceBusQueue(factory, 262_144)
        with pytest.raises(TransientError):
            await queue.send(OutboundMessage("a", "s", "{}"))
        await queue.send(OutboundMessage("a", "s", "{}"))

    asyncio.run(scenario())
    assert senders[0].closed and [m.message_id for m in senders[1].sent] == ["a"]
