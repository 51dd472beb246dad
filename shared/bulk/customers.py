"""Customers in bulk: the customer flow's rules for a chunk at a time — version gate against the ledger,
the same mapping, matching of first-seen customers by a few batched queries, claim, one CreateMultiple
for the new and one UpsertMultiple for the known (per request size), commit per record."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from shared.bulk.context import BulkContext
from shared.bulk.counts import Counts
from shared.bulk.matching import match_chunk
from shared.bulk.writer import BulkRow, WriteResult, address
from shared.core.errors import ConcurrencyError, InvalidDataError, NeedsReviewError, TerminalError
from shared.core.models import SquareCustomer, SyncCommand
from shared.core.ports import BulkTarget, LedgerRow
from shared.flows import customer_mapping as cm
from shared.flows import two_way
from shared.flows.context import FlowContext
from shared.flows.customers import KIND, parse_customer
from shared.flows.matching import Candidates, MatchKeys, MatchKind, choose_match
from shared.pipeline.gate import Decision, busy_delay, decide
from shared.pipeline.ledger import Stamp, Transition, claim_many, commit, commit_many


@dataclass
class Item:
    """One customer on its way through the chunk."""

    raw: dict[str, Any]
    command: SyncCommand
    customer: SquareCustomer
    plan: cm.ContactPlan
    stamp: Stamp
    ledger: LedgerRow | None = None
    row: BulkRow | None = None
    claimed: LedgerRow | None = None
    error: TerminalError | None = None
    candidates: Candidates | None = field(default=None, repr=False)

    @property
    def linked_id(self) -> str | None:
        ledger = self.ledger
        return ledger.dataverse_id if ledger is not None and ledger.status == "active" else None


Pair = tuple[dict[str, Any], SyncCommand]  # a customer object and the event (real or synthetic) it came in


def newest_by_id(pairs: list[Pair], bc: BulkContext) -> list[Pair]:
    """One object per id, the highest version (then the latest updated_at) winning; the others in the
    chunk are stale (a newer version of the same customer is right beside them)."""
    newest: dict[str, Pair] = {}
    for pair in pairs:
        customer_id = str(pair[0].get("id"))
        earlier = newest.get(customer_id)
        if earlier is None or _rank(pair[0]) >= _rank(earlier[0]):
            if earlier is not None:
                bc.outcome(earlier[1], "stale")
            newest[customer_id] = pair
        else:
            bc.outcome(pair[1], "stale")
    return list(newest.values())


def _rank(raw: dict[str, Any]) -> tuple[int, str]:
    version = raw.get("version")
    return (version if isinstance(version, int) else -1, str(raw.get("updated_at") or ""))


async def backfill_customers(raws: list[dict[str, Any]], bc: BulkContext) -> Counts:
    """A chunk of Square history: each customer under a synthetic event of the backfill."""
    return await bulk_customers([(raw, bc.command(KIND, raw, "customer")) for raw in raws], bc)


async def bulk_customers(pairs: list[Pair], bc: BulkContext) -> Counts:
    """Customers with the events they came in (the worker's batch path passes the real ones)."""
    counts = Counts(examined=len(pairs))
    items = await _prepare(newest_by_id(pairs, bc), bc, counts)
    ledgers = await bc.ledgers(KIND, (item.customer.id for item in items))
    to_write: list[Item] = []
    for item in items:
        item.ledger = ledgers[item.customer.id]
        if await _already_there(item, bc, counts):
            continue
        to_write.append(item)
    counts.requests += await _match(to_write, bc)
    taken: set[str] = set()  # a contact two first-seen customers match goes to the first (as in the live path)
    for item in to_write:
        _target(item, bc, taken)
    for item in (i for i in to_write if i.error is not None):
        counts.review += 1
        if not bc.dry_run and item.error is not None:
            await bc.record_failure(item.command, item.error)
    ready = [i for i in to_write if i.row is not None]
    if bc.dry_run:
        counts.created += sum(1 for i in ready if i.row is not None and i.row.create)
        counts.updated += sum(1 for i in ready if i.row is not None and not i.row.create)
        return counts
    await _write(ready, bc, counts)
    return counts


async def _prepare(pairs: list[Pair], bc: BulkContext, counts: Counts) -> list[Item]:
    """Parse and map each customer with the live flow's functions; a bad one is a failure record."""
    items: list[Item] = []
    for raw, command in pairs:
        try:
            customer = parse_customer(raw)
            plan = cm.map_customer(
                customer,
                columns=bc.ctx.columns,
                phone_region=bc.ctx.phone_region,
                mapping=bc.ctx.configuration.contact_mapping,
            )
        except InvalidDataError as error:
            counts.invalid += 1
            if not bc.dry_run:
                await bc.record_failure(command, error)
            continue
        items.append(Item(raw, command, customer, plan, Stamp(customer.version, customer.updated_at)))
    return items


async def _already_there(item: Item, bc: BulkContext, counts: Counts) -> bool:
    """The gate: an equal or newer version in the ledger (or the same content) needs no write."""
    ledger = item.ledger
    now = bc.ctx.clock.now()
    decision = decide(ledger, version=item.stamp.version, updated_at=item.stamp.updated_at, is_delete=False, now=now)
    if decision is Decision.BUSY:  # another writer's claim is live: re-sync once its lease has run out
        counts.deferred += 1
        bc.outcome(item.command, "deferred")
        if not bc.dry_run:
            await bc.resync(KIND, item.customer.id, delay_seconds=busy_delay(ledger, now))
        return True
    if decision is not Decision.APPLY:
        counts.unchanged += 1
        bc.outcome(item.command, "stale" if decision is Decision.STALE else "duplicate")
        return True
    same = ledger is not None and item.linked_id and ledger.content_hash == item.plan.content_hash
    if not same or ledger is None or ledger.pending_version is not None:
        return False
    counts.unchanged += 1
    bc.outcome(item.command, "unchanged")
    if not bc.dry_run:  # the live path may have moved the row on meanwhile: nothing to write either way
        with contextlib.suppress(ConcurrencyError):
            await commit(
                bc.ctx.state, row=ledger, command=item.command, stamp=item.stamp, content_hash=item.plan.content_hash
            )
    return True


async def _match(items: list[Item], bc: BulkContext) -> int:
    """Candidates for every customer the ledger does not link yet, by a few queries for the chunk."""
    unlinked = [item for item in items if item.linked_id is None]
    key_column = bc.ctx.columns.square_id
    keys = [
        MatchKeys(key_column, i.customer.id, i.plan.email_key, i.plan.phone_e164, bc.ctx.phone_region) for i in unlinked
    ]
    found, requests = await match_chunk(bc.ctx.dataverse, keys)
    for item in unlinked:
        item.candidates = found[item.customer.id]
    return requests


def square_owned(ctx: FlowContext, payload: dict[str, Any]) -> dict[str, Any]:
    """With two-way sync on, a bulk write carries only the columns Square owns: a column the CRM owns (or
    shares) needs the CRM's current value to decide, which only the single path reads (docs/two-way.md)."""
    if not two_way.active(ctx):
        return dict(payload)
    owners = two_way.owners(ctx)
    return {column: value for column, value in payload.items() if owners.get(column, "square") == "square"}


def _target(item: Item, bc: BulkContext, taken: set[str]) -> None:
    """Where this customer's row goes: its linked contact, a contact keyed or matched, or a new one."""
    key_column = bc.ctx.columns.square_id
    payload = square_owned(bc.ctx, item.plan.payload)
    refs = (item.customer.id,)
    if item.linked_id is not None:
        item.row = BulkRow(refs, BulkTarget(payload, entity_id=item.linked_id))
        return
    candidates = item.candidates or Candidates((), (), ())
    if candidates.keyed:
        item.row = BulkRow(refs, BulkTarget(payload, entity_id=str(candidates.keyed[0]["contactid"])))
        return
    decision = choose_match(
        square_id=item.customer.id, key_column=key_column, by_email=candidates.by_email, by_phone=candidates.by_phone
    )
    if decision.kind is MatchKind.REVIEW:
        message = f"{len(decision.candidates)} CRM contacts match this customer by {decision.matched_on}"
        item.error = NeedsReviewError(message, decision.candidates)
    elif decision.kind is MatchKind.LINK and decision.contact_id is not None and decision.contact_id not in taken:
        taken.add(decision.contact_id)
        item.row = BulkRow(refs, BulkTarget({**payload, key_column: item.customer.id}, entity_id=decision.contact_id))
    else:
        item.row = BulkRow(refs, BulkTarget(payload, key={key_column: item.customer.id}), create=True)


async def _write(items: list[Item], bc: BulkContext, counts: Counts) -> None:
    at = bc.ctx.clock.now().isoformat()
    transitions = [Transition(i.ledger, KIND, i.customer.id, i.command, i.stamp, at=at) for i in items]
    for item, claimed in zip(items, await claim_many(bc.ctx.state, transitions), strict=True):
        item.claimed = claimed
        if claimed is None:  # another writer claimed it since it was read: sync it again from Square's copy
            counts.deferred += 1
            bc.outcome(item.command, "deferred")
            await bc.resync(KIND, item.customer.id)
    claimed_items = [item for item in items if item.claimed is not None]
    rows = [item.row for item in claimed_items if item.row is not None]
    result = await bc.writer.write(cm.CONTACTS, cm.CONTACT_ENTITY, rows)
    counts.requests += result.requests
    landed = []
    for item in claimed_items:
        error = result.failed.get(item.customer.id)
        if error is not None:
            counts.failed += 1
            await bc.record_failure(item.command, error)
        else:
            landed.append(item)
    await _commit(landed, result, bc, counts)


async def _commit(items: list[Item], result: WriteResult, bc: BulkContext, counts: Counts) -> None:
    """Commit what landed, with its contact id; a row claimed meanwhile by another writer is re-synced."""
    transitions = []
    for item in items:
        assert item.row is not None and item.claimed is not None
        item.claimed.dataverse_id = result.ids.get(address(item.row)) or item.claimed.dataverse_id
        transitions.append(
            Transition(item.claimed, KIND, item.customer.id, item.command, item.stamp, item.plan.content_hash)
        )
    for item, saved in zip(items, await commit_many(bc.ctx.state, transitions), strict=True):
        if saved is None:
            counts.deferred += 1
            bc.outcome(item.command, "deferred")
            await bc.resync(KIND, item.customer.id, repair=True)  # its write may have landed last
        else:
            bc.outcome(item.command, "written")
            counts.created += 1 if item.row is not None and item.row.create else 0
            counts.updated += 0 if item.row is not None and item.row.create else 1
