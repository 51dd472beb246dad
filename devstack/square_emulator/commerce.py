"""The Point-of-Sale side of the emulator: stores, the catalog, sales (order + payment) and refunds,
each firing exactly the webhooks Square would. POS sales fire payment.created/updated and no
order.created (reference/square.md §2); location events carry only the id; catalog.version.updated
carries no object ids at all."""

from __future__ import annotations

import random
import string
import time
import uuid
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from devstack.square_emulator.customers import MERCHANT_ID, Clock

CARD_BRANDS = ("VISA", "MASTERCARD", "AMERICAN_EXPRESS", "DISCOVER")


def money(amount: int, currency: str) -> dict[str, Any]:
    return {"amount": amount, "currency": currency}


@dataclass
class Commerce:
    rng: random.Random
    clock: Clock
    events: list[dict[str, Any]]
    locations: dict[str, dict[str, Any]] = field(default_factory=dict)
    catalog: dict[str, dict[str, Any]] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    catalog_updated_at: str = ""

    def _id(self, length: int, alphabet: str = string.ascii_uppercase + string.digits) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(length))

    def _event(self, event_type: str, data: dict[str, Any], location_id: str | None = None) -> dict[str, Any]:
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
            "id": extra.pop("id", None) or self._id(13),
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
        return location, [self._event("location.created", {"type": "location", "id": location["id"]}, location["id"])]

    def update_location(self, location_id: str, changes: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        location = self.locations[location_id]
        location.update({k: v for k, v in changes.items() if k not in ("id", "merchant_id", "created_at")})
        return location, [self._event("location.updated", {"type": "location", "id": location_id}, location_id)]

    # ---- catalog
    def edit_catalog(self, items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        now = self.clock.tick()
        version = int(time.time() * 1000)
        changed = []
        for spec in items:
            category_id = self._category(spec["category"], now, version) if spec.get("category") else None
            item_id = spec.get("id") or self._id(24)
            variations = [
                {
                    "type": "ITEM_VARIATION",
                    "id": v.get("id") or self._id(24),
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
            changed.append(item)
        self.catalog_updated_at = now
        data = {
            "type": "catalog_version",
            "id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "object": {"catalog_version": {"updated_at": now}},
        }
        return changed, [self._event("catalog.version.updated", data)]

    def _category(self, name: str, now: str, version: int) -> str:
        for obj in self.catalog.values():
            if obj["type"] == "CATEGORY" and obj["category_data"]["name"] == name:
                return str(obj["id"])
        category: dict[str, Any] = {
            "type": "CATEGORY",
            "id": self._id(24),
            "updated_at": now,
            "version": version,
            "is_deleted": False,
            "present_at_all_locations": True,
            "category_data": {"name": name},
        }
        self.catalog[category["id"]] = category
        return str(category["id"])

    def variation(self, variation_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        for obj in self.catalog.values():
            for var in obj.get("item_data", {}).get("variations", []):
                if var["id"] == variation_id:
                    return obj, var
        return None

    # ---- sales and refunds
    def _line(self, spec: dict[str, Any], currency: str, discount_pct: Decimal, tax_pct: Decimal) -> dict[str, Any]:
        found = self.variation(spec["variation_id"]) if spec.get("variation_id") else None
        quantity = int(spec.get("quantity", 1))
        if found is not None:
            item, var = found
            base = int(var["item_variation_data"]["price_money"]["amount"])
            name, variation_name = item["item_data"]["name"], var["item_variation_data"]["name"]
        else:
            base, name, variation_name = int(spec.get("price", 0)), spec.get("name"), None
        gross = base * quantity
        discount = int((Decimal(gross) * discount_pct / 100).quantize(Decimal(1), ROUND_HALF_UP))
        tax = int((Decimal(gross - discount) * tax_pct / 100).quantize(Decimal(1), ROUND_HALF_UP))
        line: dict[str, Any] = {
            "uid": self._id(22, string.ascii_letters + string.digits),
            "quantity": str(quantity),
            "base_price_money": money(base, currency),
            "gross_sales_money": money(gross, currency),
            "variation_total_price_money": money(gross, currency),
            "total_discount_money": money(discount, currency),
            "total_tax_money": money(tax, currency),
            "total_service_charge_money": money(0, currency),
            "total_money": money(gross - discount + tax, currency),
        }
        if name is not None:
            line["name"] = name
        if found is not None:
            line["catalog_object_id"] = spec["variation_id"]
            line["variation_name"] = variation_name
        return line

    def ring_up_sale(self, sale: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
        """A sale at the till: an order (no order.created for POS) and a card payment created then completed."""
        location = self.locations[sale["location_id"]]
        currency = sale.get("currency", location["currency"])
        discount_pct, tax_pct = Decimal(str(sale.get("discount_percent", 0))), Decimal(str(sale.get("tax_percent", 0)))
        lines = [self._line(spec, currency, discount_pct, tax_pct) for spec in sale["lines"]]
        now = self.clock.tick()
        totals = {
            k: sum(line[k]["amount"] for line in lines)
            for k in ("total_money", "total_tax_money", "total_discount_money")
        }
        tip = int(sale.get("tip", 0))
        order_id = self._id(27, string.ascii_letters + string.digits)
        payment_id = self._id(27, string.ascii_letters + string.digits) + "ZY"
        order: dict[str, Any] = {
            "id": order_id,
            "location_id": location["id"],
            "created_at": now,
            "updated_at": now,
            "closed_at": now,
            "state": "COMPLETED",
            "line_items": lines,
            "source": {"name": sale.get("source", "Point of Sale")},
            "total_money": money(totals["total_money"] + tip, currency),
            "total_tax_money": money(totals["total_tax_money"], currency),
            "total_discount_money": money(totals["total_discount_money"], currency),
            "total_tip_money": money(tip, currency),
            "total_service_charge_money": money(0, currency),
            "net_amounts": {
                "total_money": money(totals["total_money"] + tip, currency),
                "tax_money": money(totals["total_tax_money"], currency),
                "discount_money": money(totals["total_discount_money"], currency),
                "tip_money": money(tip, currency),
                "service_charge_money": money(0, currency),
            },
            "tenders": [
                {
                    "id": payment_id,
                    "location_id": location["id"],
                    "transaction_id": order_id,
                    "created_at": now,
                    "amount_money": money(totals["total_money"] + tip, currency),
                    "tip_money": money(tip, currency),
                    "type": "CARD",
                    "payment_id": payment_id,
                }
            ],
        }
        if discount_pct:
            order["discounts"] = [
                {
                    "uid": self._id(22),
                    "name": f"{discount_pct}% Off",
                    "percentage": str(discount_pct),
                    "type": "FIXED_PERCENTAGE",
                    "scope": "ORDER",
                    "applied_money": money(totals["total_discount_money"], currency),
                }
            ]
        if tax_pct:
            order["taxes"] = [
                {
                    "uid": self._id(22),
                    "name": "Sales Tax",
                    "percentage": str(tax_pct),
                    "type": "ADDITIVE",
                    "scope": "ORDER",
                    "applied_money": money(totals["total_tax_money"], currency),
                }
            ]
        if sale.get("customer_id"):
            order["customer_id"] = sale["customer_id"]
        if sale.get("via_api"):
            order["version"] = 1
        payment = self._payment(
            payment_id, order, sale, currency=currency, amount=totals["total_money"], tip=tip, now=now
        )
        if sale.get("without_order"):
            payment.pop("order_id")
        else:
            self.orders[order_id] = order
        self.payments[payment_id] = payment
        events = []
        if sale.get("via_api"):
            thin = {k: order[k] for k in ("id", "location_id", "state", "created_at", "version")}
            thin["order_id"] = thin.pop("id")
            events.append(
                self._event(
                    "order.created", {"type": "order_created", "id": order_id, "object": {"order_created": thin}}
                )
            )
        events.append(
            self._event("payment.created", {"type": "payment", "id": payment_id, "object": {"payment": _copy(payment)}})
        )
        payment.update(
            {
                "status": "COMPLETED",
                "updated_at": self.clock.tick(),
                "version_token": self._id(45, string.ascii_letters + string.digits),
            }
        )
        payment["card_details"]["status"] = "CAPTURED"
        payment["card_details"]["card_payment_timeline"]["captured_at"] = payment["updated_at"]
        events.append(
            self._event("payment.updated", {"type": "payment", "id": payment_id, "object": {"payment": _copy(payment)}})
        )
        return order, payment, events

    def _payment(
        self,
        payment_id: str,
        order: dict[str, Any],
        sale: dict[str, Any],
        *,
        currency: str,
        amount: int,
        tip: int,
        now: str,
    ) -> dict[str, Any]:
        payment: dict[str, Any] = {
            "id": payment_id,
            "created_at": now,
            "updated_at": now,
            "amount_money": money(amount, currency),
            "total_money": money(amount + tip, currency),
            "approved_money": money(amount, currency),
            "status": "APPROVED",
            "source_type": "CARD",
            "location_id": order["location_id"],
            "order_id": order["id"],
            "receipt_number": payment_id[:4],
            "receipt_url": f"https://squareup.com/receipt/preview/{payment_id}",
            "version_token": self._id(45, string.ascii_letters + string.digits),
            "application_details": {"square_product": "SQUARE_POS", "application_id": "sq0idp-tillbridge-emulator"},
            "card_details": {
                "status": "AUTHORIZED",
                "entry_method": "EMV",
                "cvv_status": "CVV_NOT_CHECKED",
                "avs_status": "AVS_NOT_CHECKED",
                "statement_description": "SQ *TILLBRIDGE TEST",
                "card_payment_timeline": {"authorized_at": now},
                "card": {
                    "card_brand": sale.get("card_brand", self.rng.choice(CARD_BRANDS)),
                    "last_4": sale.get("last_4", f"{self.rng.randrange(10000):04d}"),
                    "exp_month": 12,
                    "exp_year": 2030,
                    "card_type": "CREDIT",
                    "prepaid_type": "NOT_PREPAID",
                    "bin": "411111",
                },
            },
        }
        if tip:
            payment["tip_money"] = money(tip, currency)
        if sale.get("customer_id"):
            payment["customer_id"] = sale["customer_id"]
        if sale.get("buyer_email_address"):
            payment["buyer_email_address"] = sale["buyer_email_address"]
        return payment

    def refund(self, payment_id: str, amount: int | None, reason: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Refund at the till: refund.created (PENDING), refund.updated (COMPLETED), order.updated (thin)."""
        payment = self.payments[payment_id]
        currency = payment["amount_money"]["currency"]
        value = payment["total_money"]["amount"] if amount is None else amount
        now = self.clock.tick()
        refund: dict[str, Any] = {
            "id": f"{payment_id}_{self._id(44, string.ascii_letters + string.digits)}",
            "status": "PENDING",
            "amount_money": money(value, currency),
            "payment_id": payment_id,
            "location_id": payment["location_id"],
            "reason": reason,
            "created_at": now,
            "updated_at": now,
        }
        if payment.get("order_id"):
            refund["order_id"] = payment["order_id"]
        self.refunds[refund["id"]] = refund
        events = [
            self._event("refund.created", {"type": "refund", "id": refund["id"], "object": {"refund": _copy(refund)}})
        ]
        refund.update(
            {
                "status": "COMPLETED",
                "updated_at": self.clock.tick(),
                "processing_fee": [
                    {"amount_money": money(-round(value * 0.026), currency), "effective_at": now, "type": "INITIAL"}
                ],
            }
        )
        events.append(
            self._event("refund.updated", {"type": "refund", "id": refund["id"], "object": {"refund": _copy(refund)}})
        )
        payment.setdefault("refund_ids", []).append(refund["id"])
        payment["refunded_money"] = money(payment.get("refunded_money", {}).get("amount", 0) + value, currency)
        payment["updated_at"] = self.clock.tick()
        events.append(
            self._event("payment.updated", {"type": "payment", "id": payment_id, "object": {"payment": _copy(payment)}})
        )
        order = self.orders.get(payment.get("order_id", ""))
        if order is not None:
            order.setdefault("refunds", []).append(
                {
                    "id": refund["id"],
                    "location_id": order["location_id"],
                    "transaction_id": order["id"],
                    "tender_id": payment_id,
                    "created_at": now,
                    "reason": reason,
                    "amount_money": money(value, currency),
                    "status": "COMPLETED",
                }
            )
            order["updated_at"] = self.clock.tick()
            if "version" in order:
                order["version"] += 1
            thin = {
                "order_id": order["id"],
                "location_id": order["location_id"],
                "state": order["state"],
                "created_at": order["created_at"],
                "updated_at": order["updated_at"],
            }
            if "version" in order:
                thin["version"] = order["version"]
            events.append(
                self._event(
                    "order.updated", {"type": "order_updated", "id": order["id"], "object": {"order_updated": thin}}
                )
            )
        return refund, events


def _copy(value: dict[str, Any]) -> dict[str, Any]:
    import copy

    return copy.deepcopy(value)
