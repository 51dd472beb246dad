"""The store-activity flows over in-memory fakes: one $batch per sale, gates, waits, aggregates, cases."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.config.location_owners import parse_location_owners
from shared.core.errors import TerminalError, TransientError
from shared.core.models import SyncCommand
from shared.core.ports import LedgerRow
from shared.flows.catalog import sync_catalog
from shared.flows.context import Outcome, SalesOptions
from shared.flows.locations import sync_location
from shared.flows.refunds import sync_refund
from shared.flows.sales import sync_order, sync_payment
from tests.fakes import FakeDataverse, FakeSquare, FakeState, flow_context

OWNERS = '{"default_owner": "teams/11111111-1111-1111-1111-111111111111", "locations": {"L1": {"owner": "systemusers/22222222-2222-2222-2222-222222222222", "territory": "West"}}}'


def order(
    order_id: str = "O1", customer: str | None = "C1", updated: str = "2026-11-22T10:00:00.000Z"
) -> dict[str, Any]:
    found: dict[str, Any] = {
        "id": order_id,
        "location_id": "L1",
        "state": "COMPLETED",
        "created_at": updated,
        "updated_at": updated,
        "total_money": {"amount": 1100, "currency": "USD"},
        "total_tip_money": {"amount": 100, "currency": "USD"},
        "line_items": [
            {
                "uid": "u1",
                "name": "Tea",
                "quantity": "2",
                "catalog_object_id": "V1",
                "base_price_money": {"amount": 500, "currency": "USD"},
                "total_money": {"amount": 1000, "currency": "USD"},
            }
        ],
    }
    if customer:
        found["customer_id"] = customer
    return found


def payment(
    payment_id: str = "P1",
    order_id: str | None = "O1",
    status: str = "COMPLETED",
    updated: str = "2026-11-22T10:00:01.000Z",
    **extra: Any,
) -> dict[str, Any]:
    found = {
        "id": payment_id,
        "status": status,
        "location_id": "L1",
        "created_at": updated,
        "updated_at": updated,
        "amount_money": {"amount": 1000, "currency": "USD"},
        "total_money": {"amount": 1100, "currency": "USD"},
        "receipt_number": payment_id[:4],
        **extra,
    }
    if order_id:
        found["order_id"] = order_id
    return found


def command(
    kind: str, event_type: str, entity_id: str, obj: dict[str, Any] | None = None, key: str = "", event_id: str = "e1"
) -> SyncCommand:
    data_object = {key: obj} if obj is not None else {}
    return SyncCommand(
        message_id=event_id,
        event_id=event_id,
        event_type=event_type,
        entity_kind=kind,
        entity_id=entity_id,
        received_at="2026-11-22T10:00:02+00:00",
        fetch=obj is None,
        event={"type": event_type, "data": {"id": entity_id, "object": data_object}},
    )


def setup() -> tuple[Any, FakeDataverse, FakeState, FakeSquare]:
    dv, state, square = FakeDataverse(), FakeState(), FakeSquare(orders={"O1": order()})
    state.ledger[("customer", "C1")] = LedgerRow(
        "customer", "C1", dataverse_id="c0ffee00-0000-0000-0000-000000000001", etag="1"
    )
    ctx = flow_context(dataverse=dv, state=state, square=square)
    ctx.sales = SalesOptions(owners=parse_location_owners(OWNERS, "LOCATION_OWNERS")[0], refund_case_threshold=5.0)
    return ctx, dv, state, square


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_a_sale_is_one_batch_with_transaction_lines_payment_and_aggregates() -> None:
    ctx, dv, state, square = setup()
    assert run(sync_payment(command("payment", "payment.updated", "P1", payment(), "payment"), ctx)) is Outcome.WRITTEN
    (batch,) = dv.batches
    paths = [op.path for op in batch]
    assert paths == [
        "tb_locations(tb_squarelocationid='L1')",
        "tb_transactions(tb_squareorderid='O1')",
        "tb_transactionlines(tb_squarelinekey='O1.u1')",
        "tb_payments(tb_squarepaymentid='P1')",
        "contacts(c0ffee00-0000-0000-0000-000000000001)",
    ]
    header = batch[1].body or {}
    assert header["tb_totalamount"] == 11.0 and header["tb_tipamount"] == 1.0
    assert header["tb_ContactId@odata.bind"] == "/contacts(c0ffee00-0000-0000-0000-000000000001)"
    assert header["ownerid@odata.bind"] == "/systemusers(22222222-2222-2222-2222-222222222222)"
    assert (batch[4].body or {})["tb_visitcount"] == 1 and batch[4].headers == {"If-Match": "*"}
    assert square.calls == [
        "batch_retrieve_orders:1",
        "batch_retrieve_catalog:1",
    ]  # the order, and a catalog cache miss
    assert state.ledger[("payment", "P1")].updated_at and state.ledger[("order", "O1")].updated_at


def test_replayed_payment_writes_nothing_and_counts_nothing_twice() -> None:
    ctx, dv, _state, _ = setup()
    event = command("payment", "payment.updated", "P1", payment(), "payment")
    run(sync_payment(event, ctx))
    assert run(sync_payment(event, ctx)) is Outcome.STALE
    assert len(dv.batches) == 1


def test_payment_before_its_customer_waits() -> None:
    ctx, _, _state, square = setup()
    square.orders["O2"] = order("O2", customer="C9")
    with pytest.raises(TransientError, match="C9"):
        run(sync_payment(command("payment", "payment.created", "P2", payment("P2", "O2"), "payment"), ctx))


def test_order_not_yet_visible_waits_and_payment_without_order_is_just_a_payment() -> None:
    ctx, dv, _, _ = setup()
    with pytest.raises(TransientError, match="not visible"):
        run(sync_payment(command("payment", "payment.created", "P3", payment("P3", "MISSING"), "payment"), ctx))
    run(sync_payment(command("payment", "payment.created", "P4", payment("P4", None), "payment"), ctx))
    assert [op.path.split("(")[0] for op in dv.batches[-1]] == ["tb_locations", "tb_payments"]


def test_guest_checkout_creates_one_contact_and_links_it() -> None:
    ctx, dv, _, square = setup()
    square.orders["O5"] = order("O5", customer=None)
    run(
        sync_payment(
            command(
                "payment",
                "payment.created",
                "P5",
                payment("P5", "O5", buyer_email_address="Guest@Example.com"),
                "payment",
            ),
            ctx,
        )
    )
    guests = [r for r in dv.rows.values() if str(r.get("tb_squarecustomerid", "")).startswith("guest-")]
    assert len(guests) == 1 and guests[0]["emailaddress1"] == "Guest@Example.com"
    header = dv.batches[-1][1].body or {}
    assert header["tb_ContactId@odata.bind"] == f"/contacts({guests[0]['contactid']})"


def test_unmapped_store_is_reported_once_and_uses_the_default_owner() -> None:
    ctx, dv, state, square = setup()
    for index in range(2):
        square.orders[f"OX{index}"] = {**order(f"OX{index}"), "location_id": "L9"}
        run(
            sync_payment(
                command(
                    "payment",
                    "payment.created",
                    f"PX{index}",
                    {**payment(f"PX{index}", f"OX{index}"), "location_id": "L9"},
                    "payment",
                ),
                ctx,
            )
        )
    failure = state.failures[("locations", "L9")]
    assert failure.reason_code == "needs_mapping" and failure.attempts == 1
    assert (dv.batches[-1][1].body or {})["ownerid@odata.bind"] == "/teams(11111111-1111-1111-1111-111111111111)"


def test_refund_waits_for_its_sale_then_updates_transaction_stats_and_opens_a_case() -> None:
    ctx, dv, _state, square = setup()
    refund = {
        "id": "P1_R1",
        "payment_id": "P1",
        "order_id": "O1",
        "location_id": "L1",
        "status": "COMPLETED",
        "amount_money": {"amount": 600, "currency": "USD"},
        "updated_at": "2026-11-22T11:00:00Z",
        "reason": "cold",
    }
    with pytest.raises(TransientError, match="not reached the CRM"):
        run(sync_refund(command("refund", "refund.updated", "P1_R1", refund, "refund"), ctx))
    run(sync_payment(command("payment", "payment.updated", "P1", payment(), "payment"), ctx))
    square.orders["O1"] = {
        **order(),
        "refunds": [{"status": "COMPLETED", "amount_money": {"amount": 600, "currency": "USD"}}],
    }
    assert (
        run(sync_refund(command("refund", "refund.updated", "P1_R1", refund, "refund", "e2"), ctx)) is Outcome.WRITTEN
    )
    batch = dv.batches[-1]
    assert [op.path.split("(")[0] for op in batch] == ["tb_refunds", "tb_transactions", "contacts", "incidents"]
    assert (batch[1].body or {})["tb_state"] == "PARTIALLY_REFUNDED" and batch[1].headers == {"If-Match": "*"}
    assert (batch[2].body or {})["tb_lifetimevalue"] == 5.0
    assert (batch[3].body or {})["customerid_contact@odata.bind"].startswith("/contacts(")


def test_thin_order_update_fetches_and_gates() -> None:
    ctx, dv, _, square = setup()
    assert run(sync_order(command("order", "order.updated", "O1"), ctx)) is Outcome.WRITTEN
    assert run(sync_order(command("order", "order.updated", "O1", event_id="e2"), ctx)) is Outcome.STALE
    square.orders["O1"] = order(updated="2026-11-22T12:00:00.000Z")
    assert run(sync_order(command("order", "order.updated", "O1", event_id="e3"), ctx)) is Outcome.WRITTEN
    assert len(dv.batches) == 2


def test_location_and_catalog() -> None:
    ctx, dv, state, square = setup()
    square.locations["L1"] = {"id": "L1", "name": "Grant Park", "currency": "USD", "status": "ACTIVE"}
    run(sync_location(command("location", "location.created", "L1"), ctx))
    row = next(r for r in dv.rows.values() if r.get("tb_squarelocationid") == "L1")
    assert row["tb_name"] == "Grant Park" and row["tb_territoryname"] == "West"
    square.catalog = [
        {"type": "CATEGORY", "id": "K1", "category_data": {"name": "Drinks"}},
        {
            "type": "ITEM",
            "id": "I1",
            "item_data": {
                "name": "Tea",
                "categories": [{"id": "K1"}],
                "variations": [{"id": "V1", "item_variation_data": {"name": "Mug", "sku": "T-1"}}],
            },
        },
    ]
    square.catalog_latest = "2026-11-22T10:00:00Z"
    run(sync_catalog(command("catalog", "catalog.version.updated", "catalog"), ctx))
    assert state.cursors["catalog:version"] == "2026-11-22T10:00:00Z"
    run(sync_payment(command("payment", "payment.updated", "P1", payment(), "payment"), ctx))
    line = dv.batches[-1][1 if dv.batches[-1][0].path.startswith("tb_transactions") else 2].body or {}
    assert line["tb_categoryname"] == "Drinks" and line["tb_sku"] == "T-1"


def test_a_customer_claimed_but_not_yet_written_makes_the_sale_wait() -> None:
    ctx, _, state, _ = setup()
    state.ledger[("customer", "C1")] = LedgerRow("customer", "C1", pending_version=0, etag="1")
    with pytest.raises(TransientError, match="right now"):
        run(sync_payment(command("payment", "payment.updated", "P1", payment(), "payment"), ctx))
    state.ledger[("customer", "C1")] = LedgerRow(
        "customer", "C1", failure_open=True, etag="2"
    )  # it failed: sell without it
    assert run(sync_payment(command("payment", "payment.updated", "P1", payment(), "payment"), ctx)) is Outcome.WRITTEN


def test_fresh_fetch_uses_squares_copy_and_a_vanished_object_is_a_clear_terminal_failure() -> None:
    ctx, dv, _, square = setup()
    square.payments["P5"] = payment("P5", "O1")
    assert run(sync_payment(command("payment", "payment.updated", "P5"), ctx)) is Outcome.WRITTEN
    assert any(op.path.startswith("tb_payments") for op in dv.batches[-1])
    for flow, kind in ((sync_payment, "payment"), (sync_refund, "refund")):
        with pytest.raises(TerminalError, match=f"{kind} GONE does not exist in Square") as caught:
            run(flow(command(kind, f"{kind}.updated", "GONE"), ctx))
        assert caught.value.reason_code == "source_not_found"


SURVIVOR_CONTACT = "c0ffee00-0000-0000-0000-0000000000b2"


def merged_setup() -> tuple[Any, FakeDataverse, FakeState, FakeSquare]:
    """C1 was merged into C2 in Square: the ledger follows the merge to C2's contact."""
    ctx, dv, state, square = setup()
    state.ledger[("customer", "C1")] = LedgerRow("customer", "C1", status="merged", merged_into="C2", etag="1")
    state.ledger[("customer", "C2")] = LedgerRow("customer", "C2", dataverse_id=SURVIVOR_CONTACT, etag="1")
    return ctx, dv, state, square


