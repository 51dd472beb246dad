from __future__ import annotations

import pytest

from shared.core.ports import LedgerRow
from shared.core.times import parse_time
from shared.pipeline.gate import BUSY_RETRY_SECONDS, CLAIM_LEASE_SECONDS, Decision, busy_error, decide, lease_left


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


NOW = parse_time("2026-11-22T12:00:30+00:00")


@pytest.mark.parametrize(
    ("pending_at", "version", "expected"),
    [
        ("2026-11-22T12:00:00+00:00", 6, Decision.BUSY),  # another writer claimed v5 30 s ago: wait for it
        ("2026-11-22T11:59:00+00:00", 6, Decision.APPLY),  # its lease ran out: it died, overtake it
        (None, 6, Decision.APPLY),  # a claim from before leases existed counts as expired
        ("2026-11-22T12:00:00+00:00", 5, Decision.APPLY),  # the claimed version itself: a retry re-applies it
        ("2026-11-22T12:00:00+00:00", 4, Decision.STALE),  # older than what is being written
    ],
)
def test_a_claim_is_a_lease_for_writers_of_other_versions(
    pending_at: str | None, version: int, expected: Decision
) -> None:
    row = _row(version=3, pending_version=5, pending_event_id="e5", pending_at=pending_at)
    assert decide(row, version=version, updated_at=None, is_delete=False, now=NOW) is expected


def test_without_now_the_lease_is_not_considered() -> None:
    """Reconcile asks only whether Square is ahead of the ledger, not whether it may write now."""
    row = _row(version=3, pending_version=5, pending_at="2026-11-22T12:00:00+00:00")
    assert decide(row, version=6, updated_at=None, is_delete=False) is Decision.APPLY


def test_the_busy_error_asks_to_retry_when_the_lease_runs_out() -> None:
    assert NOW is not None
    row = _row(version=3, pending_version=5, pending_event_id="e5", pending_at="2026-11-22T12:00:00+00:00")
    error = busy_error("customer", "S", row, NOW)
    assert error.retry_after == pytest.approx(min(BUSY_RETRY_SECONDS, CLAIM_LEASE_SECONDS - 30))
    assert "e5" in str(error)


def test_a_dead_claim_is_overtaken_no_later_than_its_lease() -> None:
    assert NOW is not None
    row = _row(version=3, pending_version=5, pending_at="2026-11-22T11:59:50+00:00")
    assert lease_left(row, NOW) == pytest.approx(CLAIM_LEASE_SECONDS - 40)
    assert lease_left(None, NOW) == 1.0
