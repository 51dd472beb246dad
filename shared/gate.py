"""The version gate: decide, without I/O, whether an incoming Square object may be written.

Order of arrival never matters: an object is applied only when it is newer than what the ledger
committed (or is the very version a crashed attempt claimed). A tombstone wins at equal version.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum

from shared.ports import LedgerRow

_FRACTION = re.compile(r"^([^.]+?)(?:\.(\d+))?([+-]\d\d:?\d\d)?$")


class Decision(StrEnum):
    APPLY = "apply"
    STALE = "stale"
    DUPLICATE = "duplicate"


def parse_time(text: str | None) -> datetime | None:
    """RFC 3339 with any fraction precision (Square sends up to nanoseconds); naive times count as UTC."""
    if not text:
        return None
    match = _FRACTION.match(text.strip().replace("Z", "+00:00"))
    if match is None:
        return None
    head, digits, zone = match.group(1), match.group(2), match.group(3) or ""
    cleaned = f"{head}.{digits[:6].ljust(6, '0')}{zone}" if digits else f"{head}{zone}"
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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
