"""Two-way contact sync, the Square → CRM side: each column's owner applied to a customer's write, the
webhook of Tillbridge's own UpdateCustomer recognised, and what each side holds recorded in the ledger
(docs/two-way.md). Only used when some column is not Square's; one-way sync never reaches this module."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from shared.core.errors import NeedsReviewError
from shared.core.json_input import stored_object
from shared.core.models import SquareCustomer, SyncCommand
from shared.core.ports import LedgerRow
from shared.flows import customer_mapping as cm
from shared.flows.context import FlowContext
from shared.flows.ownership import (
    Conflict,
    Owner,
    Sides,
    SyncedField,
    decide_square_to_crm,
    fingerprints,
    is_two_way,
    needs_crm_values,
    owners_of,
    state_hash,
    synced_fields,
)
from shared.monitoring import tracing
from shared.pipeline.ledger import Stamp, commit
from shared.pipeline.messages import contact_command, outbound

FLOW = "customers"
ROW_STATE_COLUMNS = ("contactid", "modifiedon", "versionnumber", "_modifiedby_value", "statecode")


def contact_fields(ctx: FlowContext) -> tuple[SyncedField, ...]:
    """The contact columns the configuration file maps (with their way back to Square)."""
    return synced_fields(ctx.configuration.contact_mapping)


def owners(ctx: FlowContext) -> dict[str, Owner]:
    """Each contact column's owner from the configuration file (columns not named are Square's)."""
    return owners_of(ctx.configuration.contact_mapping)


def active(ctx: FlowContext) -> bool:
    """Whether any column is not Square's (else the customer flow runs exactly as one-way sync)."""
    return is_two_way(owners(ctx))


def load_fields(text: str | None) -> dict[str, str] | None:
    """A ledger fingerprint map (None when never recorded or unreadable: treated as unknown)."""
    loaded = stored_object(text)
    return {str(k): str(v) for k, v in loaded.items()} if loaded is not None else None


def dump_fields(fields: dict[str, str]) -> str:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"))


def square_fingerprints(ctx: FlowContext, payload: dict[str, Any]) -> dict[str, str]:
    """Fingerprints of a mapped Square customer (its values in the CRM's shape)."""
    return fingerprints(payload, contact_fields(ctx), ctx.phone_region)


def is_own_echo(ledger: LedgerRow | None, version: int | None, square_fields: dict[str, str]) -> bool:
    """The webhook of Tillbridge's own UpdateCustomer: the very version it is producing, carrying exactly the
    values it sent (another writer's change at that version would carry other values)."""
    return (
        ledger is not None
        and ledger.echo_version is not None
        and version == ledger.echo_version
        and ledger.echo_hash == state_hash(square_fields)
    )


async def commit_own_echo(
    ctx: FlowContext,
    command: SyncCommand,
    customer: SquareCustomer,
    plan: cm.ContactPlan,
    ledger: LedgerRow | None,
    *,
    stamp: Stamp,
) -> bool:
    """The webhook of Tillbridge's own UpdateCustomer, arriving before that write was committed: nothing to
    write to the CRM (it holds those values already); the ledger takes the version."""
    square_fields = square_fingerprints(ctx, plan.payload)
    if ledger is None or not is_own_echo(ledger, customer.version, square_fields):
        return False
    ledger.square_fields = dump_fields(square_fields)
    ledger.echo_version = ledger.echo_hash = None
    await commit(ctx.state, row=ledger, command=command, stamp=stamp, content_hash=plan.content_hash)
    tracing.step("suppressed", reason="own_update", version=customer.version)
    ctx.metrics.increment("crm_echo_suppressed", flow=FLOW)
    return True


def square_changed_at(ledger: LedgerRow | None, version: int | None, updated_at: str | None) -> str | None:
    """When Square's side of a customer last changed, for `both` conflicts: its `updated_at`, except for the
    version Tillbridge's own UpdateCustomer produced, whose time is that write's; then the time of the version
    the write was sent on."""
    if ledger is not None and ledger.pushed_version is not None and version == ledger.pushed_version:
        return ledger.pushed_base_at
    return updated_at


@dataclass(frozen=True)
class SquareWrite:
    """What a Square change writes to the CRM under the owners, and what each side then holds."""

    payload: dict[str, Any]
    contact_id: str | None  # the contact the write lands on when it is known
    contact_exists: bool
    square_fields: dict[str, str]
    crm_fields: dict[str, str] | None
    crm_modified_on: str | None
    push_back: tuple[str, ...]
    won_by_crm: dict[str, str]  # `both` columns the CRM won: the fingerprint of the CRM value that won


async def _current_contact(
    ctx: FlowContext, customer_id: str, ledger: LedgerRow | None, linked: bool, contact_id: str | None
) -> dict[str, Any] | None:
    select = [*(f.column for f in contact_fields(ctx)), *ROW_STATE_COLUMNS]
    if linked and ledger is not None and ledger.dataverse_id:
        return await ctx.dataverse.get(cm.CONTACTS, ledger.dataverse_id, select)
    if contact_id:
        return await ctx.dataverse.get(cm.CONTACTS, contact_id, select)
    return await ctx.dataverse.get_by_key(cm.CONTACTS, {ctx.columns.square_id: customer_id}, select)


