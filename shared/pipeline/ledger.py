"""Ledger transitions: claim a version before writing to the CRM, commit it after (both ETag-guarded).

A claim makes concurrent attempts on one object safe: an older version sees the newer claim and stops,
and a crashed attempt leaves a claim that its own retry may re-apply (the upsert is idempotent).
The bulk path claims and commits many rows at once (entity-group transactions where the store has them);
each row's transition is the same one (`claimed_row`, `committed_row`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared.core.errors import ConcurrencyError, LostCommitError
from shared.core.models import SyncCommand
from shared.core.ports import LedgerRow, StateStore
from shared.pipeline.registry import flow_of


@dataclass(frozen=True)
class Stamp:
    """Where an object stands in Square's history: its version, or updated_at where it has none."""

    version: int | None
    updated_at: str | None


def claimed_row(
    ledger: LedgerRow | None, kind: str, square_id: str, command: SyncCommand, stamp: Stamp, *, at: str | None
) -> LedgerRow:
    row = ledger if ledger is not None else LedgerRow(kind=kind, square_id=square_id)
    row.pending_version = stamp.version
    row.pending_updated_at = stamp.updated_at
    row.pending_event_id = command.event_id
    row.pending_at = at
    return row


def release(row: LedgerRow) -> None:
    """Drop the row's claim (written, recorded as failed, merged away)."""
    row.pending_version = row.pending_updated_at = row.pending_event_id = row.pending_at = None


def committed_row(
    row: LedgerRow, command: SyncCommand, stamp: Stamp, content_hash: str | None
) -> tuple[LedgerRow, bool]:
    """The row with the version applied, and whether it closes an open failure."""
    if stamp.version is not None:
        row.version = stamp.version if row.version is None else max(row.version, stamp.version)
    if stamp.updated_at is not None:
        row.updated_at = stamp.updated_at
    row.content_hash = content_hash
    row.last_event_id = command.event_id
    release(row)
    had_failure = row.failure_open
    row.failure_open = False
    row.failed_version = None
    return row, had_failure


async def claim(
    state: StateStore,
    *,
    ledger: LedgerRow | None,
    kind: str,
    square_id: str,
    command: SyncCommand,
    stamp: Stamp,
    at: str | None,
) -> LedgerRow:
    """Claim the version about to be written (`at`: now, the start of the claim's lease)."""
    return await state.save_ledger(claimed_row(ledger, kind, square_id, command, stamp, at=at))


async def commit(
    state: StateStore, *, row: LedgerRow, command: SyncCommand, stamp: Stamp, content_hash: str | None
) -> LedgerRow:
    row, had_failure = committed_row(row, command, stamp, content_hash)
    try:
        saved = await state.save_ledger(row)
    except ConcurrencyError as error:
        raise LostCommitError(f"{row.kind} {row.square_id}: the ledger moved on before this write committed") from error
    if had_failure:
        await state.resolve_failure(flow_of(row.kind), row.square_id, f"synced by event {command.event_id}")
    return saved


@dataclass(frozen=True)
class Transition:
    """One row of a bulk claim or commit."""

    row: LedgerRow | None  # the ledger as read (claim) or as claimed (commit)
    kind: str
    square_id: str
    command: SyncCommand
    stamp: Stamp
    content_hash: str | None = None
    at: str | None = None  # when a claim is made


async def claim_many(state: StateStore, items: Sequence[Transition]) -> list[LedgerRow | None]:
    """Claims of many rows; None where another writer moved the row on (its write wins)."""
    rows = [claimed_row(t.row, t.kind, t.square_id, t.command, t.stamp, at=t.at) for t in items]
    return [_saved(result) for result in await state.save_ledgers(rows)]


def _saved(result: LedgerRow | Exception) -> LedgerRow | None:
    """A saved row, None for a row another writer moved on; any other error is raised."""
    if isinstance(result, ConcurrencyError):
        return None
    if isinstance(result, Exception):
        raise result
    return result


async def commit_many(state: StateStore, items: Sequence[Transition]) -> list[LedgerRow | None]:
    """Commits of many claimed rows; None where another writer claimed the row meanwhile."""
    transitions = []
    for t in items:
        assert t.row is not None
        transitions.append(committed_row(t.row, t.command, t.stamp, t.content_hash))
    saved = await state.save_ledgers([row for row, _ in transitions])
    results: list[LedgerRow | None] = []
    for (row, had_failure), item, result in zip(transitions, items, saved, strict=True):
        done = _saved(result)
        if done is not None and had_failure:
            await state.resolve_failure(flow_of(row.kind), row.square_id, f"synced by event {item.command.event_id}")
        results.append(done)
    return results
