"""Boundary models (pydantic): the Square webhook envelope, the Square customer, the queue message."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MESSAGE_SCHEMA_VERSION = 1
# Square's ids are short (a customer's 26 characters, a refund's about 70); anything longer is no Square id
MAX_SQUARE_ID_LENGTH = 255


class _Lenient(BaseModel):
    """Square adds fields over time; unknown fields are kept, never rejected."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class EventData(_Lenient):
    type: str = ""
    id: str = ""
    deleted: bool | None = None
    object: dict[str, Any] | None = None


class WebhookEnvelope(_Lenient):
    """Square's `Event` schema (SPEC components.schemas.Event)."""

    merchant_id: str | None = None
    location_id: str | None = None
    type: str = Field(min_length=1, max_length=128)
    event_id: str = Field(min_length=1, max_length=128)  # a Service Bus MessageId holds 128 characters
    created_at: str | None = None
    data: EventData


class Address(_Lenient):
    address_line_1: str | None = None
    address_line_2: str | None = None
    address_line_3: str | None = None
    locality: str | None = None
    administrative_district_level_1: str | None = None
    postal_code: str | None = None
    country: str | None = None


class Preferences(_Lenient):
    email_unsubscribed: bool | None = None


class SquareCustomer(_Lenient):
    """Square's `Customer` schema, the fields Tillbridge maps."""

    id: str = Field(min_length=1)
    version: int | None = None
    created_at: str | None = None
    updated_at: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    nickname: str | None = None
    company_name: str | None = None
    email_address: str | None = None
    phone_number: str | None = None
    birthday: str | None = None
    reference_id: str | None = None
    note: str | None = None
    address: Address | None = None
    preferences: Preferences | None = None


class MergeContext(_Lenient):
    from_customer_ids: list[str] = Field(default_factory=list)
    to_customer_id: str = ""


class SyncCommand(_Lenient):
    """The queue message: one Square event (or a reconcile order) for one entity.

    `message_id` is the idempotency key end to end (Square `event_id` for webhook events).
    `attempt` counts delayed retries; each retry copy is a new message with a fresh id.
    `event` holds the Square envelope; `fetch` says the worker must fetch the object first
    (thin events, or a payload stripped to fit the queue's message size).
    """

    schema_version: int = MESSAGE_SCHEMA_VERSION
    message_id: str
    event_id: str
    event_type: str
    entity_kind: str
    entity_id: str
    merchant_id: str | None = None
    received_at: str
    attempt: int = 1
    fetch: bool = False
    repair: bool = False  # re-apply Square's current copy even at the version the ledger holds (a lost commit)
    source_version: int | None = None
    event: dict[str, Any] = Field(default_factory=dict)

    @property
    def session_id(self) -> str:
        return f"{self.entity_kind}:{self.entity_id}"
