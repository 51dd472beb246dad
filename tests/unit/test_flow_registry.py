"""The one flow registry holds for every flow: a failure is recorded, listed, retried and resolved under the
same flow name by the worker, the ledger and the operations service (fail → fix in Square → retry → resolved)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from shared.core.errors import TerminalError
from shared.core.models import SyncCommand
from shared.core.ports import LedgerRow
from shared.ops.service import OpsService
from shared.pipeline.registry import FLOWS, KINDS, ROUTES, flow_of
from shared.pipeline.worker import RetryPolicy, Worker
from tests.fakes import FakeDataverse, FakeQueue, FakeSquare, FakeState, FixedClock, NoTraces, flow_context
from tests.unit.test_customer_flow import customer
from tests.unit.test_sales_flows import order, payment

# The flows people see, written out (not read from the registry under test).
EXPECTED_FLOWS = {
    "customer": "customers",
    "payment": "sales",
    "order": "sales",
    "refund": "refunds",
    "location": "locations",
    "catalog": "catalog",
    "contact": "crm-contacts",  # CRM → Square (its own fail → fix → retry cycle: tests/unit/test_crm_contacts.py)
}
SQUARE_KINDS = sorted(kind for kind in EXPECTED_FLOWS if kind != "contact")
REFUND = {
    "id": "R1",
    "payment_id": "P1",
    "order_id": "O1",
    "location_id": "L1",
    "status": "COMPLETED",
    "amount_money": {"amount": 600, "currency": "USD"},
    "updated_at": "2026-11-22T11:00:00Z",
}
LOCATION = {"id": "L1", "name": "West", "status": "ACTIVE"}
CATALOG = [{"type": "CATEGORY", "id": "K1", "category_data": {"name": "Tea"}}]


def square_with_everything() -> FakeSquare:
    return FakeSquare(
        customers={"C1": customer()},
        orders={"O1": order()},
        payments={"P1": payment()},
        refunds={"R1": REFUND},
        locations={"L1": LOCATION},
        catalog=CATALOG,
        catalog_latest="2026-11-22T10:00:00Z",
    )


def first_event(kind: str) -> SyncCommand:
    """The webhook event that first brings each kind (thin events carry no object)."""
    objects: dict[str, tuple[str, str, dict[str, Any] | None, str | None]] = {
        "customer": ("customer.created", "C1", customer(), "customer"),
        "payment": ("payment.created", "P1", payment(), "payment"),
        "order": ("order.updated", "O1", None, None),
        "refund": ("refund.created", "R1", REFUND, "refund"),
        "location": ("location.updated", "L1", None, None),
        "catalog": ("catalog.version.updated", "catalog", None, None),
    }
    event_type, entity_id, obj, key = objects[kind]
    data: dict[str, Any] = {"id": entity_id, "object": {key: obj} if key else {}}
    return SyncCommand(
        message_id="e1",
        event_id="e1",
        event_type=event_type,
        entity_kind=kind,
        entity_id=entity_id,
        received_at="2026-11-22T12:00:00+00:00",
        fetch=obj is None,
        event={"type": event_type, "data": data},
    )


def prepared_state(kind: str) -> FakeState:
    state = FakeState()
    if kind != "customer":  # the sale's buyer is already in the CRM
        state.ledger[("customer", "C1")] = LedgerRow(
            "customer", "C1", dataverse_id="c0ffee00-0000-0000-0000-000000000001", etag="1"
        )
    if kind == "refund":  # a refund waits for its sale
        state.ledger[("order", "O1")] = LedgerRow("order", "O1", updated_at="2026-11-22T10:00:00.000Z", etag="1")
    return state


def break_it(kind: str, dv: FakeDataverse, square: FakeSquare) -> Callable[[], None]:
    """Make the first attempt fail terminally; return the fix (the cause removed 'in Square')."""
    rejected = TerminalError("Dataverse 400 0x80044331: A validation error occurred.", reason_code="crm_rejected")
    if kind == "catalog":
        square.fail_next.append(TerminalError("Square 400 BAD_REQUEST", reason_code="square_rejected"))
        return lambda: None
    dv.fail_next.append(rejected)
    return lambda: None


def test_the_registry_names_the_documented_flows() -> None:
    assert {kind: flow_of(kind) for kind in KINDS} == EXPECTED_FLOWS
    assert set(FLOWS) == set(EXPECTED_FLOWS.values())
    assert {route.kind for route in ROUTES.values()} == set(SQUARE_KINDS)  # contacts come from the CRM


@pytest.mark.parametrize("kind", SQUARE_KINDS)
def test_fail_then_fix_then_retry_resolves_the_failure(kind: str) -> None:
    flow = EXPECTED_FLOWS[kind]
    dv, square, state, queue = FakeDataverse(), square_with_everything(), prepared_state(kind), FakeQueue()
    ctx = flow_context(dataverse=dv, state=state, square=square)
    worker = Worker(ctx=ctx, retry_queue=queue, policy=RetryPolicy(3, 1.0, 5.0), traces=NoTraces())
    ops = OpsService(state, NoTraces(), queue, FixedClock())
    fix = break_it(kind, dv, square)
    first = first_event(kind)

    asyncio.run(worker.handle(first.model_dump_json().encode()))
    failure = state.failures[(flow, first.entity_id)]
    assert failure.status == "open" and failure.reason_code in ("crm_rejected", "square_rejected")
    listed = asyncio.run(ops.list_failures(_open_in(flow)))
    assert [item["record_id"] for item in listed["items"]] == [first.entity_id]

    fix()
    asyncio.run(ops.retry(flow, first.entity_id))
    (retry_message,) = queue.sent
    assert SyncCommand.model_validate_json(retry_message.body).entity_kind == kind
    asyncio.run(worker.handle(retry_message.body.encode()))
    assert state.failures[(flow, first.entity_id)].status == "resolved"
    assert asyncio.run(ops.list_failures(_open_in(flow)))["items"] == []


def _open_in(flow: str) -> Any:
    from shared.ops.service import FailureFilter

    return FailureFilter(flow=flow, status="open")


def test_the_events_of_one_sale_wait_for_one_writer_and_other_objects_for_their_own() -> None:
    from shared.core.models import SyncCommand
    from shared.pipeline.registry import writer_key

    def command(kind: str, entity_id: str, data_object: dict[str, object] | None = None) -> SyncCommand:
        event = {"data": {"type": kind, "id": entity_id, "object": data_object or {}}}
        return SyncCommand(
            message_id="m",
            event_id="e",
            event_type=f"{kind}.updated",
            entity_kind=kind,
            entity_id=entity_id,
            received_at="2026-12-01T00:00:00Z",
            event=event,
        )

    assert writer_key(command("payment", "P1", {"payment": {"id": "P1", "order_id": "O1"}})) == ("sale", "O1")
    assert writer_key(command("refund", "R1", {"refund": {"id": "R1", "order_id": "O1"}})) == ("sale", "O1")
    assert writer_key(command("order", "O1")) == ("sale", "O1")
    assert writer_key(command("payment", "P2")) == ("payment", "P2")  # thin: the ledger's lease keeps it apart
    assert writer_key(command("customer", "C1", {"customer": {"id": "C1"}})) == ("customer", "C1")
