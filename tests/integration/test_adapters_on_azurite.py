"""The storage adapters against real Azurite: ledger ETag concurrency, failures, delayed queue messages,
and the reconcile pass that repairs what missed webhooks left behind."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import httpx
import pytest
from azure.storage.queue import QueueClient

from devstack.stack import Stack
from shared.adapters.square_http import SquareClient
from shared.adapters.storage_queue import decode_envelope, storage_queue
from shared.adapters.table_state import table_state_store
from shared.core.errors import ConcurrencyError
from shared.core.ports import FailureRecord, LedgerRow, OutboundMessage
from shared.monitoring.metrics import SystemClock
from shared.pipeline.reconcile import reconcile_customers
from tests.stackkit import StackKit

pytestmark = pytest.mark.integration


def test_ledger_rows_are_etag_guarded(stack: Stack) -> None:
    store = table_state_store(stack.env["AzureWebJobsStorage"], "", "", "adaptertest")

    async def scenario() -> None:
        row = await store.save_ledger(LedgerRow(kind="customer", square_id="ETAG1", version=1, dataverse_id="d1"))
        first, second = await store.get_ledger("customer", "ETAG1"), await store.get_ledger("customer", "ETAG1")
        assert first is not None and second is not None and first.etag == row.etag
        first.version = 2
        await store.save_ledger(first)
        second.version = 3
        with pytest.raises(ConcurrencyError):
            await store.save_ledger(second)  # read before the other writer's change: refused
        with pytest.raises(ConcurrencyError):
            await store.save_ledger(LedgerRow(kind="customer", square_id="ETAG1"))  # insert of an existing row
        stored = await store.get_ledger("customer", "ETAG1")
        assert stored is not None and stored.version == 2 and stored.dataverse_id == "d1"

    asyncio.run(scenario())


def test_failure_records_count_attempts_and_resolve(stack: Stack) -> None:
    store = table_state_store(stack.env["AzureWebJobsStorage"], "", "", "adaptertest")

    async def scenario() -> None:
        for attempt in range(2):
            await store.record_failure(
                FailureRecord(
                    flow="customers",
                    record_id="odd/id#1",
                    reason_code="invalid_data",
                    message=f"try {attempt}",
                    event_id=f"e{attempt}",
                    event_type="customer.updated",
                    field="email_address",
                    first_seen=f"t{attempt}",
                    last_seen=f"t{attempt}",
                )
            )
        (failure,) = [f for f in await store.list_failures("customers") if f.record_id == "odd/id#1"]
        assert (failure.attempts, failure.first_seen, failure.last_seen, failure.message) == (2, "t0", "t1", "try 1")
        await store.resolve_failure("customers", "odd/id#1", "fixed")
        (failure,) = [f for f in await store.list_failures("customers") if f.record_id == "odd/id#1"]
        assert failure.status == "resolved"

    asyncio.run(scenario())


def test_delayed_message_stays_invisible_until_due(stack: Stack) -> None:
    connection = stack.env["AzureWebJobsStorage"]
    queue = storage_queue(connection, "delaytest")
    asyncio.run(
        queue.send(OutboundMessage("m1", "customer:X", '{"hello":1}', delay_seconds=2, properties={"event_id": "m1"}))
    )
    client = QueueClient.from_connection_string(connection, "delaytest")
    assert list(client.receive_messages(max_messages=1)) == []
    time.sleep(2.5)
    (message,) = list(client.receive_messages(max_messages=1))
    envelope = decode_envelope(message.content)
    assert (envelope.message_id, envelope.session_id, envelope.body, envelope.properties) == (
        "m1",
        "customer:X",
        '{"hello":1}',
        {"event_id": "m1"},
    )


def test_reconcile_repairs_changes_whose_webhooks_never_arrived(kit: StackKit, stack: Stack) -> None:
    customer = kit.create(given_name="Missed", email_address="missed@example.com")
    kit.converge({customer["id"]})
    kit.delivery(paused=True)  # Square's webhooks stop arriving
    kit.update(customer["id"], given_name="Changed while nobody listened")
    env = stack.env

    async def run_reconcile() -> tuple[str, ...]:
        async with httpx.AsyncClient() as http:
            square = SquareClient(
                base_url=env["SQUARE_BASE_URL"],
                access_token=env["SQUARE_ACCESS_TOKEN"],
                api_version="2025-08-20",
                http=http,
            )
            report = await reconcile_customers(
                square=square,
                state=table_state_store(env["AzureWebJobsStorage"], "", "", "tillbridge"),
                queue=storage_queue(env["AzureWebJobsStorage"], env["SQUARE_EVENTS_QUEUE"]),
                now=SystemClock().now(),
                lag=timedelta(minutes=5),
                first_lookback=timedelta(hours=1),
            )
            return report.enqueued_ids

    assert customer["id"] in asyncio.run(run_reconcile())
    from tests.stackkit import wait_until

    wait_until(lambda: kit.assert_crm_matches_square({customer["id"]}), timeout=60)
    assert customer["id"] not in asyncio.run(run_reconcile())  # repaired: the overlap is de-duplicated by the gate


def test_a_delete_whose_webhook_never_arrived_is_found_and_repaired(kit: StackKit, stack: Stack) -> None:
    from shared.pipeline.reconcile import sweep_for_missed_deletes
    from tests.stackkit import wait_until

    customer = kit.create(given_name="Vanishing", email_address="vanishing@example.com")
    kit.converge({customer["id"]})
    kit.delivery(paused=True)  # the customer.deleted webhook is lost
    kit.delete(customer["id"])
    env = stack.env

    async def sweep() -> tuple[str, ...]:
        async with httpx.AsyncClient() as http:
            square = SquareClient(
                base_url=env["SQUARE_BASE_URL"],
                access_token=env["SQUARE_ACCESS_TOKEN"],
                api_version="2025-08-20",
                http=http,
            )
            found: list[str] = []
            while True:  # a whole pass over the ledger, however many slices it takes
                report = await sweep_for_missed_deletes(
                    square=square,
                    state=table_state_store(env["AzureWebJobsStorage"], "", "", "tillbridge"),
                    queue=storage_queue(env["AzureWebJobsStorage"], env["SQUARE_EVENTS_QUEUE"]),
                    now=SystemClock().now(),
                    batch_size=500,
                )
                found += report.deleted_ids
                if report.wrapped:
                    return tuple(found)

    assert customer["id"] in asyncio.run(sweep())

    def deactivated() -> None:
        rows = [c for c in kit.contacts() if c.get("tb_squarecustomerid") == customer["id"]]
        assert len(rows) == 1 and rows[0]["statecode"] == 1

    wait_until(deactivated, timeout=60)
    assert customer["id"] not in asyncio.run(sweep())  # repaired: no longer active in the CRM


def test_traces_keep_timeline_and_snapshots_until_they_expire(stack: Stack) -> None:
    from datetime import UTC, datetime

    from shared.adapters.trace_store import trace_store
    from shared.monitoring.tracing import AttemptTrace

    store = trace_store(stack.env["AzureWebJobsStorage"], "", "", "", "purgetest")
    old = AttemptTrace(
        "customers",
        "OLD1",
        "e-old",
        "customer.updated",
        1,
        1,
        "2020-01-01T00:00:00+00:00",
        outcome="written",
        command_json='{"event_id": "e-old"}',
    )
    old.snapshot("square_object", {"id": "OLD1"})
    new = AttemptTrace(
        "customers",
        "NEW1",
        "e-new",
        "customer.updated",
        1,
        1,
        datetime.now(UTC).isoformat(),
        outcome="written",
        command_json='{"event_id": "e-new"}',
    )

    async def scenario() -> None:
        await store.save(old)
        await store.save(new)
        (summary,) = await store.timeline("customers", "OLD1")
        assert (await store.snapshot(summary.snapshot_ref))["snapshots"]["square_object"] == {"id": "OLD1"}  # type: ignore[index]
        assert await store.purge(datetime(2021, 1, 1, tzinfo=UTC)) == 1
        assert await store.timeline("customers", "OLD1") == [] and await store.snapshot(summary.snapshot_ref) is None
        assert len(await store.timeline("customers", "NEW1")) == 1

    asyncio.run(scenario())
