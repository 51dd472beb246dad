"""The version gate: decide, without I/O, whether an incoming Square object may be written.

Order of arrival never matters: an object is applied only when it is newer than what the ledger
committed (or is the very version a crashed attempt claimed). A tombstone wins at equal version.

A claim is also a lease. A newer version that finds another version's claim younger than
`CLAIM_LEASE_SECONDS` waits (BUSY: retried later) instead of writing beside it: two writers of one object
in different processes could otherwise land their CRM writes in the other order than their claims, and
the older one would stay in the CRM. A claim older than the lease is a writer that died; it is overtaken.
Inside one process the worker already runs one writer per object at a time (shared/core/keyed_lock.py).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from shared.core.errors import BusyError
from shared.core.ports import LedgerRow
from shared.core.times import parse_time


class Decision(StrEnum):
    APPLY = "apply"
    STALE = "stale"
    DUPLICATE = "duplicate"
    BUSY = "busy"  # another writer's claim on a different version is still within its lease: retry later


CLAIM_LEASE_SECONDS = 60.0
BUSY_RETRY_SECONDS = 5.0  # a live writer usually finishes within a second: look again soon, not at lease end


def _compare(version: int | None, updated_at: str | None, row_version: int | None, row_updated: str | None) -> int:
    """-1 older, 0 same, 1 newer; versions win, updated_at breaks the tie when versions are absent."""
    if version is not None and row_version is not None:
        return (version > row_version) - (version < row_version)
    incoming_time, row_time = parse_time(updated_at), parse_time(row_updated)
    if incoming_time is not None and row_time is not None:
        return (incoming_time > row_time) - (incoming_time < row_time)
    return 1 if row_version is None and row_time is None else 0


def decide(
    ledger: LedgerRow | None,
    *,
    version: int | None,
    updated_at: str | None,
    is_delete: bool,
    now: datetime | None = None,
    repair: bool = False,
) -> Decision:
    """May this version of the object be applied on top of what the ledger says? (`now`: a writer about to
    claim asks, and another writer's live claim makes it wait; without it the lease is not considered.)"""
    if ledger is None:
        return Decision.APPLY
    if ledger.status == "merged":
        return Decision.STALE
    if ledger.pending_version is not None or ledger.pending_updated_at is not None:
        against_claim = _compare(version, updated_at, ledger.pending_version, ledger.pending_updated_at)
        if against_claim == 0:
            return Decision.APPLY  # a claimed write that may not have finished: re-applying is idempotent
        if against_claim < 0:
            return Decision.STALE  # a newer version is being written right now
        if now is not None and live_claim(ledger, now):
            return Decision.BUSY
    if ledger.status == "deleted":
        return Decision.DUPLICATE if is_delete else Decision.STALE
    order = _compare(version, updated_at, ledger.version, ledger.updated_at)
    if order > 0 or (order == 0 and (is_delete or repair)):
        return Decision.APPLY
    return Decision.DUPLICATE if order == 0 else Decision.STALE


def claim_age(ledger: LedgerRow, now: datetime) -> float:
    """Seconds since the row's claim was made (a claim with no time, from before leases, counts as expired)."""
    claimed = parse_time(ledger.pending_at)
    return float("inf") if claimed is None else (now - claimed).total_seconds()


def lease_left(ledger: LedgerRow | None, now: datetime) -> float:
    """Seconds until another writer's claim on the row may be overtaken (at least one)."""
    if ledger is None:
        return 1.0
    return max(1.0, CLAIM_LEASE_SECONDS - claim_age(ledger, now))


def busy_error(kind: str, object_id: str, ledger: LedgerRow | None, now: datetime) -> BusyError:
    """What a writer raises on BUSY: retried soon (the other writer has usually finished by then), and at
    the latest when its lease runs out."""
    held = ledger.pending_event_id if ledger is not None else None
    return BusyError(
        f"{kind} {object_id} is being written by another worker (event {held}); retried after its claim",
        retry_after=busy_delay(ledger, now),
    )


def busy_delay(ledger: LedgerRow | None, now: datetime) -> float:
    """How long a BUSY writer waits before it looks again."""
    return min(BUSY_RETRY_SECONDS, lease_left(ledger, now))


def live_claim(ledger: LedgerRow, now: datetime) -> bool:
    """Whether the row holds a claim still within its lease (another writer may be writing right now)."""
    held = ledger.pending_event_id is not None or ledger.pending_version is not None
    return held and claim_age(ledger, now) < CLAIM_LEASE_SECONDS
