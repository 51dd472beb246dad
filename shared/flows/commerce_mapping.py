"""Square orders, payments, refunds and locations → Dataverse rows (pure; no I/O).

Amounts are decimals in the currency's major unit (shared/money.py) beside an ISO 4217 code, so no
Dataverse currency row is needed. A line without a name gets a visible placeholder, repaired by the
next write of its order once Square or the catalog cache has a name.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from shared.core.keys import composite_key, key_segment
from shared.core.money import to_decimal

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


def transaction_payload(t: Tables, order: dict[str, Any], payment: dict[str, Any] | None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        t.col("State"): order_state(order),
        t.col("Source"): (order.get("source") or {}).get("name"),
        t.col("Currency"): currency_of(order.get("total_money")),
        t.col("TotalAmount"): amount(order.get("total_money")),
        t.col("TaxAmount"): amount(order.get("total_tax_money")),
        t.col("DiscountAmount"): amount(order.get("total_discount_money")),
        t.col("TipAmount"): amount(order.get("total_tip_money")),
        t.col("ServiceChargeAmount"): amount(order.get("total_service_charge_money")),
        t.col("RefundedAmount"): float(refunded_total(order)),
        t.col("SquareCreatedOn"): order.get("created_at"),
        t.col("SquareUpdatedOn"): order.get("updated_at"),
        t.col("ClosedOn"): order.get("closed_at"),
    }
    if payment is not None:
        payload.update(sale_fields(t, order["id"], payment))
    return payload


def sale_fields(t: Tables, order_id: str, payment: dict[str, Any]) -> dict[str, Any]:
    """What the payment tells about its sale: the name people see and the receipt (an order update alone
    does not carry them, so they are written by the payment's event whatever order version is newer)."""
    receipt = payment.get("receipt_number")
    return {
        t.col("Name"): f"Sale {receipt}" if receipt else f"Order {order_id[:12]}",
        t.col("ReceiptNumber"): receipt,
        t.col("ReceiptUrl"): payment.get("receipt_url"),
    }


def line_payloads(
    t: Tables, order: dict[str, Any], catalog: dict[str, CatalogEntry]
) -> list[tuple[str, dict[str, Any]]]:
    """(alternate key value, payload) per line; the key is order id + line uid (`ORDER.UID`, the key scheme
    of shared/core/keys.py), stable across updates."""
    lines: list[tuple[str, dict[str, Any]]] = []
    for line in order.get("line_items", []):
        entry = catalog.get(str(line.get("catalog_object_id", "")), CatalogEntry())
        name = line.get("name") or entry.item_name
        quantity = Decimal(str(line.get("quantity", "1")))
        payload = {
            t.col("Name"): name or UNNAMED_LINE,
            t.col("Quantity"): float(quantity),
            t.col("UnitPrice"): amount(line.get("base_price_money")),
            t.col("GrossAmount"): amount(line.get("gross_sales_money")),
            t.col("DiscountAmount"): amount(line.get("total_discount_money")),
            t.col("TaxAmount"): amount(line.get("total_tax_money")),
            t.col("TotalAmount"): amount(line.get("total_money")),
            t.col("Currency"): currency_of(line.get("total_money"), line.get("base_price_money")),
            t.col("Sku"): entry.sku,
            t.col("ItemName"): name,
            t.col("VariationName"): line.get("variation_name") or entry.variation_name,
            t.col("CategoryName"): entry.category_name,
            t.col("CatalogObjectId"): line.get("catalog_object_id"),
        }
        lines.append((composite_key(str(order["id"]), str(line.get("uid", len(lines)))), payload))
    return lines


def payment_payload(t: Tables, payment: dict[str, Any]) -> dict[str, Any]:
    card = (payment.get("card_details") or {}).get("card") or {}
    return {
        t.col("Name"): f"Payment {payment.get('receipt_number') or payment['id'][:12]}",
        t.col("Status"): payment.get("status"),
        t.col("Currency"): currency_of(payment.get("total_money"), payment.get("amount_money")),
        t.col("Amount"): amount(payment.get("amount_money")),
        t.col("TipAmount"): amount(payment.get("tip_money")) or 0.0,
        t.col("TotalAmount"): amount(payment.get("total_money")),
        t.col("RefundedAmount"): amount(payment.get("refunded_money")) or 0.0,
        t.col("SourceType"): payment.get("source_type"),
        t.col("CardBrand"): card.get("card_brand"),
        t.col("Last4"): card.get("last_4"),
        t.col("ReceiptNumber"): payment.get("receipt_number"),
        t.col("ReceiptUrl"): payment.get("receipt_url"),
        t.col("SquareOrderId"): payment.get("order_id"),
        t.col("SquareCreatedOn"): payment.get("created_at"),
        t.col("SquareUpdatedOn"): payment.get("updated_at"),
    }


def refund_payload(t: Tables, refund: dict[str, Any]) -> dict[str, Any]:
    return {
        t.col("Name"): f"Refund {refund['id'][-8:]}",
        t.col("Status"): refund.get("status"),
        t.col("Currency"): currency_of(refund.get("amount_money")),
        t.col("Amount"): amount(refund.get("amount_money")),
        t.col("Reason"): (refund.get("reason") or "")[:500] or None,
        t.col("SquarePaymentId"): refund.get("payment_id"),
        t.col("SquareOrderId"): refund.get("order_id"),
        t.col("SquareCreatedOn"): refund.get("created_at"),
        t.col("SquareUpdatedOn"): refund.get("updated_at"),
    }


def location_payload(
    t: Tables, location: dict[str, Any], business_unit: str | None, territory: str | None
) -> dict[str, Any]:
    address = location.get("address") or {}
    parts = [
        address.get(k)
        for k in ("address_line_1", "locality", "administrative_district_level_1", "postal_code", "country")
    ]
    return {
        t.col("Name"): location.get("name") or location["id"],
        t.col("Currency"): location.get("currency"),
        t.col("Timezone"): location.get("timezone"),
        t.col("Status"): location.get("status"),
        t.col("Address"): ", ".join(p for p in parts if p) or None,
        t.col("BusinessUnitName"): business_unit,
        t.col("TerritoryName"): territory,
    }
