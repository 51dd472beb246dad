"""Signed bodies that cannot be processed get a 4xx with a JSON error code, never a 5xx (Square retries those
for 72 hours); events too large for the queue in use are thinned to fit it, whichever backend it is."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.adapters.servicebus_queue import ServiceBusQueue, to_servicebus_message
from shared.adapters.storage_queue import StorageQueue, decode_envelope
from shared.core.models import SyncCommand
from shared.core.ports import OutboundMessage
from tests.conftest import example
from tests.fakes import FakeQueue
from tests.unit.test_ingress import post

AZURE_QUEUE_LIMIT = 64 * 1024  # Put Message: "each message can be up to 64 KB" (the Base64 text we send)


def customer_event(**customer: Any) -> dict[str, Any]:
    event = example("customer.updated.json")
    event["data"]["object"]["customer"].update(customer)
    return event


def signed_reply(body: bytes, queue: Any = None) -> Any:
    return post(body, queue if queue is not None else FakeQueue())


def raw_customer_event(value: bytes) -> bytes:
    """A customer.updated whose note is the given raw JSON text (what json.dumps would never write)."""
    marker = "@@NOTE@@"
    return json.dumps(customer_event(note=marker)).encode().replace(f'"{marker}"'.encode(), value)


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("nested 300 levels", raw_customer_event(b"[" * 300 + b"]" * 300)),
        ("nested 5,000 levels", raw_customer_event(b"[" * 5000 + b"]" * 5000)),
        ("lone surrogate (escaped)", raw_customer_event(b'"\\ud800"')),
        ("lone surrogate in a key", raw_customer_event(b'{"\\udfff": 1}')),
        ("lone surrogate (raw bytes)", raw_customer_event(b'"\xed\xa0\x80"')),
        ("integer of 5,000 digits", raw_customer_event(b"9" * 5000)),
        ("integer of 100 digits", raw_customer_event(b"9" * 100)),
        ("NaN", raw_customer_event(b"NaN")),
        ("Infinity", raw_customer_event(b"-Infinity")),
        ("1e999", raw_customer_event(b"1e999")),
        ("not UTF-8", raw_customer_event(b'"\xff\xfe"')),
        ("UTF-8 byte order mark", b"\xef\xbb\xbf" + json.dumps(customer_event()).encode()),
    ],
)
def test_signed_body_that_cannot_be_processed_is_a_400_with_a_code(name: str, body: bytes) -> None:
    queue = FakeQueue()
    reply = signed_reply(body, queue)
    assert reply.status == 400, name
    assert reply.body["error"]["code"] == "invalid_json" and reply.body["error"]["message"]
    json.dumps(reply.body, ensure_ascii=False).encode("utf-8")  # the answer itself can be sent
    assert queue.sent == []


def test_the_error_says_where_without_echoing_the_value() -> None:
    reply = signed_reply(raw_customer_event(b'"\\ud800 secret@example.com"'))
    message = reply.body["error"]["message"]
    assert "data.object.customer.note" in message and "secret" not in message


def test_nesting_within_the_limit_and_duplicate_keys_are_accepted() -> None:
    queue = FakeQueue()
    nested = raw_customer_event(b"[" * 40 + b"]" * 40)
    assert signed_reply(nested, queue).status == 200
    duplicate = raw_customer_event(b'"first"').replace(b'"note": "first"', b'"note": "first", "note": "second"')
    assert signed_reply(duplicate, queue).status == 200
    last = SyncCommand.model_validate_json(queue.sent[-1].body)
    assert last.event["data"]["object"]["customer"]["note"] == "second"  # one reading: the last one wins


def test_an_object_id_no_square_id_could_be_is_a_400() -> None:
    event = customer_event(id="C" * 256)
    reply = signed_reply(json.dumps(event).encode())
    assert reply.status == 400 and reply.body["error"]["code"] == "invalid_envelope"
    long_type = {**customer_event(), "type": "x" * 200}
    assert signed_reply(json.dumps(long_type).encode()).status == 400


class AzureLikeQueueClient:
    """The storage queue SDK client as Azure answers it: a message text over 64 KiB is refused."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def create_queue(self) -> None:
        return None

    def send_message(self, content: str, *, visibility_timeout: int | None = None) -> None:
        if len(content.encode("utf-8")) > AZURE_QUEUE_LIMIT:
            raise ValueError("400 RequestBodyTooLarge")  # stands for azure.core's HttpResponseError
        self.texts.append(content)


