"""refunds → support context: the refund row linked to its transaction and contact, the transaction's
refunded amount and state, the buyer's lifetime value, and optionally a case above a threshold — one
$batch. A refund whose sale has not reached the CRM yet waits (retried later)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from shared.core.errors import TransientError
from shared.core.models import SyncCommand
from shared.core.money import to_decimal
from shared.core.ports import BatchOperation, LedgerRow
from shared.flows import commerce_mapping as cmap
from shared.flows.commerce_support import STATS_DOC, Buyer, owner_for, sale_buyer
from shared.flows.context import FlowContext, Outcome
from shared.flows.followup import refund_followup
from shared.flows.purchase_stats import PurchaseStats, add_refund, contact_fields
from shared.flows.sales import _apply, _gate, _order_or_retry, _Plan, source_object, tables
from shared.pipeline.ledger import Stamp

CASE_NAMESPACE = uuid.UUID("6f1c2a4e-6a0d-4a3f-9a8e-7b3d2c1e0f55")


async def _guest_payment(ctx: FlowContext, order: dict[str, Any], refund: dict[str, Any]) -> dict[str, Any] | None:
    """A guest sale's buyer is known only from its payment's email: fetched for refunds of guest sales."""
    if order.get("customer_id") or not refund.get("payment_id"):
        return None
    return await ctx.square.get_payment(str(refund["payment_id"]))


async def sync_refund(command: SyncCommand, ctx: FlowContext) -> Outcome:
    refund = await source_object(command, "refund", ctx.square.get_refund)
    order_id = refund.get("order_id")
    order_ledger = await ctx.state.get_ledger("order", order_id) if order_id else None
    if order_id and (order_ledger is None or (order_ledger.version is None and order_ledger.updated_at is None)):
        raise TransientError(f"the sale {order_id} of this refund has not reached the CRM yet")
    stamp = Stamp(None, refund.get("updated_at"))
    ledger, is_new = await _gate(ctx, "refund", refund["id"], stamp, repair=command.repair)
    if not is_new:
        return Outcome.STALE
    t = tables(ctx)
    plan = _Plan()
    order = await _order_or_retry(ctx, order_id) if order_id else {}
    buyer = await sale_buyer(ctx, order, await _guest_payment(ctx, order, refund))
    owner = await owner_for(ctx, refund.get("location_id"))
    body = cmap.refund_payload(t, refund, ctx.configuration)
    if order_id:
        body[f"{t.nav('TransactionId')}@odata.bind"] = "/" + t.key("Transaction", "SquareOrderId", order_id)
    if buyer is not None:
        body[f"{t.nav('ContactId')}@odata.bind"] = buyer.bind
    if owner:
        body["ownerid@odata.bind"] = owner
    plan.operations.append(BatchOperation("PATCH", t.key("Refund", "SquareRefundId", refund["id"]), body))
    if order_id:
        totals = {t.col("RefundedAmount"): float(cmap.refunded_total(order)), t.col("State"): cmap.order_state(order)}
        plan.operations.append(
            BatchOperation("PATCH", t.key("Transaction", "SquareOrderId", order_id), totals, {"If-Match": "*"})
        )
    value = to_decimal(refund.get("amount_money")) or (Decimal(0), "")
    if buyer is not None and refund.get("status") == "COMPLETED":
        document, etag = await ctx.state.get_doc(STATS_DOC, buyer.stats_id)
        stats = PurchaseStats.from_document(document)
        if add_refund(stats, refund["id"], value[0], currency=value[1]):
            plan.operations.append(
                BatchOperation("PATCH", buyer.bind.lstrip("/"), contact_fields(stats, t.col), {"If-Match": "*"})
            )
            plan.stats = (buyer.stats_id, stats, etag)
            refund_followup(ctx, plan, refund=refund, buyer=buyer, owner=owner)
    threshold = ctx.sales.refund_case_threshold
    if threshold is not None and buyer is not None and value[0] >= Decimal(str(threshold)):
        plan.operations.append(_case(refund, buyer, owner, value))
    plan.claims.append((ledger or LedgerRow("refund", refund["id"]), stamp))
    return await _apply(ctx, command, plan)


def _case(refund: dict[str, Any], buyer: Buyer, owner: str | None, value: tuple[Decimal, str]) -> BatchOperation:
    """A case per large refund, keyed by a GUID derived from the refund id: writing it again is harmless."""
    case_id = uuid.uuid5(CASE_NAMESPACE, refund["id"])
    body: dict[str, Any] = {
        "title": f"Refund of {value[0]} {value[1]} (Square)",
        "description": f"Square refund {refund['id']} for payment {refund.get('payment_id')}: "
        f"{refund.get('reason') or 'no reason given'}",
        "customerid_contact@odata.bind": buyer.bind,
    }
    if owner:
        body["ownerid@odata.bind"] = owner
    return BatchOperation("PATCH", f"incidents({case_id})", body)
