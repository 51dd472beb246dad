"""Square orders, payments, refunds and locations → Dataverse rows (pure; no I/O).

Which column each value lands in comes from the configuration file's mapping sections (config/tillbridge.yaml
reproduces the built-in columns); this module supplies the values Tillbridge computes (`computed.<name>`).
Amounts are decimals in the currency's major unit (shared/money.py) beside an ISO 4217 code, so no
Dataverse currency row is needed. A line without a name gets a visible placeholder, repaired by the
next write of its order once Square or the catalog cache has a name.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from shared.config.file import TillbridgeConfig, default_config
from shared.core.errors import FieldProblem, InvalidDataError
from shared.core.keys import composite_key, key_segment
from shared.core.money import to_decimal
from shared.flows.mapping_engine import apply_mapping

UNNAMED_LINE = "(unnamed item)"


@dataclass(frozen=True)
class Tables:
    """Entity sets, key columns and navigation properties under the publisher prefix."""

    prefix: str

    def set(self, name: str) -> str:
        return f"{self.prefix}_{name}s".lower()

    def col(self, name: str) -> str:
        return f"{self.prefix}_{name}".lower()

    def nav(self, name: str) -> str:
        return f"{self.prefix}_{name}"

    def key(self, table: str, column: str, value: str) -> str:
        """`<set>(<col>='<value>')`, the value checked against Dataverse's key rules (shared/core/keys.py)."""
        return self.set(table) + key_segment({self.col(column): value})


@dataclass(frozen=True)
class CatalogEntry:
    item_name: str | None = None
    variation_name: str | None = None
    sku: str | None = None
    category_name: str | None = None


def amount(money: dict[str, Any] | None) -> float | None:
    converted = to_decimal(money)
    return float(converted[0]) if converted else None


def currency_of(*moneys: dict[str, Any] | None) -> str | None:
    for money in moneys:
        if money and money.get("currency"):
            return str(money["currency"]).upper()
    return None


def refunded_total(order: dict[str, Any]) -> Decimal:
    total = Decimal(0)
    for refund in order.get("refunds", []):
        if refund.get("status") in ("COMPLETED", "APPROVED", "PENDING"):
            converted = to_decimal(refund.get("amount_money"))
            total += converted[0] if converted else 0
    return total


def order_state(order: dict[str, Any]) -> str:
    refunded = refunded_total(order)
    total = to_decimal(order.get("total_money"))
    if refunded > 0 and total is not None:
        return "REFUNDED" if refunded >= total[0] else "PARTIALLY_REFUNDED"
    return str(order.get("state", "OPEN"))


def _mapped(
    t: Tables, kind: str, source: dict[str, Any], computed: dict[str, Any], config: TillbridgeConfig | None
) -> dict[str, Any]:
    problems: list[FieldProblem] = []
    payload = apply_mapping(
        (config or default_config(t.prefix)).mapping(kind), source, computed=computed, problems=problems
    )
    if problems:
        raise InvalidDataError(problems)
    return payload


def transaction_payload(
    t: Tables, order: dict[str, Any], payment: dict[str, Any] | None, config: TillbridgeConfig | None = None
) -> dict[str, Any]:
    computed = {"state": order_state(order), "refunded_amount": float(refunded_total(order))}
    payload = _mapped(t, "transaction", order, computed, config)
    if payment is not None:
        payload.update(sale_fields(t, order["id"], payment, config))
    return payload


def sale_fields(
    t: Tables, order_id: str, payment: dict[str, Any], config: TillbridgeConfig | None = None
) -> dict[str, Any]:
    """What the payment tells about its sale: the name people see and the receipt (an order update alone
    does not carry them, so they are written by the payment's event whatever order version is newer)."""
    receipt = payment.get("receipt_number")
    computed = {"sale_name": f"Sale {receipt}" if receipt else f"Order {order_id[:12]}"}
    return _mapped(t, "sale", payment, computed, config)


def line_payloads(
    t: Tables, order: dict[str, Any], catalog: dict[str, CatalogEntry], config: TillbridgeConfig | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """(alternate key value, payload) per line; the key is order id + line uid (`ORDER.UID`, the key scheme
    of shared/core/keys.py), stable across updates."""
    lines: list[tuple[str, dict[str, Any]]] = []
    for line in order.get("line_items", []):
        entry = catalog.get(str(line.get("catalog_object_id", "")), CatalogEntry())
        name = line.get("name") or entry.item_name
        computed = {
            "name": name or UNNAMED_LINE,
            "item_name": name,
            "quantity": float(Decimal(str(line.get("quantity", "1")))),
            "currency": currency_of(line.get("total_money"), line.get("base_price_money")),
            "sku": entry.sku,
            "variation_name": line.get("variation_name") or entry.variation_name,
            "category_name": entry.category_name,
        }
        payload = _mapped(t, "transaction_line", line, computed, config)
        lines.append((composite_key(str(order["id"]), str(line.get("uid", len(lines)))), payload))
    return lines


def payment_payload(t: Tables, payment: dict[str, Any], config: TillbridgeConfig | None = None) -> dict[str, Any]:
    card = (payment.get("card_details") or {}).get("card") or {}
    computed = {
        "name": f"Payment {payment.get('receipt_number') or payment['id'][:12]}",
        "currency": currency_of(payment.get("total_money"), payment.get("amount_money")),
        "tip_amount": amount(payment.get("tip_money")) or 0.0,
        "refunded_amount": amount(payment.get("refunded_money")) or 0.0,
        "card_brand": card.get("card_brand"),
        "last_4": card.get("last_4"),
    }
    return _mapped(t, "payment", payment, computed, config)


def refund_payload(t: Tables, refund: dict[str, Any], config: TillbridgeConfig | None = None) -> dict[str, Any]:
    return _mapped(t, "refund", refund, {"name": f"Refund {refund['id'][-8:]}"}, config)


def location_payload(
    t: Tables,
    location: dict[str, Any],
    business_unit: str | None,
    territory: str | None,
    config: TillbridgeConfig | None = None,
) -> dict[str, Any]:
    address = location.get("address") or {}
    parts = [
        address.get(k)
        for k in ("address_line_1", "locality", "administrative_district_level_1", "postal_code", "country")
    ]
    computed = {
        "name": location.get("name") or location["id"],
        "address": ", ".join(p for p in parts if p) or None,
        "business_unit": business_unit,
        "territory": territory,
    }
    return _mapped(t, "location", location, computed, config)