def test_every_commerce_flow_links_a_merged_buyer_to_the_survivor() -> None:
    ctx, dv, _state, square = merged_setup()
    survivor = f"/contacts({SURVIVOR_CONTACT})"
    run(sync_payment(command("payment", "payment.updated", "P1", payment(), "payment"), ctx))
    assert (dv.batches[-1][1].body or {})["tb_ContactId@odata.bind"] == survivor
    square.orders["O1"] = order(updated="2026-11-22T12:00:00.000Z")
    assert run(sync_order(command("order", "order.updated", "O1", event_id="e2"), ctx)) is Outcome.WRITTEN
    header = next(op for op in dv.batches[-1] if op.path.startswith("tb_transactions("))
    assert (header.body or {})["tb_ContactId@odata.bind"] == survivor
    square.orders["O1"] = {
        **order(updated="2026-11-22T13:00:00.000Z"),
        "refunds": [{"status": "COMPLETED", "amount_money": {"amount": 600, "currency": "USD"}}],
    }
    refund = {
        "id": "P1_R1",
        "payment_id": "P1",
        "order_id": "O1",
        "location_id": "L1",
        "status": "COMPLETED",
        "amount_money": {"amount": 600, "currency": "USD"},
        "updated_at": "2026-11-22T13:00:00Z",
    }
    run(sync_refund(command("refund", "refund.updated", "P1_R1", refund, "refund", "e3"), ctx))
    refund_row = dv.batches[-1][0]
    assert (refund_row.body or {})["tb_ContactId@odata.bind"] == survivor
    assert [op.path for op in dv.batches[-1] if op.path.startswith("contacts(")] == [survivor.lstrip("/")]


