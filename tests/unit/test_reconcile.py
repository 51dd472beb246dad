from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from shared.core.errors import TransientError
from shared.core.models import SyncCommand
from shared.core.ports import LedgerRow
from shared.pipeline.reconcile import CURSOR, reconcile_customers
from tests.fakes import FakeQueue, FakeSquare, FakeState, FixedClock


def _run(square: FakeSquare, state: FakeState, queue: FakeQueue) -> object:
    return asyncio.run(
        reconcile_customers(
            square=square,
            state=state,
            queue=queue,
            now=FixedClock().now(),
            lag=timedelta(minutes=5),
            first_lookback=timedelta(hours=24),
        )
    )


def test_only_customers_the_ledger_has_not_caught_up_with_are_enqueued() -> None:
    square = FakeSquare(
        customers={
            "NEW": {"id": "NEW", "version": 0},
            "BEHIND": {"id": "BEHIND", "version": 3},
            "CURRENT": {"id": "CURRENT", "version": 2},
            "FAILED": {"id": "FAILED", "version": 4},
        }
    )
    state = FakeState()
    state.ledger[("customer", "BEHIND")] = LedgerRow("customer", "BEHIND", version=2, etag="1")
    state.ledger[("customer", "CURRENT")] = LedgerRow("customer", "CURRENT", version=2, etag="1")
    state.ledger[("customer", "FAILED")] = LedgerRow(
        "customer", "FAILED", failure_open=True, failed_version=4, etag="1"
    )
    queue = FakeQueue()
    report = _run(square, state, queue)
    commands = [SyncCommand.model_validate_json(m.body) for m in queue.sent]
    assert sorted(c.entity_id for c in commands) == ["BEHIND", "NEW"]
    assert {m.message_id for m in queue.sent} == {"reconcile-NEW-0", "reconcile-BEHIND-3"}  # same version → same id
    assert report.examined == 4 and report.enqueued == 2  # type: ignore[attr-defined]


def test_watermark_starts_from_lookback_and_moves_to_run_start() -> None:
    square, state, queue = FakeSquare(), FakeState(), FakeQueue()
    _run(square, state, queue)
    assert square.calls == ["search:2026-11-21T11:55:00Z:None"]  # 24 h back, minus the 5 min lag
    assert state.cursors[CURSOR] == "2026-11-22T12:00:00+00:00"
    _run(square, state, queue)
    assert square.calls[-1] == "search:2026-11-22T11:55:00Z:None"


def test_a_repeated_page_cursor_stops_without_moving_the_watermark() -> None:
    square = FakeSquare(pages=[([], "c1"), ([], "c1")])
    state = FakeState()
    with pytest.raises(TransientError):
        _run(square, state, FakeQueue())
    assert CURSOR not in state.cursors
