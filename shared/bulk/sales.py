"""Sales history in bulk — orders (transactions and lines), payments, refunds — built with the live
flows' own row builders (shared/flows/sales.py, commerce_mapping.py), gated and committed per object.

A sale links to its buyer only when the customer is already in the CRM (the ledger knows its contact):
the backfill never waits for a customer; run `backfill customers` first (`all` does). A payment or refund
links to its transaction when the order is in the ledger. Purchase aggregates and refund cases are the
live flows' business and are not rebuilt from history."""

from __future__ import annotations

from typing import Any

from shared.bulk.context import BulkContext
from shared.bulk.counts import Counts
from shared.bulk.records import Record, gate, row_of, write_records
from shared.core.ports import BatchOperation, LedgerRow
from shared.flows import commerce_mapping as cmap
from shared.flows.commerce_support import CATALOG_DOC, Buyer, catalog_entries_from, owner_for
from shared.flows.customer_mapping import CONTACTS
from shared.flows.sales import _payment_operation, order_operations, tables


async def _buyers(bc: BulkContext, customer_ids: set[str]) -> dict[str, Buyer]:
    """Square customer id → the contact its sales bind to (merges followed one step), for those in the CRM."""
    ledgers = await bc.ledgers("customer", customer_ids)
    survivors = {r.merged_into for r in ledgers.values() if r is not None and r.status == "merged" and r.merged_into}
    survivor_rows = await bc.ledgers("customer", survivors) if survivors else {}
    buyers: dict[str, Buyer] = {}
    for customer_id, own_row in ledgers.items():
        stats_id, row = customer_id, own_row
        if own_row is not None and own_row.status == "merged" and own_row.merged_into:
            stats_id, row = own_row.merged_into, survivor_rows.get(own_row.merged_into)
        if row is not None and row.status == "active" and row.dataverse_id:
            buyers[customer_id] = Buyer(f"/{CONTACTS}({row.dataverse_id})", stats_id)
    return buyers


async def _catalog(bc: BulkContext, orders: list[dict[str, Any]]) -> dict[str, cmap.CatalogEntry]:
    """Catalog entries for every line of the chunk: from the cache, the misses in one Square call."""
    wanted = {
        line["catalog_object_id"] for o in orders for line in o.get("line_items", []) if line.get("catalog_object_id")
    }
    entries: dict[str, cmap.CatalogEntry] = {}
    missing = []
    for object_id in sorted(wanted):
        document, _ = await bc.ctx.state.get_doc(CATALOG_DOC, object_id)
        if document:
            entries[object_id] = cmap.CatalogEntry(**document)
        else:
            missing.append(object_id)
    for start in range(0, len(missing), 1000):
        objects, related = await bc.ctx.square.batch_retrieve_catalog(missing[start : start + 1000])
        for object_id, entry in catalog_entries_from(objects, related).items():
            entries[object_id] = entry
            if not bc.dry_run:
                _, etag = await bc.ctx.state.get_doc(CATALOG_DOC, object_id)
                await bc.ctx.state.put_doc(CATALOG_DOC, object_id, entry.__dict__, etag)
    return entries


async def _owners(bc: BulkContext, location_ids: set[str | None]) -> dict[str | None, str | None]:
    return {location_id: await owner_for(bc.ctx, location_id) for location_id in location_ids}


async def backfill_orders(orders: list[dict[str, Any]], bc: BulkContext) -> Counts:
    counts = Counts(examined=len(orders))
    unique = list({str(o["id"]): o for o in orders}.values())
    ledgers = await bc.ledgers("order", (str(o["id"]) for o in unique))
    fresh = [(o, stamp) for o in unique if (stamp := gate("order", o, ledgers[str(o["id"])], counts, bc)) is not None]
    await bc.requeue_busy()
    orders_only = [o for o, _ in fresh]
    buyers = await _buyers(bc, {str(o["customer_id"]) for o in orders_only if o.get("customer_id")})
    owners = await _owners(bc, {o.get("location_id") for o in orders_only})
    catalog = await _catalog(bc, orders_only)
    records = []
    for order, stamp in fresh:
        buyer = buyers.get(str(order.get("customer_id") or ""))
        if order.get("customer_id") and buyer is None:
            counts.unmatched += 1
        operations = order_operations(
            bc.ctx, order, None, buyer=buyer, owner=owners.get(order.get("location_id")), catalog=catalog
        )
        record = Record("order", bc.command("order", order, "order"), stamp, ledgers[str(order["id"])])
        record.rows = [row_of(op, record.square_id) for op in operations]
        records.append(record)
    t = tables(bc.ctx)
    await write_records(records, bc, counts, [t.set("transaction"), t.set("transactionline")])
    return counts


