"""The version gate: decide, without I/O, whether an incoming Square object may be written.

Order of arrival never matters: an object is applied only when it is newer than what the ledger
committed (or is the very version a crashed attempt claimed). A tombstone wins at equal version.
"""

from __future__ import annotations

from enum import StrEnum

from shared.core.ports import LedgerRow
from shared.core.times import parse_time


class Decision(StrEnum):
    APPLY = "apply"
    STALE = "stale"
    DUPLICATE = "duplicate"


def _compare(version: int | None, updated_at: str | None, row_version: int | None, row_updated: str | None) -> int:
    """-1 older, 0 same, 1 newer; versions win, updated_at breaks the tie when versions are absent."""
    if version is not None and row_version is not None:
        return (version > row_version) - (version < row_version)
    incoming_time, row_time = parse_time(updated_at), parse_time(row_updated)
    if incoming_time is not None and row_time is not None:
        return (incoming_time > row_time) - (incoming_time < row_time)
    return 1 if row_version is None and row_time is None else 0


def decide(ledger: LedgerRow | None, *, version: int | None, updated_at: str | None, is_delete: bool) -> Decision:
    """May this version of the object be applied on top of what the ledger says?"""
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
    if ledger.status == "deleted":
        return Decision.DUPLICATE if is_delete else Decision.STALE
    order = _compare(version, updated_at, ledger.version, ledger.updated_at)
    if order > 0 or (order == 0 and is_delete):
        return Decision.APPLY
    return Decision.DUPLICATE if order == 0 else Decision.STALE
