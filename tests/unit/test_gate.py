from __future__ import annotations

import pytest

from shared.core.ports import LedgerRow
from shared.core.times import parse_time
from shared.pipeline.gate import Decision, decide


def _row(**fields: object) -> LedgerRow:
    return LedgerRow(kind="customer", square_id="S", **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("row", "version", "is_delete", "expected"),
    [
        (None, 0, False, Decision.APPLY),
        (_row(version=3), 4, False, Decision.APPLY),
        (_row(version=3), 3, False, Decision.DUPLICATE),
        (_row(version=3), 2, False, Decision.STALE),
        (_row(version=3), 3, True, Decision.APPLY),  # a delete at the same version wins
        (_row(version=3, status="deleted"), 5, False, Decision.STALE),  # nothing resurrects a deleted customer
        (_row(version=3, status="deleted"), 3, True, Decision.DUPLICATE),
        (_row(version=3, status="merged"), 9, False, Decision.STALE),
        (_row(version=3, pending_version=5), 5, False, Decision.APPLY),  # retry of a claimed, maybe-unfinished write
        (_row(version=3, pending_version=5), 4, False, Decision.STALE),  # a newer version is in flight
        (_row(version=3, pending_version=5), 6, False, Decision.APPLY),
    ],
)
def test_version_gate(row: LedgerRow | None, version: int, is_delete: bool, expected: Decision) -> None:
    assert decide(row, version=version, updated_at=None, is_delete=is_delete) is expected


def test_updated_at_gates_objects_without_version() -> None:
    row = _row(updated_at="2026-01-01T10:00:00.123456789Z")
    assert decide(row, version=None, updated_at="2026-01-01T10:00:01Z", is_delete=False) is Decision.APPLY
    assert decide(row, version=None, updated_at="2026-01-01T10:00:00.123456Z", is_delete=False) is Decision.DUPLICATE
    assert decide(row, version=None, updated_at="2026-01-01T09:59:59Z", is_delete=False) is Decision.STALE


def test_parse_time_handles_square_precisions() -> None:
    assert parse_time("2022-07-13T20:30:59.037339943Z") is not None
    assert parse_time("2022-11-09T21:23:25Z") is not None
    assert parse_time("garbage") is None and parse_time(None) is None