def _known(row: LedgerRow | None) -> bool:
    return row is not None and (row.version is not None or row.updated_at is not None)


async def backfill_payments(payments: list[dict[str, Any]], bc: BulkContext) -> Counts:
    counts = Counts(examined=len(payments))
    t = tables(bc.ctx)
    unique = list({str(p["id"]): p for p in payments}.values())
    ledgers = await bc.ledgers("payment", (str(p["id"]) for p in unique))
    fresh = [(p, stamp) for p in unique if (stamp := gate("payment", p, ledgers[str(p["id"])], counts, bc)) is not None]
    await bc.requeue_busy()
    order_rows = await bc.ledgers("order", {str(p["order_id"]) for p, _ in fresh if p.get("order_id")})
    buyers = await _buyers(bc, {str(p["customer_id"]) for p, _ in fresh if p.get("customer_id")})
    owners = await _owners(bc, {p.get("location_id") for p, _ in fresh})
    records = []
    for payment, stamp in fresh:
        order_id = payment.get("order_id")
        sale_known = bool(order_id) and _known(order_rows.get(str(order_id)))
        buyer = buyers.get(str(payment.get("customer_id") or ""))
        if (order_id and not sale_known) or (payment.get("customer_id") and buyer is None):
            counts.unmatched += 1
        operation = _payment_operation(bc.ctx, payment, buyer, owners.get(payment.get("location_id")))
        body = dict(operation.body or {})
        if not sale_known:
            body.pop(f"{t.nav('TransactionId')}@odata.bind", None)
        record = Record("payment", bc.command("payment", payment, "payment"), stamp, ledgers[str(payment["id"])])
        record.rows = [row_of(BatchOperation("PATCH", operation.path, body), record.square_id)]
        if sale_known:
            sale = BatchOperation(
                "PATCH",
                t.key("Transaction", "SquareOrderId", str(order_id)),
                cmap.sale_fields(t, str(order_id), payment),
            )
            record.rows.append(row_of(sale, record.square_id))
        records.append(record)
    await write_records(records, bc, counts, [t.set("transaction"), t.set("payment")])
    return counts


async def backfill_refunds(refunds: list[dict[str, Any]], bc: BulkContext) -> Counts:
    counts = Counts(examined=len(refunds))
    t = tables(bc.ctx)
    unique = list({str(r["id"]): r for r in refunds}.values())
    ledgers = await bc.ledgers("refund", (str(r["id"]) for r in unique))
    fresh = [(r, stamp) for r in unique if (stamp := gate("refund", r, ledgers[str(r["id"])], counts, bc)) is not None]
    await bc.requeue_busy()
    order_ids = sorted({str(r["order_id"]) for r, _ in fresh if r.get("order_id")})
    order_rows = await bc.ledgers("order", order_ids)
    orders = await bc.ctx.square.batch_retrieve_orders(order_ids) if order_ids else {}
    buyers = await _buyers(bc, {str(o["customer_id"]) for o in orders.values() if o.get("customer_id")})
    owners = await _owners(bc, {r.get("location_id") for r, _ in fresh})
    records = []
    for refund, stamp in fresh:
        order_id = str(refund.get("order_id") or "")
        body = cmap.refund_payload(t, refund)
        buyer = buyers.get(str(orders.get(order_id, {}).get("customer_id") or ""))
        if order_id and _known(order_rows.get(order_id)):
            body[f"{t.nav('TransactionId')}@odata.bind"] = "/" + t.key("Transaction", "SquareOrderId", order_id)
        else:
            counts.unmatched += 1
        if buyer is not None:
            body[f"{t.nav('ContactId')}@odata.bind"] = buyer.bind
        owner = owners.get(refund.get("location_id"))
        if owner:
            body["ownerid@odata.bind"] = owner
        record = Record("refund", bc.command("refund", refund, "refund"), stamp, ledgers[str(refund["id"])])
        record.rows = [
            row_of(
                BatchOperation("PATCH", t.key("Refund", "SquareRefundId", str(refund["id"])), body), record.square_id
            )
        ]
        records.append(record)
    await write_records(records, bc, counts, [t.set("refund")])
    return counts