def trace_conflict(ctx: FlowContext, conflict: Conflict, flow: str = FLOW) -> None:
    """Both values and the winner in the record's timeline, and the conflicts metric."""
    tracing.step(
        "conflict",
        column=conflict.column,
        square_value=conflict.square_value,
        crm_value=conflict.crm_value,
        square_at=conflict.square_at,
        crm_at=conflict.crm_at,
        winner=conflict.winner,
    )
    ctx.metrics.increment("crm_conflicts", flow=flow, winner=conflict.winner)


async def decide_write(
    ctx: FlowContext,
    customer: SquareCustomer,
    plan: cm.ContactPlan,
    ledger: LedgerRow | None,
    *,
    linked: bool,
    contact_id: str | None,
) -> SquareWrite:
    """Apply the owners to one customer's mapped payload (reading the contact first when an owner needs its
    current values, or when the customer is not linked yet)."""
    options, region, fields, column_owners = ctx.two_way, ctx.phone_region, contact_fields(ctx), owners(ctx)
    read = not linked or needs_crm_values(column_owners)
    crm_row = await _current_contact(ctx, customer.id, ledger, linked, contact_id) if read else None
    crm_now = (crm_row or {}) if read else None
    crm_before = load_fields(ledger.crm_fields) if ledger else None
    crm_at = (crm_row or {}).get("modifiedon") or (ledger.crm_modified_on if ledger else None)
    square_at = square_changed_at(ledger, customer.version, customer.updated_at)
    sides = Sides(load_fields(ledger.square_fields) if ledger else None, crm_before, square_at, crm_at)
    decision = decide_square_to_crm(
        plan.payload,
        owners=column_owners,
        fields=fields,
        sides=sides,
        crm_now=crm_now,
        first_sync=not linked,
        rule=options.conflicts,
        region=region,
    )
    for conflict in decision.conflicts:
        trace_conflict(ctx, conflict)
    if decision.needs_review:
        columns = ", ".join(c.column for c in decision.conflicts if c.winner == "review")
        raise NeedsReviewError(f"Square and the CRM both changed {columns} since the last sync", ())
    # What the CRM holds, as far as a sync has accounted for it: a CRM value still to be sent to Square keeps
    # its old fingerprint, so the CRM → Square flow sees it as changed until it has gone out.
    crm_fields = dict(crm_before or {})
    if crm_now is not None:
        seen = fingerprints(crm_now, fields, region)
        crm_fields.update({c: fp for c, fp in seen.items() if c not in decision.push_back})
    crm_fields.update(fingerprints(decision.payload, fields, region))
    tracing.step(
        "owned",
        written=len(decision.payload),
        kept=len(plan.payload) - len(decision.payload),
        sent_back=decision.push_back,
    )
    known_id = (ledger.dataverse_id if linked and ledger else None) or contact_id or (crm_row or {}).get("contactid")
    return SquareWrite(
        payload=decision.payload,
        contact_id=str(known_id) if known_id else None,
        contact_exists=linked or crm_row is not None,
        square_fields=square_fingerprints(ctx, plan.payload),
        crm_fields=crm_fields or None,
        crm_modified_on=str(crm_at) if crm_at else None,
        push_back=decision.push_back,
        won_by_crm={
            c: crm_fields[c] for c in decision.push_back if column_owners.get(c) is Owner.BOTH and c in crm_fields
        },
    )


def _won_by_crm(
    push_back: tuple[str, ...],
    column_owners: dict[str, Owner],
    crm_now: dict[str, Any] | None,
    fields: tuple[SyncedField, ...],
    region: str,
) -> dict[str, str]:
    if crm_now is None:
        return {}
    read = fingerprints(crm_now, fields, region)
    return {c: read[c] for c in push_back if column_owners.get(c) is Owner.BOTH and c in read}


def record(row: LedgerRow, write: SquareWrite, version: int | None) -> None:
    """What each side holds after the write (stored with the ledger commit)."""
    row.square_fields = dump_fields(write.square_fields)
    if write.crm_fields is not None:
        row.crm_fields = dump_fields(write.crm_fields)
    row.crm_modified_on = write.crm_modified_on or row.crm_modified_on
    if row.echo_version is not None and version is not None and version >= row.echo_version:
        row.echo_version, row.echo_hash = None, None  # that write has been seen (or overtaken)


async def send_back(ctx: FlowContext, write: SquareWrite, customer: SquareCustomer) -> None:
    """Square diverged from the CRM on columns the CRM owns: queue the CRM's values for Square."""
    queue = ctx.two_way.push_queue
    if not write.push_back or queue is None or not write.contact_id:
        return
    command = contact_command(
        "contact.push",
        write.contact_id,
        ctx.clock.now().isoformat(),
        suffix=f"{customer.id}-{customer.version}",
        forced=write.won_by_crm,
    )
    await queue.send(outbound(command))
    tracing.step("sent_back", columns=list(write.push_back), event_id=command.event_id)
    ctx.metrics.increment("crm_push_back", flow=FLOW)
