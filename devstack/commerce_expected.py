"""What the CRM must hold for Square's orders, lines, payments, refunds, stores and buyers: the expected
columns, stated from Square's own fields with this module's own small tables (never the product's mapping
code). devstack/commerce_check.py compares them with the CRM; the table is in its docstring."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

PREFIX = "tb"
EXPONENTS = {"USD": 2, "JPY": 0, "KWD": 3, "EUR": 2, "GBP": 2, "CAD": 2, "AUD": 2}
REFUND_COUNTED = ("COMPLETED", "APPROVED", "PENDING")
TRANSACTIONS, LINES = f"{PREFIX}_transactions", f"{PREFIX}_transactionlines"
PAYMENTS, REFUNDS, STORES = f"{PREFIX}_payments", f"{PREFIX}_refunds", f"{PREFIX}_locations"
CUSTOMER_KEY = f"{PREFIX}_squarecustomerid"
UNNAMED_LINE = "(unnamed item)"  # the placeholder the README documents for a line Square gives no name


def col(name: str) -> str:
    return f"{PREFIX}_{name}"


def lookup(name: str) -> str:
    """The column a lookup reads back as: `_<prefix>_<name>_value` (`_ownerid_value` for the owner)."""
    return "_ownerid_value" if name == "owner" else f"_{PREFIX}_{name}_value"


@dataclass(frozen=True)
class CatalogLine:
    """What Square's catalog says about one item variation."""

    item_name: str | None
    variation_name: str | None
    sku: str | None
    category: str | None


def major(money: dict[str, Any] | None) -> Decimal | None:
    """`{"amount": 1999, "currency": "USD"}` → 19.99 (JPY 1999 → 1999, KWD 1999 → 1.999)."""
    if money is None:
        return None
    return Decimal(int(money["amount"])) / Decimal(10) ** EXPONENTS[str(money["currency"])]


def amount(money: dict[str, Any] | None) -> float | None:
    value = major(money)
    return None if value is None else float(value)


def _refunded(order: dict[str, Any]) -> Decimal:
    return sum(
        (major(r["amount_money"]) or Decimal(0) for r in order.get("refunds", []) if r.get("status") in REFUND_COUNTED),
        Decimal(0),
    )


def _state(order: dict[str, Any]) -> str:
    refunded, total = _refunded(order), major(order.get("total_money"))
    if refunded > 0 and total is not None:
        return "REFUNDED" if refunded >= total else "PARTIALLY_REFUNDED"
    return str(order["state"])


def expected_transaction(order: dict[str, Any], payment: dict[str, Any] | None) -> dict[str, Any]:
    expected = {
        col("state"): _state(order),
        col("source"): (order.get("source") or {}).get("name"),
        col("currency"): order["total_money"]["currency"],
        col("totalamount"): amount(order.get("total_money")),
        col("taxamount"): amount(order.get("total_tax_money")),
        col("discountamount"): amount(order.get("total_discount_money")),
        col("tipamount"): amount(order.get("total_tip_money")),
        col("servicechargeamount"): amount(order.get("total_service_charge_money")),
        col("refundedamount"): float(_refunded(order)),
        col("squarecreatedon"): order.get("created_at"),
        col("squareupdatedon"): order.get("updated_at"),
        col("closedon"): order.get("closed_at"),
    }
    if payment is not None:
        expected[col("name")] = f"Sale {payment['receipt_number']}"
        expected[col("receiptnumber")] = payment["receipt_number"]
        expected[col("receipturl")] = payment.get("receipt_url")
    return expected


def expected_lines(order: dict[str, Any], catalog: dict[str, CatalogLine]) -> dict[str, dict[str, Any]]:
    """Line key → expected columns."""
    lines = {}
    for line in order.get("line_items", []):
        entry = catalog.get(line.get("catalog_object_id", ""), CatalogLine(None, None, None, None))
        name = line.get("name") or entry.item_name
        lines[f"{order['id']}.{line['uid']}"] = {
            col("name"): name or UNNAMED_LINE,
            col("itemname"): name,
            col("quantity"): float(line["quantity"]),
            col("unitprice"): amount(line.get("base_price_money")),
            col("grossamount"): amount(line.get("gross_sales_money")),
            col("discountamount"): amount(line.get("total_discount_money")),
            col("taxamount"): amount(line.get("total_tax_money")),
            col("totalamount"): amount(line.get("total_money")),
            col("currency"): line["total_money"]["currency"],
            col("sku"): entry.sku,
            col("variationname"): line.get("variation_name") or entry.variation_name,
            col("categoryname"): entry.category,
            col("catalogobjectid"): line.get("catalog_object_id"),
        }
    return lines


