"""Square's pagination, as every list/search endpoint of the emulator applies it.

A first request (no cursor) takes a snapshot of the matching ids in result order; each page hands out a
new opaque cursor that points into that snapshot. A cursor is valid only with the query that produced it
("Provide this cursor to retrieve the next set of results for your original query", SPEC ListCustomers
`cursor`, SearchOrdersRequest `query`, SearchEventsRequest `query`) and only for a few minutes
(reference/square.md §6); otherwise 400 `INVALID_CURSOR` (SPEC `ErrorCode`). The snapshot also gives
SearchOrders' rule that an absent end time means "the time of the first request for the cursor" (SPEC
`SearchOrdersDateTimeFilter`). Building the snapshot once keeps paging through 100,000 customers linear.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from devstack.square_emulator.responses import SquareFault

DEFAULT_CURSOR_TTL_SECONDS = 300.0


def fingerprint(endpoint: str, query: Any) -> str:
    """What a cursor is bound to: the endpoint and its query, canonically serialised."""
    return endpoint + ":" + json.dumps(query, sort_keys=True, separators=(",", ":"), default=str)


def integer(value: Any, name: str) -> int | None:
    """An integer parameter from JSON or a query string; EXPECTED_INTEGER when it is not one."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise SquareFault(400, "EXPECTED_INTEGER", f"Expected an integer for `{name}`.", name)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise SquareFault(400, "EXPECTED_INTEGER", f"Expected an integer for `{name}`.", name)


def strict_limit(value: Any, *, low: int, high: int, default: int, name: str = "limit") -> int:
    """Limits Square refuses out of range: 400 VALUE_TOO_LOW / VALUE_TOO_HIGH (SPEC ListCustomers `limit`)."""
    limit = integer(value, name)
    if limit is None:
        return default
    if limit < low:
        raise SquareFault(400, "VALUE_TOO_LOW", f"`{name}` must be at least {low}.", name)
    if limit > high:
        raise SquareFault(400, "VALUE_TOO_HIGH", f"`{name}` must be at most {high}.", name)
    return limit


def lenient_limit(value: Any, *, high: int, default: int, over: str = "default") -> int:
    """Limits Square ignores out of range: below 1 → default; above `high` → default or `high` (`over`)."""
    limit = integer(value, "limit")
    if limit is None or limit < 1:
        return default
    if limit > high:
        return default if over == "default" else high
    return limit


@dataclass
class _Snapshot:
    bound_to: str
    keys: Sequence[Hashable]


@dataclass
class _Cursor:
    snapshot: _Snapshot
    offset: int
    expires: float


@dataclass
class CursorBook:
    ttl_seconds: float = DEFAULT_CURSOR_TTL_SECONDS
    monotonic: Callable[[], float] = time.monotonic
    _cursors: dict[str, _Cursor] = field(default_factory=dict)
    _issued: int = 0

    def page(
        self,
        *,
        bound_to: str,
        cursor: Any,
        limit: int,
        build: Callable[[], Sequence[Hashable]],
    ) -> tuple[Sequence[Hashable], str | None]:
        """One page of keys and the cursor to the next page (None on the last page)."""
        if cursor:
            snapshot, offset = self._resume(cursor, bound_to)
        else:
            snapshot, offset = _Snapshot(bound_to, build()), 0
        end = offset + limit
        keys = snapshot.keys[offset:end]
        return keys, (self._issue(snapshot, end) if end < len(snapshot.keys) else None)

    def _resume(self, cursor: Any, bound_to: str) -> tuple[_Snapshot, int]:
        found = self._cursors.get(cursor) if isinstance(cursor, str) else None
        if found is None or found.expires < self.monotonic():
            raise SquareFault(400, "INVALID_CURSOR", "The cursor is invalid or has expired.", "cursor")
        if found.snapshot.bound_to != bound_to:
            raise SquareFault(400, "INVALID_CURSOR", "The cursor belongs to a different query.", "cursor")
        return found.snapshot, found.offset

    def _issue(self, snapshot: _Snapshot, offset: int) -> str:
        self._issued += 1
        if self._issued % 256 == 0:
            now = self.monotonic()
            self._cursors = {k: c for k, c in self._cursors.items() if c.expires >= now}
        token = secrets.token_urlsafe(32)
        self._cursors[token] = _Cursor(snapshot, offset, self.monotonic() + self.ttl_seconds)
        return token
