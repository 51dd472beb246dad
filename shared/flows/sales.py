"""sales → transactions: payment events drive the sale (POS orders fire no order.created); the order is
fetched (batched with other pending sales), and transaction, lines, payment and the buyer's aggregates
are written in one $batch changeset — one Dataverse request per sale."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from shared.core.errors import TerminalError, TransientError
from shared.core.models import SyncCommand
from shared.core.money import to_decimal
from shared.core.ports import BatchOperation, LedgerRow
from shared.flows import commerce_mapping as cmap
from shared.flows.commerce_support import STATS_DOC, Buyer, catalog_entries, iso_now, owner_for, sale_buyer
from shared.flows.context import FlowContext, Outcome
from shared.flows.customer_mapping import CONTACTS
from shared.flows.followup import sale_followup
from shared.flows.purchase_stats import PurchaseStats, add_payment, contact_fields
from shared.monitoring import tracing
from shared.pipeline.gate import Decision, busy_error, decide
from shared.pipeline.ledger import Stamp, claim, commit


def tables(ctx: FlowContext) -> cmap.Tables:
    return cmap.Tables(ctx.columns.prefix)


def _embedded(command: SyncCommand, key: str) -> dict[str, Any] | None:
    found = ((command.event.get("data") or {}).get("object") or {}).get(key)
    return found if isinstance(found, dict) else None


async def source_object(
    command: SyncCommand, key: str, fetch: Callable[[str], Awaitable[dict[str, Any] | None]]
) -> dict[str, Any]:
    """The object the webhook carries, or (for a fresh-fetch retry, or a thin event) Square's copy."""
    found = None if command.fetch else _embedded(command, key)
    if found is None:
        found = await fetch(command.entity_id)
        if found is None:
            raise TerminalError(f"{key} {command.entity_id} does not exist in Square", reason_code="source_not_found")
    tracing.snapshot("square_object", found)
    return found


async def _order_or_retry(ctx: FlowContext, order_id: str) -> dict[str, Any]:
    order = await ctx.load_order(order_id)
    if order is None:  # Square's reads are eventually consistent: a new order can lag its payment
        raise TransientError(f"order {order_id} is not visible in Square yet")
    tracing.snapshot("square_order", order)
    return order


def order_operations(
    ctx: FlowContext,
    order: dict[str, Any],
    payment: dict[str, Any] | None,
    *,
    buyer: Buyer | None,
    owner: str | None,
    catalog: dict[str, cmap.CatalogEntry],
) -> list[BatchOperation]:
    t = tables(ctx)
    header = cmap.transaction_payload(t, order, payment, ctx.configuration)
    if buyer is not None:
        header[f"{t.nav('ContactId')}@odata.bind"] = buyer.bind
    if order.get("location_id"):
        header[f"{t.nav('LocationId')}@odata.bind"] = "/" + t.key("Location", "SquareLocationId", order["location_id"])
    if owner:
        header["ownerid@odata.bind"] = owner
    operations = [BatchOperation("PATCH", t.key("Transaction", "SquareOrderId", order["id"]), header)]
    order_ref = "/" + t.key("Transaction", "SquareOrderId", order["id"])
    for line_key, line in cmap.line_payloads(t, order, catalog, ctx.configuration):
        line[f"{t.nav('TransactionId')}@odata.bind"] = order_ref
        operations.append(BatchOperation("PATCH", t.key("TransactionLine", "SquareLineKey", line_key), line))
    return operations


async def location_placeholder(ctx: FlowContext, location_id: str | None) -> list[BatchOperation]:
    """An empty upsert creates the store's row if it is not there yet (repaired by the location flow)."""
    if not location_id or await ctx.state.get_ledger("location", location_id) is not None:
        return []
    return [BatchOperation("PATCH", tables(ctx).key("Location", "SquareLocationId", location_id), {})]


def _categories(order: dict[str, Any], catalog: dict[str, cmap.CatalogEntry]) -> list[str]:
    names = {
        catalog[line["catalog_object_id"]].category_name
        for line in order.get("line_items", [])
        if line.get("catalog_object_id") in catalog
    }
    return sorted(name for name in names if name)


class _Plan:
    """The rows one sale writes and the ledger rows that gate them."""

    def __init__(self) -> None:
        self.operations: list[BatchOperation] = []
        self.claims: list[tuple[LedgerRow, Stamp]] = []
        self.stats: tuple[str, PurchaseStats, str | None] | None = None


async def _gate(
    ctx: FlowContext, kind: str, object_id: str, stamp: Stamp, *, repair: bool = False
) -> tuple[LedgerRow | None, bool]:
    """The ledger row and whether this version is to be written (`repair`: also at the ledger's version)."""
    ledger = await ctx.state.get_ledger(kind, object_id)
    now = ctx.clock.now()
    decision = decide(
        ledger, version=stamp.version, updated_at=stamp.updated_at, is_delete=False, now=now, repair=repair
    )
    tracing.step("gated", kind=kind, decision=decision.value, updated_at=stamp.updated_at, version=stamp.version)
    if decision is Decision.BUSY:
        raise busy_error(kind, object_id, ledger, now)
    return ledger, decision is Decision.APPLY