def expected_payment(payment: dict[str, Any]) -> dict[str, Any]:
    card = (payment.get("card_details") or {}).get("card") or {}
    return {
        col("name"): f"Payment {payment['receipt_number']}",
        col("status"): payment["status"],
        col("currency"): payment["total_money"]["currency"],
        col("amount"): amount(payment["amount_money"]),
        col("tipamount"): amount(payment.get("tip_money")) or 0.0,
        col("totalamount"): amount(payment["total_money"]),
        col("refundedamount"): amount(payment.get("refunded_money")) or 0.0,
        col("sourcetype"): payment.get("source_type"),
        col("cardbrand"): card.get("card_brand"),
        col("last4"): card.get("last_4"),
        col("receiptnumber"): payment["receipt_number"],
        col("receipturl"): payment.get("receipt_url"),
        col("squareorderid"): payment.get("order_id"),
        col("squarecreatedon"): payment.get("created_at"),
        col("squareupdatedon"): payment.get("updated_at"),
    }


def expected_refund(refund: dict[str, Any]) -> dict[str, Any]:
    return {
        col("name"): f"Refund {refund['id'][-8:]}",
        col("status"): refund["status"],
        col("currency"): refund["amount_money"]["currency"],
        col("amount"): amount(refund["amount_money"]),
        col("reason"): refund.get("reason") or None,
        col("squarepaymentid"): refund.get("payment_id"),
        col("squareorderid"): refund.get("order_id"),
        col("squarecreatedon"): refund.get("created_at"),
        col("squareupdatedon"): refund.get("updated_at"),
    }


def expected_store(location: dict[str, Any], owners: dict[str, dict[str, str]] | None) -> dict[str, Any]:
    """The store's columns; business unit and territory only when the expected owner map is given."""
    address = location.get("address") or {}
    parts = (address.get(k) for k in ("address_line_1", "locality", "administrative_district_level_1", "postal_code"))
    joined = ", ".join(p for p in (*parts, address.get("country")) if p)
    expected = {
        col("name"): location["name"],
        col("currency"): location.get("currency"),
        col("timezone"): location.get("timezone"),
        col("status"): location.get("status"),
        col("address"): joined or None,
    }
    if owners is not None:
        assigned = owners.get(location["id"], {})
        expected[col("businessunitname")] = assigned.get("business_unit")
        expected[col("territoryname")] = assigned.get("territory")
    return expected


class Purchases:
    """One Square customer's completed purchases, from Square's payments and refunds."""

    def __init__(self) -> None:
        self.visits = 0
        self.value = Decimal(0)
        self.last = ""
        self.categories: dict[str, int] = {}

    def expected(self) -> dict[str, Any]:
        return {
            col("visitcount"): self.visits,
            col("lifetimevalue"): float(self.value),
            col("lastpurchaseon"): self.last,
        }

    def top_categories_wrong(self, listed: str | None) -> bool:
        """Up to three of the most frequent categories (each sale counts a category once); ties in any order."""
        names = [n.strip() for n in (listed or "").split(",") if n.strip()]
        if len(names) != min(3, len(self.categories)) or not set(names) <= set(self.categories):
            return True
        lowest_listed = min((self.categories[n] for n in names), default=0)
        return any(count > lowest_listed for name, count in self.categories.items() if name not in names)


def survivor(customer_id: str | None, merged_into: dict[str, str]) -> str | None:
    while customer_id in merged_into:
        customer_id = merged_into[customer_id]
    return customer_id


def purchases(square: dict[str, Any], catalog: dict[str, CatalogLine]) -> dict[str, Purchases]:
    merged_into = square.get("merged_into", {})
    orders = {o["id"]: o for o in square["orders"]}
    by_customer: dict[str, Purchases] = {}
    customer_of_payment = {}
    for payment in square["payments"]:
        order = orders.get(payment.get("order_id", ""), {})
        customer = survivor(order.get("customer_id") or payment.get("customer_id"), merged_into)
        customer_of_payment[payment["id"]] = customer
        if not customer or payment["status"] != "COMPLETED":
            continue
        bought = by_customer.setdefault(customer, Purchases())
        bought.visits += 1
        bought.value += major(payment["total_money"]) or Decimal(0)
        bought.last = max(bought.last, payment["created_at"])
        for category in {catalog[i].category for i in _variations(order) if i in catalog and catalog[i].category}:
            bought.categories[str(category)] = bought.categories.get(str(category), 0) + 1
    for refund in square["refunds"]:
        refunded = by_customer.get(customer_of_payment.get(refund["payment_id"]) or "")
        if refunded is not None and refund["status"] == "COMPLETED":
            refunded.value -= major(refund["amount_money"]) or Decimal(0)
    return by_customer


def _variations(order: dict[str, Any]) -> list[str]:
    return [line["catalog_object_id"] for line in order.get("line_items", []) if line.get("catalog_object_id")]


def catalog_from(square_catalog: list[dict[str, Any]]) -> dict[str, CatalogLine]:
    """Variation id → item name, variation name, SKU and category, from Square's catalog objects."""
    categories = {o["id"]: o["category_data"]["name"] for o in square_catalog if o["type"] == "CATEGORY"}
    entries = {}
    for item in (o for o in square_catalog if o["type"] == "ITEM"):
        data = item["item_data"]
        category = next((categories[c["id"]] for c in data.get("categories", []) if c["id"] in categories), None)
        for variation in data.get("variations", []):
            vd = variation["item_variation_data"]
            entries[variation["id"]] = CatalogLine(data["name"], vd.get("name"), vd.get("sku"), category)
    return entries
