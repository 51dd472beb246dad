from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

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


def _sweep(square: FakeSquare, state: FakeState, queue: FakeQueue, batch: int) -> Any:
    from shared.pipeline.reconcile import sweep_for_missed_deletes

    return asyncio.run(
        sweep_for_missed_deletes(square=square, state=state, queue=queue, now=FixedClock().now(), batch_size=batch)
    )


def test_a_delete_or_merge_that_never_arrived_is_found_and_repaired_over_rolling_passes() -> None:
    state = FakeState()
    for customer_id in ("A1", "B2", "C3", "D4", "E5"):
        state.ledger[("customer", customer_id)] = LedgerRow(
            "customer", customer_id, dataverse_id=f"contact-{customer_id}"
        )
    state.ledger[("customer", "F6")] = LedgerRow("customer", "F6", dataverse_id="contact-F6", status="deleted")
    square = FakeSquare(
        customers={cid: {"id": cid, "version": 1} for cid in ("A1", "C3", "E5", "S9")},
        merged_into={"D4": "S9"},
    )  # B2 was deleted in Square and D4 merged into S9, and neither webhook ever came
    queue = FakeQueue()
    first = _sweep(square, state, queue, batch=3)  # A1 B2 C3
    second = _sweep(square, state, queue, batch=3)  # D4 E5 F6(already deleted: not checked)
    assert (first.checked, first.deleted_ids, first.merged, first.wrapped) == (3, ("B2",), (), False)
    assert (second.checked, second.deleted_ids, second.merged, second.wrapped) == (2, (), (("D4", "S9"),), True)
    commands = [SyncCommand.model_validate_json(m.body) for m in queue.sent]
    assert [(c.event_type, c.entity_id, c.fetch) for c in commands] == [
        ("customer.deleted", "B2", True),
        ("customer.deleted", "D4", False),
    ]
    merge = commands[1].event["data"]["object"]["event_context"]["merge"]
    assert merge == {"from_customer_ids": ["D4"], "to_customer_id": "S9"}
    third = _sweep(square, state, queue, batch=3)  # starts over from the beginning
    assert third.checked == 3 and square.calls.count("bulk_retrieve_customers:3") == 2


def test_the_repair_deactivates_the_contact_through_the_customer_flow() -> None:
    from shared.flows.context import Outcome
    from shared.flows.customers import sync_customer
    from shared.pipeline.reconcile import missed_delete_command
    from tests.fakes import FakeDataverse, flow_context

    dv = FakeDataverse()
    contact_id = dv.seed(tb_squarecustomerid="B2", lastname="Gone")
    state = FakeState()
    state.ledger[("customer", "B2")] = LedgerRow("customer", "B2", dataverse_id=contact_id, version=3, etag="1")
    ctx = flow_context(dataverse=dv, state=state, square=FakeSquare())
    outcome = asyncio.run(sync_customer(missed_delete_command("B2", FixedClock().now()), ctx))
    assert outcome is Outcome.DEACTIVATED and dv.rows[contact_id]["statecode"] == 1
