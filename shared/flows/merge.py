"""Square customer merges → Dataverse Merge, leaving one contact keyed by the surviving Square id.

Square fires customer.created for the survivor and customer.deleted for each merged id, all carrying
`event_context.merge`, in any order. Whichever arrives first does the merge; the others find it done.
Each step is safe to repeat, so a crash part-way is finished by the retry.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from shared.core.errors import TransientError
from shared.core.models import MergeContext
from shared.core.ports import LedgerRow
from shared.core.times import parse_time
from shared.flows import customer_mapping as cm
from shared.flows.context import FlowContext
from shared.pipeline.gate import busy_error, live_claim
from shared.pipeline.ledger import release

KIND = "customer"
MERGE_KIND = "merge"
MERGE_LEASE = timedelta(minutes=2)


@dataclass(frozen=True)
class _Found:
    square_id: str
    contact_id: str
    active: bool
    merged: bool
    keyed: bool


async def _locate(square_id: str, ledger: LedgerRow | None, ctx: FlowContext) -> _Found | None:
    """The contact for a Square id: via the ledger link, else via the alternate key."""
    select = ["contactid", "statecode", "merged", ctx.columns.square_id]
    contact: dict[str, Any] | None = None
    if ledger is not None and ledger.dataverse_id:
        contact = await ctx.dataverse.get(cm.CONTACTS, ledger.dataverse_id, select)
    if contact is None:
        contact = await ctx.dataverse.get_by_key(cm.CONTACTS, {ctx.columns.square_id: square_id}, select)
    if contact is None:
        return None
    return _Found(
        square_id=square_id,
        contact_id=str(contact["contactid"]),
        active=contact.get("statecode", 0) == 0,
        merged=bool(contact.get("merged")),
        keyed=contact.get(ctx.columns.square_id) == square_id,
    )


async def _claim(survivor_id: str, ctx: FlowContext) -> LedgerRow | None:
    """One merge at a time per survivor (the events of one merge arrive on different sessions).

    None: already done. Raises TransientError while another worker holds a fresh claim; a claim older
    than MERGE_LEASE (its worker died) is taken over, which is safe because every step is repeatable.
    """
    row = await ctx.state.get_ledger(MERGE_KIND, survivor_id)
    now = ctx.clock.now()
    if row is not None and row.status == "done":
        return None
    if row is not None and row.status == "running":
        claimed_at = parse_time(row.updated_at)
        if claimed_at is not None and now - claimed_at < MERGE_LEASE:
            raise TransientError(f"merge into {survivor_id} is in progress elsewhere")
    row = row if row is not None else LedgerRow(kind=MERGE_KIND, square_id=survivor_id)
    row.status, row.updated_at = "running", now.isoformat()
    return await ctx.state.save_ledger(row)  # ConcurrencyError (transient) when another worker raced us


async def merge_customers(merge: MergeContext, ctx: FlowContext) -> None:
    survivor_id = merge.to_customer_id
    rows = {sid: await ctx.state.get_ledger(KIND, sid) for sid in merge.from_customer_ids}
    if all(row and row.status == "merged" for row in rows.values()):
        return
    lease = await _claim(survivor_id, ctx)
    if lease is None:
        return
    try:
        await _merge(merge, ctx)
    except BaseException:
        await _release(lease, ctx)
        raise
    lease.status = "done"
    await ctx.state.save_ledger(lease)


async def _release(lease: LedgerRow, ctx: FlowContext) -> None:
    """Let the next attempt (ours or another event's) start at once instead of waiting out the lease."""
    lease.status = "released"
    with contextlib.suppress(Exception):  # if this fails too, the lease simply expires
        await ctx.state.save_ledger(lease)


async def _merge(merge: MergeContext, ctx: FlowContext) -> None:
    survivor_id = merge.to_customer_id
    rows = {sid: await ctx.state.get_ledger(KIND, sid) for sid in merge.from_customer_ids}
    pending = [sid for sid, row in rows.items() if not (row and row.status == "merged")]
    now = ctx.clock.now()
    for sid in pending:  # an update of a merged-away id being written right now: let it finish first
        row = rows[sid]
        if row is not None and live_claim(row, now):
            raise busy_error(KIND, sid, row, now)
    survivor = await _locate(survivor_id, await ctx.state.get_ledger(KIND, survivor_id), ctx)
    found = [f for sid in pending if (f := await _locate(sid, rows[sid], ctx)) is not None]
    live = [f for f in found if f.active and not f.merged]
    target = survivor if survivor is not None else (live[0] if live else None)
    key_column = ctx.columns.square_id
    for subordinate in found:
        if target is None or subordinate.contact_id == target.contact_id:
            continue
        if subordinate.active and not subordinate.merged:
            await ctx.dataverse.merge(cm.CONTACT_ENTITY, target.contact_id, subordinate.contact_id, {})
        if subordinate.keyed:  # nothing may stay keyed by a merged-away id
            await ctx.dataverse.update(cm.CONTACTS, subordinate.contact_id, {key_column: None})
    if target is not None and target is not survivor:
        await ctx.dataverse.update(cm.CONTACTS, target.contact_id, {key_column: survivor_id})
    for sid in pending:
        await _mark_merged(rows[sid], sid, survivor_id, target.contact_id if target else None, ctx)


async def _mark_merged(
    row: LedgerRow | None, square_id: str, survivor_id: str, contact_id: str | None, ctx: FlowContext
) -> None:
    row = row if row is not None else LedgerRow(kind=KIND, square_id=square_id)
    row.status = "merged"
    row.merged_into = survivor_id
    row.dataverse_id = contact_id or row.dataverse_id
    release(row)
    await ctx.state.save_ledger(row)
