"""Sales and refunds at the till, as Square records them: a POS sale is an order (no order.created, SPEC
`OrderCreatedEvent`) and a card payment fired as payment.created then payment.updated; a refund fires
refund.created/updated, payment.updated and a thin order.updated (reference/square.md §2).

A `Till` can also ring up history: `at` backdates every timestamp and `quiet` fires nothing, for the sales
that happened before Tillbridge was installed (what a backfill must load)."""

from __future__ import annotations

import itertools
import string
from collections.abc import Callable
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from devstack.square_emulator.clock import parse, stamp
from devstack.square_emulator.commerce import Commerce, deep_copy, money

CARD_BRANDS = ("VISA", "MASTERCARD", "AMERICAN_EXPRESS", "DISCOVER")


class Till:
    def __init__(self, shop: Commerce, *, at: str | None = None, quiet: bool = False) -> None:
        self.shop = shop
        self.quiet = quiet
        self._tick = self._stamps(at)

    def _stamps(self, at: str | None) -> Callable[[], str]:
        moment = parse(at)
        if moment is None:
            return self.shop.clock.tick
        steps = itertools.count()
        start = moment
        return lambda: stamp(start + timedelta(milliseconds=next(steps)))

    def _fire(self, event_type: str, data: dict[str, Any], location_id: str | None = None) -> dict[str, Any]:
        return {} if self.quiet else self.shop.fire(event_type, data, location_id)

    def _fire_object(self, event_type: str, name: str, value: dict[str, Any]) -> dict[str, Any]:
        """An event carrying a full object (a copy frozen at firing time)."""
        if self.quiet:
            return {}
        return self.shop.fire(event_type, {"type": name, "id": value["id"], "object": {name: deep_copy(value)}})

    def _line(self, spec: dict[str, Any], currency: str, discount_pct: Decimal, tax_pct: Decimal) -> dict[str, Any]:
        found = self.shop.variation(spec["variation_id"]) if spec.get("variation_id") else None
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
            "uid": self.shop.new_id(22, string.ascii_letters + string.digits),
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
        location = self.shop.locations[sale["location_id"]]
        currency = sale.get("currency", location["currency"])
        discount_pct, tax_pct = Decimal(str(sale.get("discount_percent", 0))), Decimal(str(sale.get("tax_percent", 0)))
        lines = [self._line(spec, currency, discount_pct, tax_pct) for spec in sale["lines"]]
        now = self._tick()
        totals = {
            k: sum(line[k]["amount"] for line in lines)
            for k in ("total_money", "total_tax_money", "total_discount_money")
        }
        tip = int(sale.get("tip", 0))
        order_id = self.shop.new_id(27, string.ascii_letters + string.digits)
        payment_id = self.shop.new_id(27, string.ascii_letters + string.digits) + "ZY"
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
                    "uid": self.shop.new_id(22),
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
                    "uid": self.shop.new_id(22),
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
        if sale.get("state", "COMPLETED") in ("OPEN", "CANCELED"):
            return self._unpaid(order, str(sale["state"]))
        payment = self._payment(
            payment_id, order, sale, currency=currency, amount=totals["total_money"], tip=tip, now=now
        )
        if sale.get("without_order"):
            payment.pop("order_id")
        else:
            self.shop.orders[order_id] = order
        self.shop.payments[payment_id] = payment
        events = []
        if sale.get("via_api"):
            thin = {k: order[k] for k in ("id", "location_id", "state", "created_at", "version")}
            thin["order_id"] = thin.pop("id")
            events.append(
                self._fire(
                    "order.created", {"type": "order_created", "id": order_id, "object": {"order_created": thin}}
                )
            )
        events.append(self._fire_object("payment.created", "payment", payment))
        payment.update(
            {
                "status": "COMPLETED",
                "updated_at": self._tick(),
                "version_token": self.shop.new_id(45, string.ascii_letters + string.digits),
            }
        )
        payment["card_details"]["status"] = "CAPTURED"
        payment["card_details"]["card_payment_timeline"]["captured_at"] = payment["updated_at"]
        events.append(self._fire_object("payment.updated", "payment", payment))
        return order, payment, [e for e in events if e]

    def _unpaid(self, order: dict[str, Any], state: str) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
        """An open ticket or a cancelled order: no tender, no payment, and (POS) no event."""
        order["state"] = state
        del order["tenders"]
        if state == "OPEN":
            del order["closed_at"]
        self.shop.orders[order["id"]] = order
        return order, {}, []

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
            "version_token": self.shop.new_id(45, string.ascii_letters + string.digits),
            "application_details": {"square_product": "SQUARE_POS", "application_id": "sq0idp-tillbridge-emulator"},
            "card_details": {
                "status": "AUTHORIZED",
                "entry_method": "EMV",
                "cvv_status": "CVV_NOT_CHECKED",
                "avs_status": "AVS_NOT_CHECKED",
                "statement_description": "SQ *TILLBRIDGE TEST",
                "card_payment_timeline": {"authorized_at": now},
                "card": {
                    "card_brand": sale.get("card_brand", self.shop.rng.choice(CARD_BRANDS)),
                    "last_4": sale.get("last_4", f"{self.shop.rng.randrange(10000):04d}"),
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
        payment = self.shop.payments[payment_id]
        currency = payment["amount_money"]["currency"]
        value = payment["total_money"]["amount"] if amount is None else amount
        now = self._tick()
        refund: dict[str, Any] = {
            "id": f"{payment_id}_{self.shop.new_id(44, string.ascii_letters + string.digits)}",
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
        self.shop.refunds[refund["id"]] = refund
        events = [self._fire_object("refund.created", "refund", refund)]
        refund.update(
            {
                "status": "COMPLETED",
                "updated_at": self._tick(),
                "processing_fee": [
                    {"amount_money": money(-round(value * 0.026), currency), "effective_at": now, "type": "INITIAL"}
                ],
            }
        )
        events.append(self._fire_object("refund.updated", "refund", refund))
        payment.setdefault("refund_ids", []).append(refund["id"])
        payment["refunded_money"] = money(payment.get("refunded_money", {}).get("amount", 0) + value, currency)
        payment["updated_at"] = self._tick()
        events.append(self._fire_object("payment.updated", "payment", payment))
        order = self.shop.orders.get(payment.get("order_id", ""))
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
            order["updated_at"] = self._tick()
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
                self._fire(
                    "order.updated", {"type": "order_updated", "id": order["id"], "object": {"order_updated": thin}}
                )
            )
        return refund, [e for e in events if e]