async def _apply(ctx: FlowContext, command: SyncCommand, plan: _Plan) -> Outcome:
    if not plan.claims:  # nothing newer than the ledger (a store placeholder alone is not worth a request)
        return Outcome.STALE
    claimed = []
    for ledger, stamp in plan.claims:
        row = await claim(
            ctx.state,
            ledger=ledger,
            kind=ledger.kind,
            square_id=ledger.square_id,
            command=command,
            stamp=stamp,
            at=ctx.clock.now().isoformat(),
        )
        claimed.append((row, stamp))
    tracing.snapshot(
        "mapped_payload", [{"method": op.method, "path": op.path, "body": op.body} for op in plan.operations]
    )
    results = await ctx.dataverse.batch(plan.operations)
    tracing.step("written", requests=1, rows=len(results))
    if plan.stats is not None:
        stats_id, stats, etag = plan.stats
        stats.due_at = iso_now(ctx)  # the segments timer looks at whoever's aggregates changed
        await ctx.state.put_doc(STATS_DOC, stats_id, stats.to_document(), etag)
    for row, stamp in claimed:
        await commit(ctx.state, row=row, command=command, stamp=stamp, content_hash=None)
    ctx.metrics.increment("records_written", float(len(results)), flow="sales")
    return Outcome.WRITTEN


async def _buyer_aggregates(
    ctx: FlowContext, buyer: Buyer, payment: dict[str, Any], categories: list[str], plan: _Plan
) -> None:
    if payment.get("status") != "COMPLETED":
        return
    document, etag = await ctx.state.get_doc(STATS_DOC, buyer.stats_id)
    stats = PurchaseStats.from_document(document)
    total = to_decimal(payment.get("total_money")) or (Decimal(0), "")
    at = str(payment.get("created_at", ""))
    location = payment.get("location_id")
    if not add_payment(
        stats, payment["id"], total[0], currency=total[1], at=at, categories=categories, location_id=location
    ):
        return
    stats.contact_id = buyer.bind.removeprefix(f"/{CONTACTS}(").rstrip(")")
    contact = buyer.bind.lstrip("/")
    plan.operations.append(BatchOperation("PATCH", contact, contact_fields(stats, tables(ctx).col), {"If-Match": "*"}))
    plan.stats = (buyer.stats_id, stats, etag)


async def sync_payment(command: SyncCommand, ctx: FlowContext) -> Outcome:
    payment = await source_object(command, "payment", ctx.square.get_payment)
    plan = _Plan()
    payment_stamp = Stamp(None, payment.get("updated_at"))
    payment_ledger, payment_new = await _gate(ctx, "payment", payment["id"], payment_stamp, repair=command.repair)
    order = await _order_or_retry(ctx, payment["order_id"]) if payment.get("order_id") else None
    buyer = await sale_buyer(ctx, order, payment)
    owner = await owner_for(ctx, payment.get("location_id"))
    plan.operations += await location_placeholder(ctx, payment.get("location_id"))
    catalog = await catalog_entries(ctx, order) if order else {}
    if order is not None:
        stamp = Stamp(order.get("version"), order.get("updated_at"))
        order_ledger, order_new = await _gate(ctx, "order", order["id"], stamp, repair=command.repair)
        if order_new:
            plan.operations += order_operations(ctx, order, payment, buyer=buyer, owner=owner, catalog=catalog)
            plan.claims.append((order_ledger or LedgerRow("order", order["id"]), stamp))
        elif payment_new:  # a newer order version is already written; add what only the payment knows
            t = tables(ctx)
            fields = cmap.sale_fields(t, order["id"], payment, ctx.configuration)
            if buyer is not None:
                fields[f"{t.nav('ContactId')}@odata.bind"] = buyer.bind
            plan.operations.append(BatchOperation("PATCH", t.key("Transaction", "SquareOrderId", order["id"]), fields))
    if payment_new:
        plan.operations.append(_payment_operation(ctx, payment, buyer, owner))
        plan.claims.append((payment_ledger or LedgerRow("payment", payment["id"]), payment_stamp))
        categories = _categories(order or {}, catalog)
        if buyer is not None:
            await _buyer_aggregates(ctx, buyer, payment, categories, plan)
        await sale_followup(
            ctx, plan, payment=payment, order=order, buyer=buyer, owner=owner, catalog=catalog, categories=categories
        )
    return await _apply(ctx, command, plan)


def _payment_operation(
    ctx: FlowContext, payment: dict[str, Any], buyer: Buyer | None, owner: str | None
) -> BatchOperation:
    t = tables(ctx)
    body = cmap.payment_payload(t, payment, ctx.configuration)
    if payment.get("order_id"):
        body[f"{t.nav('TransactionId')}@odata.bind"] = "/" + t.key("Transaction", "SquareOrderId", payment["order_id"])
    if buyer is not None:
        body[f"{t.nav('ContactId')}@odata.bind"] = buyer.bind
    if payment.get("location_id"):
        body[f"{t.nav('LocationId')}@odata.bind"] = "/" + t.key("Location", "SquareLocationId", payment["location_id"])
    if owner:
        body["ownerid@odata.bind"] = owner
    return BatchOperation("PATCH", t.key("Payment", "SquarePaymentId", payment["id"]), body)


async def sync_order(command: SyncCommand, ctx: FlowContext) -> Outcome:
    """order.updated (thin): fetch, gate on version (or updated_at for orders made at the till), rewrite."""
    order = await _order_or_retry(ctx, command.entity_id)
    tracing.snapshot("square_object", order)
    plan = _Plan()
    stamp = Stamp(order.get("version"), order.get("updated_at"))
    ledger, is_new = await _gate(ctx, "order", order["id"], stamp, repair=command.repair)
    if not is_new:
        return Outcome.STALE
    buyer = await sale_buyer(ctx, order, None)
    owner = await owner_for(ctx, order.get("location_id"))
    plan.operations += await location_placeholder(ctx, order.get("location_id"))
    plan.operations += order_operations(
        ctx, order, None, buyer=buyer, owner=owner, catalog=await catalog_entries(ctx, order)
    )
    plan.claims.append((ledger or LedgerRow("order", order["id"]), stamp))
    return await _apply(ctx, command, plan)