def test_a_refund_of_a_guest_sale_reaches_the_guest_contact() -> None:
    ctx, dv, _state, square = setup()
    square.orders["O5"] = order("O5", customer=None)
    guest_payment = payment("P5", "O5", buyer_email_address="Guest@Example.com")
    square.payments["P5"] = guest_payment
    run(sync_payment(command("payment", "payment.created", "P5", guest_payment, "payment"), ctx))
    (guest,) = [r for r in dv.rows.values() if str(r.get("tb_squarecustomerid", "")).startswith("guest-")]
    square.orders["O5"] = {
        **order("O5", customer=None, updated="2026-11-22T12:00:00.000Z"),
        "refunds": [{"status": "COMPLETED", "amount_money": {"amount": 600, "currency": "USD"}}],
    }
    refund = {
        "id": "P5_R1",
        "payment_id": "P5",
        "order_id": "O5",
        "location_id": "L1",
        "status": "COMPLETED",
        "amount_money": {"amount": 600, "currency": "USD"},  # above the case threshold of 5
        "updated_at": "2026-11-22T12:00:00Z",
    }
    run(sync_refund(command("refund", "refund.created", "P5_R1", refund, "refund", "e2"), ctx))
    batch = dv.batches[-1]
    contact = f"contacts({guest['contactid']})"
    assert (batch[0].body or {})["tb_ContactId@odata.bind"] == "/" + contact
    aggregates = next(op for op in batch if op.path == contact)
    assert (aggregates.body or {})["tb_lifetimevalue"] == 5.0  # 11.00 paid, 6.00 refunded
    assert any(op.path.startswith("incidents(") for op in batch)
