"""signals → leads/opportunities/tasks: after a sale or refund is counted in the buyer's aggregates, the
configured rules are evaluated and their upserts join the sale's own $batch (no extra Dataverse request).
Each outcome (rule, matched or not, why) goes to the record's timeline and to metrics."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from shared.config.columns import load_catalog
from shared.core.money import to_decimal
from shared.core.normalize import NormalizationError, normalize_email
from shared.flows.commerce_mapping import CatalogEntry
from shared.flows.commerce_support import STATS_DOC, Buyer, guest_key_of
from shared.flows.context import FlowContext
from shared.flows.purchase_stats import PurchaseStats, add_payment
from shared.monitoring import tracing
from shared.rules.engine import RuleOutcome, evaluate
from shared.rules.facts import Facts, aggregate_facts, moment

if TYPE_CHECKING:
    from shared.flows.sales import _Plan


def active_rules(ctx: FlowContext, event: str) -> bool:
    config = ctx.configuration
    return config.flow_enabled("rules") and any(r.on == event for r in config.rules)


def record_outcomes(ctx: FlowContext, outcomes: list[RuleOutcome]) -> None:
    for outcome in outcomes:
        tracing.step("rule", **outcome.trace_detail())
        ctx.metrics.increment("rule_outcomes", rule=outcome.rule_id, outcome=outcome.status)


def apply_outcomes(ctx: FlowContext, plan: _Plan, stats: PurchaseStats, facts: Facts) -> list[RuleOutcome]:
    config = ctx.configuration
    outcomes = evaluate(
        config.rules,
        facts,
        config=config,
        catalog=load_catalog(ctx.columns.prefix),
        prefix=ctx.columns.prefix,
        fired=stats.fired,
    )
    record_outcomes(ctx, outcomes)
    for outcome in outcomes:
        if outcome.operation is not None and outcome.key is not None:
            plan.operations.append(outcome.operation)
            stats.remember_fired(outcome.key)
    return outcomes


def sale_facts(
    ctx: FlowContext,
    stats: PurchaseStats,
    *,
    subject: tuple[str, str | None],
    payment: dict[str, Any],
    order: dict[str, Any] | None,
    catalog: dict[str, CatalogEntry],
    owner: str | None,
) -> Facts:
    """What the rules see about this sale: the basket, the store, and the buyer's aggregates after it."""
    at = moment(payment.get("created_at"), ctx.clock.now())
    total = to_decimal((order or {}).get("total_money") or payment.get("total_money")) or (Decimal(0), None)
    entries = [
        catalog[line["catalog_object_id"]]
        for line in (order or {}).get("line_items", [])
        if line.get("catalog_object_id") in catalog
    ]
    return Facts(
        event="sale",
        at=at,
        subject_id=subject[0],
        contact_bind=subject[1],
        buyer_email=(payment.get("buyer_email_address") or "").strip() or None,
        guest=not ((order or {}).get("customer_id") or payment.get("customer_id")),
        location_id=payment.get("location_id"),
        owner_bind=owner,
        order_id=(order or {}).get("id") or payment.get("order_id"),
        payment_id=payment.get("id"),
        receipt_number=payment.get("receipt_number"),
        currency=total[1],
        order_total=total[0],
        categories=tuple(sorted({e.category_name for e in entries if e.category_name})),
        skus=tuple(sorted({e.sku for e in entries if e.sku})),
        **aggregate_facts(stats, at),
    )


async def _guest_stats(ctx: FlowContext, plan: _Plan, payment: dict[str, Any], categories: list[str]) -> str | None:
    """A guest with an email and no contact: aggregates kept under the guest key (no CRM write), so the
    rules see visits and a replay is recognised. The guest key, or None when there is nobody to follow."""
    try:
        email = normalize_email(payment.get("buyer_email_address") or "")
    except NormalizationError:
        return None
    key = guest_key_of(email)
    document, etag = await ctx.state.get_doc(STATS_DOC, key)
    stats = PurchaseStats.from_document(document)
    total = to_decimal(payment.get("total_money")) or (Decimal(0), "")
    at = str(payment.get("created_at", ""))
    if not add_payment(
        stats,
        payment["id"],
        total[0],
        currency=total[1],
        at=at,
        categories=categories,
        location_id=payment.get("location_id"),
    ):
        return None
    plan.stats = (key, stats, etag)
    return key


async def sale_followup(
    ctx: FlowContext,
    plan: _Plan,
    *,
    payment: dict[str, Any],
    order: dict[str, Any] | None,
    buyer: Buyer | None,
    owner: str | None,
    catalog: dict[str, CatalogEntry],
    categories: list[str],
) -> None:
    """Runs once per counted payment (a replay finds it counted and does nothing)."""
    if payment.get("status") != "COMPLETED" or not active_rules(ctx, "sale"):
        return
    if buyer is None and await _guest_stats(ctx, plan, payment, categories) is None:
        return
    if plan.stats is None:  # the buyer's payment was counted before: the rules ran then
        return
    stats_id, stats, _ = plan.stats
    subject = (stats_id, buyer.bind if buyer else None)
    facts = sale_facts(ctx, stats, subject=subject, payment=payment, order=order, catalog=catalog, owner=owner)
    apply_outcomes(ctx, plan, stats, facts)


def refund_followup(ctx: FlowContext, plan: _Plan, *, refund: dict[str, Any], buyer: Buyer, owner: str | None) -> None:
    """Refund rules, once per counted refund (only a refund whose buyer is a contact has aggregates)."""
    if plan.stats is None or not active_rules(ctx, "refund"):
        return
    stats_id, stats, _ = plan.stats
    at = moment(refund.get("created_at"), ctx.clock.now())
    amount = to_decimal(refund.get("amount_money")) or (Decimal(0), None)
    facts = Facts(
        event="refund",
        at=at,
        subject_id=stats_id,
        contact_bind=buyer.bind,
        location_id=refund.get("location_id"),
        owner_bind=owner,
        order_id=refund.get("order_id"),
        payment_id=refund.get("payment_id"),
        refund_id=refund.get("id"),
        currency=amount[1],
        refund_amount=amount[0],
        **aggregate_facts(stats, at),
    )
    apply_outcomes(ctx, plan, stats, facts)
