"""Square customers held by the emulator: create, update, delete, merge, each producing webhook events;
history imported without events (the years of customers no webhook will ever replay)."""

from __future__ import annotations

import itertools
import random
import string
import uuid
from dataclasses import dataclass, field
from typing import Any

from devstack.square_emulator.clock import Clock, canonical
from devstack.square_emulator.events_api import EventLog
from devstack.square_emulator.frozen import Frozen

MERCHANT_ID = "TILLBRIDGEEMU"
EDITABLE = (
    "given_name",
    "family_name",
    "nickname",
    "company_name",
    "email_address",
    "phone_number",
    "birthday",
    "reference_id",
    "note",
    "address",
    "preferences",
    "tax_ids",
)
_ALPHABET = string.ascii_uppercase + string.digits
DEFAULT_PREFERENCES = Frozen(email_unsubscribed=False)


def square_id(rng: random.Random) -> str:
    """Square-style ids: 26 upper-case letters and digits."""
    return "".join([_ALPHABET[b % 36] for b in rng.randbytes(26)])


@dataclass
class CustomerBook:
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    clock: Clock = field(default_factory=Clock)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted: dict[str, dict[str, Any]] = field(default_factory=dict)
    merged_into: dict[str, str] = field(default_factory=dict)
    events: EventLog | None = None
    idempotency: dict[str, tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=dict)
    _sequence: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        if self.events is None:
            self.events = EventLog(self.clock)

    @property
    def log(self) -> EventLog:
        assert self.events is not None
        return self.events

    def _event(
        self, event_type: str, customer: dict[str, Any], context: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        shown = {k: v for k, v in customer.items() if k != "segment_ids"}
        if event_type == "customer.deleted":
            shown.pop("group_ids", None)
        data_object: dict[str, Any] = {"customer": shown}
        if context:
            data_object["event_context"] = context
        data: dict[str, Any] = {"type": "customer", "id": customer["id"]}
        if event_type == "customer.deleted":
            data["deleted"] = True
        data["object"] = data_object
        event = {
            "merchant_id": MERCHANT_ID,
            "type": event_type,
            "event_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "created_at": self.clock.tick()[:19] + "Z",
            "data": data,
        }
        self.log.append(event)
        return event

    def create(
        self, fields_: dict[str, Any], *, source: str = "DIRECTORY", context: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        now = self.clock.tick()
        customer: dict[str, Any] = {"id": square_id(self.rng), "created_at": now, "updated_at": now}
        customer.update({k: v for k, v in fields_.items() if k in EDITABLE and v is not None})
        customer.setdefault("preferences", DEFAULT_PREFERENCES)
        customer["creation_source"] = source
        customer["version"] = 0
        self.customers[customer["id"]] = customer
        return customer, [self._event("customer.created", customer, context)]

    def import_history(self, item: dict[str, Any]) -> dict[str, Any]:
        """A customer that existed before Tillbridge: given timestamps/version, no webhook, no event."""
        created = canonical(item.get("created_at")) or self.clock.tick()
        customer: dict[str, Any] = {
            "id": str(item.get("id") or square_id(self.rng)),
            "created_at": created,
            "updated_at": canonical(item.get("updated_at")) or created,
        }
        customer.update({k: v for k, v in item.items() if k in EDITABLE and v is not None})
        customer.setdefault("preferences", DEFAULT_PREFERENCES)
        customer["creation_source"] = str(item.get("creation_source") or "DIRECTORY")
        customer["version"] = int(item.get("version") or 0)
        for name in ("group_ids", "segment_ids"):
            if name in item:
                customer[name] = list(item[name])
        self.customers[customer["id"]] = customer
        return customer

    def get(self, customer_id: str) -> dict[str, Any] | None:
        """RetrieveCustomer: a merged-away id returns the surviving profile (per Square's forum answer)."""
        seen = set()
        while customer_id in self.merged_into and customer_id not in seen:
            seen.add(customer_id)
            customer_id = self.merged_into[customer_id]
        return self.customers.get(customer_id)

    def update(self, customer_id: str, changes: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """A committed update: fields set (None removes), version + 1, customer.updated fired."""
        customer = self.customers[customer_id]
        for name, value in changes.items():
            if name not in EDITABLE:
                continue
            if value is None:
                customer.pop(name, None)
            else:
                customer[name] = value
        customer["updated_at"] = self.clock.tick()
        customer["version"] += 1
        return customer, [self._event("customer.updated", customer)]

    def delete(self, customer_id: str, context: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        customer = self.customers.pop(customer_id)
        self.deleted[customer_id] = customer
        return [self._event("customer.deleted", customer, context)]

    def merge(self, customer_ids: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Square merges into a new profile: customer.created for it, customer.deleted for each source."""
        sources = [self.customers[cid] for cid in customer_ids]
        newest_first = sorted(sources, key=lambda c: c["updated_at"], reverse=True)
        merged_fields: dict[str, Any] = {}
        for name in EDITABLE:
            for source in newest_first:
                if name in source:
                    merged_fields[name] = source[name]
                    break
        survivor_id = square_id(self.rng)
        context = {"merge": {"from_customer_ids": list(customer_ids), "to_customer_id": survivor_id}}
        now = self.clock.tick()
        survivor = {
            "id": survivor_id,
            "created_at": now,
            "updated_at": now,
            **merged_fields,
            "creation_source": "MERGE",
            "version": 0,
        }
        self.customers[survivor_id] = survivor
        events = [self._event("customer.created", survivor, context)]
        for cid in customer_ids:
            self.merged_into[cid] = survivor_id
            events.extend(self.delete(cid, context))
        return survivor, events
