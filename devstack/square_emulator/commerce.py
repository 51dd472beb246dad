"""The Point-of-Sale side of the emulator: stores, the catalog and the objects sales leave behind (orders,
payments, refunds; rung up by `sales.py`), each change firing exactly the webhooks Square would. Location
events carry only the id; catalog.version.updated carries no object ids at all (reference/square.md §2)."""

from __future__ import annotations

import copy
import functools
import random
import string
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from devstack.square_emulator.clock import Clock
from devstack.square_emulator.customers import MERCHANT_ID
from devstack.square_emulator.events_api import EventLog
from devstack.square_emulator.frozen import Frozen


@functools.lru_cache(maxsize=200_000)
def money(amount: int, currency: str) -> dict[str, Any]:
    """SPEC `Money`: amount in the smallest denomination, ISO 4217 currency."""
    return Frozen(amount=amount, currency=currency)


@dataclass
class Commerce:
    rng: random.Random
    clock: Clock
    events: EventLog
    locations: dict[str, dict[str, Any]] = field(default_factory=dict)
    catalog: dict[str, dict[str, Any]] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    variations: dict[str, tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=dict)
    catalog_updated_at: str = ""

    def new_id(self, length: int, alphabet: str = string.ascii_uppercase + string.digits) -> str:
        size = len(alphabet)
        return "".join([alphabet[b % size] for b in self.rng.randbytes(length)])

    def fire(self, event_type: str, data: dict[str, Any], location_id: str | None = None) -> dict[str, Any]:
        event: dict[str, Any] = {
            "merchant_id": MERCHANT_ID,
            "type": event_type,
            "event_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "created_at": self.clock.tick(),
            "data": data,
        }
        if location_id:
            event["location_id"] = location_id
        self.events.append(event)
        return event

    # ---- stores
    def add_location(
        self, name: str, currency: str = "USD", country: str = "US", **extra: Any
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        location = {
            "id": extra.pop("id", None) or self.new_id(13),
            "name": name,
            "business_name": extra.pop("business_name", "Tillbridge Test Shop"),
            "status": "ACTIVE",
            "currency": currency,
            "country": country,
            "merchant_id": MERCHANT_ID,
            "created_at": self.clock.tick()[:19] + "Z",
            "timezone": extra.pop("timezone", "America/New_York"),
            "language_code": "en-US",
            "capabilities": ["CREDIT_CARD_PROCESSING"],
            "type": "PHYSICAL",
            **extra,
        }
        self.locations[location["id"]] = location
        return location, [self.fire("location.created", {"type": "location", "id": location["id"]}, location["id"])]

    def update_location(self, location_id: str, changes: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        location = self.locations[location_id]
        location.update({k: v for k, v in changes.items() if k not in ("id", "merchant_id", "created_at")})
        return location, [self.fire("location.updated", {"type": "location", "id": location_id}, location_id)]

    # ---- catalog
    def edit_catalog(self, items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        now = self.clock.tick()
        version = int(time.time() * 1000)
        changed = []
        for spec in items:
            category_id = self._category(spec["category"], now, version) if spec.get("category") else None
            item_id = spec.get("id") or self.new_id(24)
            variations: list[dict[str, Any]] = [
                {
                    "type": "ITEM_VARIATION",
                    "id": v.get("id") or self.new_id(24),
                    "updated_at": now,
                    "version": version,
                    "is_deleted": False,
                    "present_at_all_locations": True,
                    "item_variation_data": {
                        "item_id": item_id,
                        "name": v["name"],
                        "ordinal": n,
                        "sku": v.get("sku"),
                        "pricing_type": "FIXED_PRICING",
                        "price_money": money(int(v["price"]), spec.get("currency", "USD")),
                    },
                }
                for n, v in enumerate(spec.get("variations", [{"name": "Regular", "price": spec.get("price", 100)}]))
            ]
            item_data: dict[str, Any] = {"name": spec["name"], "variations": variations, "product_type": "REGULAR"}
            if category_id:
                item_data["categories"] = [{"id": category_id, "ordinal": 0}]
            item = {
                "type": "ITEM",
                "id": item_id,
                "updated_at": now,
                "version": version,
                "is_deleted": bool(spec.get("deleted")),
                "present_at_all_locations": True,
                "item_data": item_data,
            }
            self.catalog[item_id] = item
            self.variations.update({str(v["id"]): (item, v) for v in variations})
            changed.append(item)
        self.catalog_updated_at = now
        data = {
            "type": "catalog_version",
            "id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "object": {"catalog_version": {"updated_at": now}},
        }
        return changed, [self.fire("catalog.version.updated", data)]

    def _category(self, name: str, now: str, version: int) -> str:
        for obj in self.catalog.values():
            if obj["type"] == "CATEGORY" and obj["category_data"]["name"] == name:
                return str(obj["id"])
        category: dict[str, Any] = {
            "type": "CATEGORY",
            "id": self.new_id(24),
            "updated_at": now,
            "version": version,
            "is_deleted": False,
            "present_at_all_locations": True,
            "category_data": {"name": name},
        }
        self.catalog[category["id"]] = category
        return str(category["id"])

    def variation(self, variation_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        return self.variations.get(variation_id)

    def main_location_id(self) -> str | None:
        """The seller's main location: the first one created (ListPayments' default, SPEC `location_id`)."""
        return next(iter(self.locations), None)


def deep_copy(value: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(value)
