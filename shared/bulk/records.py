"""The bulk path for objects written as rows of our own tables (sales, payments, refunds, locations):
each Square object becomes a record holding its rows; records are gated, claimed, written table by table
with the bulk writer, and committed (or recorded as failed) one by one."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from shared.bulk.context import BulkContext
from shared.bulk.counts import Counts
from shared.bulk.writer import BulkRow
from shared.core.models import SyncCommand
from shared.core.ports import BatchOperation, BulkTarget, LedgerRow
from shared.pipeline.gate import Decision, busy_delay, decide
from shared.pipeline.ledger import Stamp, Transition, claim_many, commit_many

_KEYED_PATH = re.compile(r"^(?P<set>\w+)\((?P<column>\w+)='(?P<value>.*)'\)$")


@dataclass
class Record:
    kind: str
    command: SyncCommand
    stamp: Stamp
    ledger: LedgerRow | None
    rows: list[tuple[str, BulkRow]] = field(default_factory=list)  # (entity set, row)
    claimed: LedgerRow | None = None

    @property
    def square_id(self) -> str:
        return self.command.entity_id


def row_of(operation: BatchOperation, ref: str) -> tuple[str, BulkRow]:
    """A keyed PATCH the live flow would put in its $batch, as a bulk row of the same table and key (so the
    live flow's payload builders stay the one definition of each row)."""
    match = _KEYED_PATH.match(operation.path)
    if match is None:
        raise ValueError(f"not a keyed row path: {operation.path}")
    value = unquote(match["value"]).replace("''", "'")
    target = BulkTarget(dict(operation.body or {}), key={match["column"]: value})
    return match["set"], BulkRow((ref,), target)


def entity_of(entity_set: str) -> str:
    """Logical name of one of our tables from its set name (`tb_transactions` → `tb_transaction`)."""
    return entity_set[:-1] if entity_set.endswith("s") else entity_set


def gate(kind: str, obj: dict[str, Any], ledger: LedgerRow | None, counts: Counts, bc: BulkContext) -> Stamp | None:
    """The object's stamp when it is newer than the ledger, else None (counted unchanged; or deferred while
    another writer's claim holds it: re-synced by `bc.requeue_busy()` once its lease has run out)."""
    stamp = Stamp(obj.get("version") if isinstance(obj.get("version"), int) else None, obj.get("updated_at"))
    now = bc.ctx.clock.now()
    decision = decide(ledger, version=stamp.version, updated_at=stamp.updated_at, is_delete=False, now=now)
    if decision is Decision.APPLY:
        return stamp
    if decision is Decision.BUSY:
        counts.deferred += 1
        bc.wait_for(kind, str(obj["id"]), busy_delay(ledger, now))
        return None
    counts.unchanged += 1
    return None


async def write_records(records: list[Record], bc: BulkContext, counts: Counts, table_order: list[str]) -> None:
    """Claim, write table by table (a row may bind to a row of an earlier table), commit or record."""
    if bc.dry_run:
        counts.created += sum(1 for r in records if r.ledger is None)
        counts.updated += sum(1 for r in records if r.ledger is not None)
        return
    at = bc.ctx.clock.now().isoformat()
    transitions = [Transition(r.ledger, r.kind, r.square_id, r.command, r.stamp, at=at) for r in records]
    for record, claimed in zip(records, await claim_many(bc.ctx.state, transitions), strict=True):
        record.claimed = claimed
        if claimed is None:  # another writer claimed it since it was read: sync it again from Square's copy
            counts.deferred += 1
            await bc.resync(record.kind, record.square_id)
    claimed_records = [record for record in records if record.claimed is not None]
    failed: dict[str, Any] = {}
    for entity_set in table_order:
        rows = [row for record in claimed_records for (table, row) in record.rows if table == entity_set]
        if rows:
            result = await bc.writer.write(entity_set, entity_of(entity_set), rows)
            counts.requests += result.requests
            for ref, error in result.failed.items():
                failed.setdefault(ref, error)
    landed = []
    for record in claimed_records:
        if record.square_id in failed:
            counts.failed += 1
            await bc.record_failure(record.command, failed[record.square_id])
        else:
            landed.append(record)
    await _commit(landed, bc, counts)


async def _commit(records: list[Record], bc: BulkContext, counts: Counts) -> None:
    transitions = []
    for record in records:
        assert record.claimed is not None
        transitions.append(Transition(record.claimed, record.kind, record.square_id, record.command, record.stamp))
    for record, saved in zip(records, await commit_many(bc.ctx.state, transitions), strict=True):
        if saved is None:  # another writer claimed it meanwhile: sync it again from Square's current copy
            counts.deferred += 1
            await bc.resync(record.kind, record.square_id, repair=True)
        elif record.ledger is None or (record.ledger.version is None and record.ledger.updated_at is None):
            counts.created += 1
        else:
            counts.updated += 1