@pytest.mark.parametrize("note_bytes", [30_000, 47_000, 60_000, 120_000, 190_000, 500_000])
def test_mid_size_events_fit_the_storage_queue(note_bytes: int) -> None:
    client = AzureLikeQueueClient()
    event = customer_event(note="é" * (note_bytes // 2))  # two bytes each in the body, six in the envelope
    reply = signed_reply(json.dumps(event, ensure_ascii=False).encode(), StorageQueue(client))
    assert reply.status == 200, reply.body
    (text,) = client.texts
    command = SyncCommand.model_validate_json(decode_envelope(text).body)
    assert command.entity_id == event["data"]["object"]["customer"]["id"]
    whole = "object" in command.event["data"]
    assert whole != command.fetch  # either the whole object, or none and the worker fetches it


def test_small_events_keep_their_object_on_the_storage_queue() -> None:
    client = AzureLikeQueueClient()
    assert signed_reply(json.dumps(customer_event(note="short")).encode(), StorageQueue(client)).status == 200
    command = SyncCommand.model_validate_json(decode_envelope(client.texts[0]).body)
    assert not command.fetch and command.event["data"]["object"]["customer"]["note"] == "short"


def test_an_event_too_large_even_without_its_object_is_a_413() -> None:
    client = AzureLikeQueueClient()
    event = {**customer_event(), "merchant_id": "M" * 70_000}
    reply = signed_reply(json.dumps(event).encode(), StorageQueue(client))
    assert reply.status == 413 and reply.body["error"]["code"] == "event_too_large" and client.texts == []


class RecordingSender:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    async def send_messages(self, message: Any) -> None:
        self.sent.append(message)

    async def close(self) -> None:
        return None


def _service_bus(limit: int) -> tuple[ServiceBusQueue, RecordingSender]:
    sender = RecordingSender()

    async def factory() -> RecordingSender:
        return sender

    return ServiceBusQueue(factory, limit), sender


def test_service_bus_threshold_follows_the_tier_setting() -> None:
    body = json.dumps(customer_event(note="x" * 300_000)).encode()
    standard, standard_sender = _service_bus(256 * 1024)
    premium, premium_sender = _service_bus(1024 * 1024)
    assert signed_reply(body, standard).status == 200 and signed_reply(body, premium).status == 200
    thinned = SyncCommand.model_validate_json(str(standard_sender.sent[0]))
    whole = SyncCommand.model_validate_json(str(premium_sender.sent[0]))
    assert thinned.fetch and "object" not in thinned.event["data"]
    assert not whole.fetch and len(whole.event["data"]["object"]["customer"]["note"]) == 300_000


def test_service_bus_ids_over_128_characters_are_bounded_not_refused() -> None:
    long_id = "C" * 200
    message = to_servicebus_message(
        OutboundMessage(f"e-{long_id}:retry:2", f"customer:{long_id}", "{}"), datetime.now(UTC)
    )
    assert len(message.message_id) <= 128 and len(message.session_id or "") <= 128
    again = to_servicebus_message(
        OutboundMessage(f"e-{long_id}:retry:2", f"customer:{long_id}", "{}"), datetime.now(UTC)
    )
    other = to_servicebus_message(
        OutboundMessage(f"e-{long_id}:retry:3", f"customer:{long_id}X", "{}"), datetime.now(UTC)
    )
    assert again.message_id == message.message_id and again.session_id == message.session_id  # stable
    assert other.message_id != message.message_id and other.session_id != message.session_id


def test_storage_queue_text_stays_within_64_kib_for_any_accepted_event() -> None:
    """Worst case for the envelope: characters json.dumps writes as \\uXXXX, then Base64 on top."""
    client = AzureLikeQueueClient()
    for note in ("\u2028" * 5_000, '"' * 9_000, "\U0001f600" * 3_000):
        assert signed_reply(json.dumps(customer_event(note=note)).encode(), StorageQueue(client)).status == 200
    assert len(client.texts) == 3 and all(len(text) <= AZURE_QUEUE_LIMIT for text in client.texts)
