"""Compare the (emulated) CRM's transactions, lines, payments, refunds and stores with Square's state."""

from __future__ import annotations

from typing import Any

from shared.flows import commerce_mapping as cmap

T = cmap.Tables("tb")
TOLERANCE = 1e-9


def _by(rows: list[dict[str, Any]], column: str) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get(column):
            found.setdefault(str(row[column]), []).append(row)
    return found


def _differs(row: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    wrong = []
    for name, value in expected.items():
        actual = row.get(name)
        if isinstance(value, float) and isinstance(actual, (int, float)):
            if abs(actual - value) > TOLERANCE:
                wrong.append(name)
        elif actual != value:
            wrong.append(name)
    return wrong


def _orders(
    square: dict[str, Any], crm: dict[str, list[dict[str, Any]]], catalog: dict[str, cmap.CatalogEntry]
) -> dict[str, str]:
    problems: dict[str, str] = {}
    transactions = _by(crm["tb_transactions"], T.col("SquareOrderId"))
    lines = _by(crm["tb_transactionlines"], T.col("SquareLineKey"))
    payment_of = {p.get("order_id"): p for p in square["payments"]}
    for order in square["orders"]:
        rows = transactions.get(order["id"], [])
        if len(rows) != 1:
            problems[order["id"]] = f"expected one transaction, found {len(rows)}"
            continue
        wrong = _differs(rows[0], cmap.transaction_payload(T, order, payment_of.get(order["id"])))
        for key, line in cmap.line_payloads(T, order, catalog):
            found = lines.get(key, [])
            linked = (
                len(found) == 1 and found[0].get(f"_{T.col('TransactionId')}_value") == rows[0][T.col("TransactionId")]
            )
            wrong += [f"line.{n}" for n in _differs(found[0], line)] if linked else [f"line {key}"]
        if wrong:
            problems[order["id"]] = f"differs: {', '.join(sorted(set(wrong)))}"
    return problems


def _rows(objects: list[dict[str, Any]], rows: list[dict[str, Any]], column: str, mapper: Any) -> dict[str, str]:
    problems: dict[str, str] = {}
    indexed = _by(rows, column)
    for obj in objects:
        found = indexed.get(obj["id"], [])
        if len(found) != 1:
            problems[obj["id"]] = f"expected one row, found {len(found)}"
        elif wrong := _differs(found[0], mapper(T, obj)):
            problems[obj["id"]] = f"differs: {', '.join(wrong)}"
    return problems


def commerce_differences(
    square: dict[str, Any], crm: dict[str, list[dict[str, Any]]], catalog: dict[str, cmap.CatalogEntry]
) -> dict[str, str]:
    """Problems by Square object id; empty when every order, line, payment, refund and store matches."""
    problems = _orders(square, crm, catalog)
    problems.update(_rows(square["payments"], crm["tb_payments"], T.col("SquarePaymentId"), cmap.payment_payload))
    problems.update(_rows(square["refunds"], crm["tb_refunds"], T.col("SquareRefundId"), cmap.refund_payload))
    stores = _by(crm["tb_locations"], T.col("SquareLocationId"))
    for location in square["locations"]:
        found = stores.get(location["id"], [])
        if len(found) != 1 or found[0].get(T.col("Name")) != location["name"]:
            problems[location["id"]] = "store row missing or not named yet"
    return problems


def catalog_from(square_catalog: list[dict[str, Any]]) -> dict[str, cmap.CatalogEntry]:
    categories = {o["id"]: o["category_data"]["name"] for o in square_catalog if o["type"] == "CATEGORY"}
    entries = {}
    for item in (o for o in square_catalog if o["type"] == "ITEM"):
        data = item["item_data"]
        category = next((categories.get(c["id"]) for c in data.get("categories", []) if categories.get(c["id"])), None)
        for variation in data.get("variations", []):
            vd = variation["item_variation_data"]
            entries[variation["id"]] = cmap.CatalogEntry(data["name"], vd.get("name"), vd.get("sku"), category)
    return entries
