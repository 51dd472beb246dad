"""Ledger transitions: claim a version before writing to the CRM, commit it after (both ETag-guarded).

A claim makes concurrent attempts on one object safe: an older version sees the newer claim and stops,
and a crashed attempt leaves a claim that its own retry may re-apply (the upsert is idempotent).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.core.models import SyncCommand
from shared.core.ports import LedgerRow, StateStore
from shared.pipeline.registry import flow_of


@dataclass(frozen=True)
class Stamp:
    """Where an object stands in Square's history: its version, or updated_at where it has none."""

    version: int | None
    updated_at: str | None


async def claim(
    state: StateStore, *, ledger: LedgerRow | None, kind: str, square_id: str, command: SyncCommand, stamp: Stamp
) -> LedgerRow:
    row = ledger if ledger is not None else LedgerRow(kind=kind, square_id=square_id)
    row.pending_version = stamp.version
    row.pending_updated_at = stamp.updated_at
    row.pending_event_id = command.event_id
    return await state.save_ledger(row)


async def commit(
    state: StateStore, *, row: LedgerRow, command: SyncCommand, stamp: Stamp, content_hash: str | None
) -> LedgerRow:
    if stamp.version is not None:
        row.version = stamp.version if row.version is None else max(row.version, stamp.version)
    if stamp.updated_at is not None:
        row.updated_at = stamp.updated_at
    row.content_hash = content_hash
    row.last_event_id = command.event_id
    row.pending_version = row.pending_updated_at = row.pending_event_id = None
    had_failure = row.failure_open
    row.failure_open = False
    row.failed_version = None
    saved = await state.save_ledger(row)
    if had_failure:
        await state.resolve_failure(flow_of(row.kind), row.square_id, f"synced by event {command.event_id}")
    return saved
