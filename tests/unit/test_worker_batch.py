"""The worker's batch path over fakes: bulk writes under a backlog, one upsert per event at low load, and
the per-record guarantees (version gate, failure records, retries, traces) either way."""

from __future__ import annotations

import asyncio
from typing import Any

from shared.bulk.writer import BulkWriter
from shared.core.errors import TransientError
from shared.core.models import SyncCommand
from shared.core.ports import FlowStatus
from shared.pipeline.batch import BulkOptions, Inbound
from shared.pipeline.worker import RetryPolicy, Worker
from tests.fakes import FakeDataverse, FakeQueue, FakeState, flow_context
from tests.unit.test_customer_flow import command, customer


class KeptTraces:
    def __init__(self) -> None:
        self.saved: list[Any] = []

    async def save(self, trace: Any) -> None:
        self.saved.append(trace)


def make(
    dv: FakeDataverse | None = None, threshold: int = 4
) -> tuple[Worker, FakeDataverse, FakeState, FakeQueue, KeptTraces]:
    dv, state, queue, traces = dv or FakeDataverse(), FakeState(), FakeQueue(), KeptTraces()
    worker = Worker(
        ctx=flow_context(dataverse=dv, state=state),
        retry_queue=queue,
        policy=RetryPolicy(3, 2.0, 60.0),
        traces=traces,  # type: ignore[arg-type]
        bulk=BulkOptions(BulkWriter(dv, 100), threshold),
    )
    return worker, dv, state, queue, traces


def inbound(cmd: SyncCommand) -> Inbound:
    return Inbound(cmd.model_dump_json().encode())


def created(n: int, version: int = 0, **fields: Any) -> SyncCommand:
    return command("customer.created", customer(f"C{n}", version, **fields), event_id=f"evt-{n}-{version}")


def test_a_backlog_is_written_with_one_bulk_request_and_one_match_query() -> None:
    worker, dv, state, queue, traces = make()
    asyncio.run(worker.handle_batch([inbound(created(n)) for n in range(20)]))
    assert dv.calls == ["query_many:1", "create_multiple:contacts:20"]
    assert len(dv.active_by_square_id()) == 20
    assert state.ledger[("customer", "C7")].last_event_id == "evt-7-0"
    assert sorted(t.event_id for t in traces.saved) == sorted(f"evt-{n}-0" for n in range(20))
    assert {t.outcome for t in traces.saved} == {"written"}
    assert queue.sent == []


def test_at_low_load_each_event_is_one_upsert_for_latency() -> None:
    worker, dv, _, _, _ = make(threshold=4)
    asyncio.run(worker.handle_batch([inbound(created(n)) for n in range(3)]))
    assert sorted(c for c in dv.calls if not c.startswith("query")) == ["upsert_by_key"] * 3
    assert len(dv.active_by_square_id()) == 3


def test_deletes_and_thin_events_in_a_backlog_take_the_single_path() -> None:
    worker, dv, _, _, _ = make()
    existing = dv.seed(tb_squarecustomerid="C99", firstname="Old")
    worker.ctx.square.customers["C99"] = None  # type: ignore[attr-defined]
    deleted = command("customer.deleted", None, customer_id="C99", event_id="del-99")
    asyncio.run(worker.handle_batch([inbound(created(n)) for n in range(5)] + [inbound(deleted)]))
    assert dv.rows[existing]["statecode"] == 1
    assert "create_multiple:contacts:5" in dv.calls


def test_two_versions_of_one_customer_in_a_batch_write_only_the_newer() -> None:
    worker, dv, state, _, traces = make()
    batch = [created(1, 3, given_name="New"), created(1, 2, given_name="Old"), created(2), created(3)]
    asyncio.run(worker.handle_batch([inbound(c) for c in batch]))
    assert dv.active_by_square_id()["C1"]["firstname"] == "New"
    assert state.ledger[("customer", "C1")].version == 3
    outcomes = {t.event_id: t.outcome for t in traces.saved}
    assert outcomes["evt-1-3"] == "written" and outcomes["evt-1-2"] == "stale"


def test_a_bad_record_in_a_backlog_is_one_failure_record_under_its_own_event() -> None:
    worker, dv, state, _, traces = make()
    batch = [created(n) for n in range(4)] + [created(9, email_address="not-an-email")]
    asyncio.run(worker.handle_batch([inbound(c) for c in batch]))
    failure = state.failures[("customers", "C9")]
    assert failure.reason_code == "invalid_data" and failure.event_id == "evt-9-0"
    assert len(dv.active_by_square_id()) == 4
    assert {t.event_id: t.outcome for t in traces.saved}["evt-9-0"] == "failed"


def test_transient_trouble_in_the_bulk_write_schedules_a_retry_copy_per_event() -> None:
    worker, dv, state, queue, _ = make()

    async def scenario() -> None:
        original = dv.create_multiple

        async def failing(*args: Any, **kwargs: Any) -> Any:
            raise TransientError("Dataverse 503")

        dv.create_multiple = failing  # type: ignore[method-assign]
        await worker.handle_batch([inbound(created(n)) for n in range(6)])
        dv.create_multiple = original  # type: ignore[method-assign]

    asyncio.run(scenario())
    assert sorted(m.message_id for m in queue.sent) == sorted(f"evt-{n}-0:retry:2" for n in range(6))
    assert state.failures == {} and dv.active_by_square_id() == {}


def test_a_paused_flow_holds_a_backlog_instead_of_writing_it() -> None:
    worker, dv, state, queue, _ = make()
    state.flows["customers"] = FlowStatus("customers", paused=True)
    asyncio.run(worker.handle_batch([inbound(created(n)) for n in range(5)]))
    assert dv.active_by_square_id() == {} and len(queue.sent) == 5
    assert all(":held:" in m.message_id for m in queue.sent)


def test_a_customer_created_and_deleted_in_one_delivery_is_handled_in_order_outside_the_bulk_write() -> None:
    worker, dv, state, _, _ = make()
    worker.ctx.square.customers["C1"] = None  # type: ignore[attr-defined]
    deleted = command("customer.deleted", None, customer_id="C1", event_id="del-1")
    asyncio.run(worker.handle_batch([inbound(created(n)) for n in range(1, 6)] + [inbound(deleted)]))
    (contact,) = [row for row in dv.rows.values() if row.get("tb_squarecustomerid") == "C1"]
    assert contact["statecode"] == 1 and state.ledger[("customer", "C1")].status == "deleted"
    assert "create_multiple:contacts:4" in dv.calls  # C2..C5 in bulk, C1 one by one
