"""customers → contacts: version gate, match, one upsert by alternate key, ledger; deletes and merges."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from shared.core.errors import FieldProblem, InvalidDataError, NeedsReviewError
from shared.core.models import MergeContext, SquareCustomer, SyncCommand
from shared.flows import customer_mapping as cm
from shared.flows import two_way
from shared.flows.context import FlowContext, Outcome
from shared.flows.matching import (
    MATCH_COLUMNS,
    MatchKeys,
    MatchKind,
    choose_match,
    match_filter,
    split_candidates,
)
from shared.flows.merge import merge_customers
from shared.monitoring import tracing
from shared.pipeline.gate import Decision, busy_error, decide
from shared.pipeline.ledger import Stamp, claim, commit

log = logging.getLogger("tillbridge.customers")
KIND = "customer"
FLOW = "customers"


def _customer_from_event(command: SyncCommand) -> dict[str, Any] | None:
    data_object = (command.event.get("data") or {}).get("object") or {}
    customer = data_object.get("customer")
    return customer if isinstance(customer, dict) else None


def _merge_context(command: SyncCommand) -> MergeContext | None:
    data_object = (command.event.get("data") or {}).get("object") or {}
    merge = (data_object.get("event_context") or {}).get("merge")
    if not isinstance(merge, dict):
        return None
    context = MergeContext.model_validate(merge)
    return context if context.to_customer_id and context.from_customer_ids else None


def parse_customer(raw: dict[str, Any]) -> SquareCustomer:
    try:
        return SquareCustomer.model_validate(raw)
    except ValidationError as error:
        problems = [
            FieldProblem(".".join(str(p) for p in issue["loc"]) or "customer", issue["msg"]) for issue in error.errors()
        ]
        raise InvalidDataError(problems) from error


async def _load_customer(command: SyncCommand, ctx: FlowContext) -> dict[str, Any] | None:
    """The full object from the event, or fetched when the message is thin (None: gone from Square)."""
    raw = None if command.fetch else _customer_from_event(command)
    source = "event"
    if raw is None:
        raw = await ctx.square.retrieve_customer(command.entity_id)
        source = "square"
    tracing.step("fetched", source=source, found=raw is not None, version=(raw or {}).get("version"))
    tracing.snapshot("square_object", raw)
    return raw


async def sync_customer(command: SyncCommand, ctx: FlowContext) -> Outcome:
    """Apply one customer event to the CRM; raises Transient or Terminal errors for the caller to route."""
    merge = _merge_context(command)
    if merge is not None:
        await merge_customers(merge, ctx)
        if command.event_type == "customer.deleted":
            return Outcome.MERGED
    raw = await _load_customer(command, ctx)
    if command.event_type == "customer.deleted" or raw is None:
        return await _deactivate(command, raw, ctx)
    customer = parse_customer(raw)
    if customer.id != command.entity_id and merge is None:
        # RetrieveCustomer on a merged-away id returns the survivor; its own events will sync it.
        return Outcome.STALE
    return await _upsert(command, customer, ctx)


async def _upsert(command: SyncCommand, customer: SquareCustomer, ctx: FlowContext) -> Outcome:
    ledger = await ctx.state.get_ledger(KIND, customer.id)
    stamp = Stamp(customer.version, customer.updated_at)
    now = ctx.clock.now()
    decision = decide(
        ledger, version=stamp.version, updated_at=stamp.updated_at, is_delete=False, now=now, repair=command.repair
    )
    tracing.step(
        "gated", decision=decision.value, version=stamp.version, ledger_version=ledger.version if ledger else None
    )
    if decision is Decision.BUSY:
        raise busy_error(KIND, customer.id, ledger, now)
    if decision is not Decision.APPLY:
        return Outcome.STALE if decision is Decision.STALE else Outcome.DUPLICATE
    plan = cm.map_customer(
        customer, columns=ctx.columns, phone_region=ctx.phone_region, mapping=ctx.configuration.contact_mapping
    )
    tracing.step("mapped", columns=len(plan.payload))
    tracing.snapshot("mapped_payload", plan.payload)
    tracing.step("validated")
    linked = ledger is not None and ledger.dataverse_id and ledger.status == "active"
    if two_way.active(ctx) and await two_way.commit_own_echo(ctx, command, customer, plan, ledger, stamp=stamp):
        return Outcome.SUPPRESSED
    unchanged = ledger is not None and ledger.content_hash == plan.content_hash and ledger.pending_version is None
    if linked and ledger is not None and unchanged and not command.repair:
        await commit(ctx.state, row=ledger, command=command, stamp=stamp, content_hash=plan.content_hash)
        return Outcome.UNCHANGED
    contact_id = None if linked else await _match(customer, plan, ctx)
    tracing.step(
        "matched", rule="ledger" if linked else ("link" if contact_id else "key_or_create"), contact_id=contact_id
    )
    owned = None
    if two_way.active(ctx):  # some column is not Square's: write only what the owners give Square
        owned = await two_way.decide_write(ctx, customer, plan, ledger, linked=bool(linked), contact_id=contact_id)
    row = await claim(
        ctx.state,
        ledger=ledger,
        kind=KIND,
        square_id=customer.id,
        command=command,
        stamp=stamp,
        at=ctx.clock.now().isoformat(),  # the lease runs from the claim, not from the gate
    )
    key = {ctx.columns.square_id: customer.id}
    payload = plan.payload if owned is None else owned.payload
    outcome = Outcome.WRITTEN
    if owned is not None and not payload and contact_id is None and owned.contact_exists and owned.contact_id:
        contact_id, outcome = owned.contact_id, Outcome.UNCHANGED  # keyed, and holding all Square may write
    elif contact_id is None:
        result = await ctx.dataverse.upsert_by_key(cm.CONTACTS, key, payload)
        contact_id = result.entity_id
    else:
        await ctx.dataverse.update(cm.CONTACTS, contact_id, {**payload, **key})
    row.dataverse_id = contact_id
    if owned is not None:
        two_way.record(row, owned, customer.version)
    await commit(ctx.state, row=row, command=command, stamp=stamp, content_hash=plan.content_hash)
    if owned is not None:
        await two_way.send_back(ctx, owned, customer)
    if outcome is Outcome.WRITTEN:
        ctx.metrics.increment("records_written", flow=FLOW)
    return outcome


async def _match(customer: SquareCustomer, plan: cm.ContactPlan, ctx: FlowContext) -> str | None:
    """Contact id to link (None: the upsert by key creates or updates). Key, then email, then phone,
    all answered by a single query."""
    key_column = ctx.columns.square_id
    keys = MatchKeys(key_column, customer.id, plan.email_key, plan.phone_e164, ctx.phone_region)
    rows = await ctx.dataverse.query(cm.CONTACTS, match_filter(keys), [*MATCH_COLUMNS, key_column])
    candidates = split_candidates(rows, keys)
    if candidates.keyed:
        return None  # already keyed: the upsert by key updates it
    decision = choose_match(
        square_id=customer.id, key_column=key_column, by_email=candidates.by_email, by_phone=candidates.by_phone
    )
    if decision.kind is MatchKind.REVIEW:
        raise NeedsReviewError(
            f"{len(decision.candidates)} CRM contacts match this customer by {decision.matched_on}",
            decision.candidates,
        )
    return decision.contact_id if decision.kind is MatchKind.LINK else None


async def _deactivate(command: SyncCommand, raw: dict[str, Any] | None, ctx: FlowContext) -> Outcome:
    """customer.deleted: deactivate (never delete) the contact and keep the link in the ledger."""
    customer = parse_customer(raw) if raw is not None else None
    stamp = Stamp(customer.version, customer.updated_at) if customer else Stamp(None, None)
    ledger = await ctx.state.get_ledger(KIND, command.entity_id)
    now = ctx.clock.now()
    decision = decide(ledger, version=stamp.version, updated_at=stamp.updated_at, is_delete=True, now=now)
    if decision is Decision.BUSY:
        raise busy_error(KIND, command.entity_id, ledger, now)
    if decision is not Decision.APPLY:
        return Outcome.STALE if decision is Decision.STALE else Outcome.DUPLICATE
    row = await claim(
        ctx.state,
        ledger=ledger,
        kind=KIND,
        square_id=command.entity_id,
        command=command,
        stamp=stamp,
        at=ctx.clock.now().isoformat(),
    )
    if row.dataverse_id:
        await ctx.dataverse.update(cm.CONTACTS, row.dataverse_id, cm.deactivation_payload())
    else:
        key = {ctx.columns.square_id: command.entity_id}
        row.dataverse_id = await ctx.dataverse.update_by_key(cm.CONTACTS, key, cm.deactivation_payload())
    row.status = "deleted"
    await commit(ctx.state, row=row, command=command, stamp=stamp, content_hash=row.content_hash)
    return Outcome.DEACTIVATED
