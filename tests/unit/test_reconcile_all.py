"""Reconcile every kind over fakes: what Square changed since each watermark against the ledger — missing,
stale, current, already failing — repairs enqueued per kind, one kind's trouble reported without stopping
the others, and the run's report kept for health, console and CLI."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from shared.core.errors import TransientError
from shared.core.models import SyncCommand
from shared.core.ports import LedgerRow
from shared.pipeline.reconcile_all import Reconciler, last_report, reconcile_everything
from tests.fakes import FakeHistory, FakeQueue, FakeSquare, FakeState, FixedClock

T0 = "2026-11-22T11:00:00Z"  # within the first look-back of the fixed clock (12:00)


class Recorded:
    def __init__(self) -> None:
        self.values: dict[tuple[str, str], float] = {}

    def increment(self, name: str, value: float = 1.0, **dimensions: str) -> None:
        key = (name, dimensions.get("kind", ""))
        self.values[key] = self.values.get(key, 0.0) + value


def ledger(state: FakeState, kind: str, square_id: str, **fields: Any) -> None:
    state.ledger[(kind, square_id)] = LedgerRow(kind, square_id, etag="1", **fields)


def world() -> tuple[FakeSquare, FakeHistory, FakeState]:
    square = FakeSquare(
        customers={
            "NEW": {"id": "NEW", "version": 0, "updated_at": T0},
            "BEHIND": {"id": "BEHIND", "version": 3, "updated_at": T0},
            "CURRENT": {"id": "CURRENT", "version": 2, "updated_at": T0},
            "FAILING": {"id": "FAILING", "version": 4, "updated_at": T0},
        }
    )
    history = FakeHistory(
        locations=[{"id": "L1"}, {"id": "L2"}],
        orders=[
            {"id": "O1", "location_id": "L1", "version": 5, "created_at": T0, "updated_at": T0},
            {"id": "O2", "location_id": "L2", "version": 1, "created_at": T0, "updated_at": T0},
        ],
        payments=[
            {"id": "P1", "location_id": "L1", "created_at": T0, "updated_at": T0},
            {"id": "P2", "location_id": "L2", "created_at": T0, "updated_at": T0},
        ],
        refunds=[{"id": "R1", "created_at": T0, "updated_at": T0}],
        catalog=[{"id": "I1", "type": "ITEM", "created_at": T0, "updated_at": "2026-11-22T11:30:00Z"}],
    )
    state = FakeState()
    ledger(state, "customer", "BEHIND", version=2, dataverse_id="c-behind", status="active")
    ledger(state, "customer", "CURRENT", version=2, dataverse_id="c-current", status="active")
    ledger(state, "customer", "FAILING", failure_open=True, failed_version=4)
    ledger(state, "location", "L1", updated_at=T0)
    ledger(state, "order", "O1", version=4)  # stale: Square has 5
    ledger(state, "order", "O2", version=1)  # current
    ledger(state, "payment", "P2", updated_at=T0)  # current
    state.cursors["catalog:version"] = "2026-11-22T10:00:00Z"
    return square, history, state


def run(square: FakeSquare, history: Any, state: FakeState, queue: FakeQueue, metrics: Recorded) -> Any:
    reconciler = Reconciler(
        square=square,  # type: ignore[arg-type]
        history=history,
        state=state,
        queue=queue,
        now=FixedClock().now(),
        lag=timedelta(minutes=5),
        first_lookback=timedelta(hours=24),
    )
    return asyncio.run(reconcile_everything(reconciler, metrics))  # type: ignore[arg-type]


def test_every_kind_is_checked_and_what_the_crm_misses_is_repaired() -> None:
    square, history, state = world()
    queue, metrics = FakeQueue(), Recorded()
    result = run(square, history, state, queue, metrics)
    repaired = sorted(
        (c.entity_kind, c.entity_id) for c in (SyncCommand.model_validate_json(m.body) for m in queue.sent)
    )
    assert repaired == [
        ("catalog", "catalog"),
        ("customer", "BEHIND"),
        ("customer", "NEW"),
        ("location", "L2"),
        ("order", "O1"),
        ("payment", "P1"),
        ("refund", "R1"),
    ]
    kinds = {k.kind: k for k in result.kinds}
    assert (kinds["customers"].missing, kinds["customers"].stale, kinds["customers"].failed) == (1, 1, 1)
    assert kinds["customers"].repaired == 2
    assert (kinds["locations"].examined, kinds["locations"].missing) == (2, 1)
    assert (kinds["orders"].examined, kinds["orders"].stale, kinds["orders"].missing) == (2, 1, 0)
    assert (kinds["payments"].examined, kinds["payments"].missing) == (2, 1)
    assert kinds["refunds"].missing == 1 and kinds["catalog"].repaired == 1
    assert all(k.error is None for k in result.kinds)
    assert metrics.values[("reconcile_missing", "payments")] == 1.0
    report = asyncio.run(last_report(state))
    assert report is not None and [k["kind"] for k in report["kinds"]] == [k.kind for k in result.kinds]
    assert state.cursors["reconcile:orders"] == FixedClock().now().isoformat()


def test_a_repaired_payment_carries_the_object_and_an_order_is_fetched_fresh() -> None:
    square, history, state = world()
    queue = FakeQueue()
    run(square, history, state, queue, Recorded())
    commands = {c.entity_id: c for c in (SyncCommand.model_validate_json(m.body) for m in queue.sent)}
    assert commands["P1"].event_type == "payment.updated" and not commands["P1"].fetch
    assert commands["O1"].event_type == "order.updated" and commands["O1"].fetch


def test_a_second_run_repairs_nothing_already_enqueued_twice_in_its_window() -> None:
    square, history, state = world()
    queue = FakeQueue()
    run(square, history, state, queue, Recorded())
    ids = {m.message_id for m in queue.sent}
    queue2 = FakeQueue()
    run(square, history, state, queue2, Recorded())
    assert {m.message_id for m in queue2.sent} <= ids  # same object version → same message id (deduplicated)


class Broken(FakeHistory):
    async def search_orders(self, *args: Any, **kwargs: Any) -> Any:
        raise TransientError("Square 503")


def test_one_kinds_trouble_is_reported_and_the_others_still_run() -> None:
    square, history, state = world()
    broken = Broken(**{k: getattr(history, k) for k in ("locations", "orders", "payments", "refunds", "catalog")})
    queue = FakeQueue()
    result = run(square, broken, state, queue, Recorded())
    kinds = {k.kind: k for k in result.kinds}
    assert kinds["orders"].error is not None and "Square 503" in kinds["orders"].error and kinds["orders"].failed == 1
    assert kinds["payments"].missing == 1 and kinds["refunds"].missing == 1
    assert "reconcile:orders" not in state.cursors and "reconcile:payments" in state.cursors


def test_deletes_and_merges_that_never_arrived_count_as_stale_and_repaired() -> None:
    square, history, state = world()
    ledger(state, "customer", "GONE", version=1, dataverse_id="c-gone", status="active")
    queue = FakeQueue()
    result = run(square, history, state, queue, Recorded())
    customers = next(k for k in result.kinds if k.kind == "customers")
    assert customers.stale == 2 and customers.repaired == 3  # BEHIND, NEW, and GONE's missed delete
    deleted = [SyncCommand.model_validate_json(m.body) for m in queue.sent if "deleted" in m.message_id]
    assert [(c.entity_id, c.event_type) for c in deleted] == [("GONE", "customer.deleted")]
