"""Sales history in bulk over fakes: locations, transactions and lines, payments and refunds, each in
one bulk request per table and chunk, linked to buyers already in the CRM; gated like the live flows."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from shared.bulk.backfill import Backfill
from shared.bulk.context import BulkContext
from shared.bulk.writer import BulkWriter
from shared.config.location_owners import parse_location_owners
from shared.core.ports import LedgerRow
from shared.flows.context import SalesOptions
from tests.fakes import FakeDataverse, FakeHistory, FakeQueue, FakeSquare, FakeState, flow_context

OWNERS = '{"default_owner": "teams/11111111-1111-1111-1111-111111111111", "locations": {"L1": {"owner": "systemusers/22222222-2222-2222-2222-222222222222", "territory": "West"}}}'
CONTACT = "c0ffee00-0000-0000-0000-000000000001"


def order(n: int, customer: str | None = "C1") -> dict[str, Any]:
    at = f"2026-01-01T00:00:{n:02d}Z"
    found: dict[str, Any] = {
        "id": f"O{n}",
        "location_id": "L1",
        "state": "COMPLETED",
        "created_at": at,
        "updated_at": at,
        "version": 2,
        "total_money": {"amount": 1100, "currency": "USD"},
        "line_items": [
            {"uid": "u1", "name": "Tea", "quantity": "2", "total_money": {"amount": 1000, "currency": "USD"}}
        ],
    }
    if customer:
        found["customer_id"] = customer
    return found


def payment(n: int) -> dict[str, Any]:
    at = f"2026-01-01T00:00:{n:02d}Z"
    return {
        "id": f"P{n}",
        "order_id": f"O{n}",
        "customer_id": "C1",
        "status": "COMPLETED",
        "location_id": "L1",
        "created_at": at,
        "updated_at": at,
        "amount_money": {"amount": 1000, "currency": "USD"},
        "total_money": {"amount": 1100, "currency": "USD"},
        "receipt_number": f"R{n}",
    }


def key(column: str, value: str) -> str:
    return json.dumps({column: value})


def test_sales_history_lands_in_bulk_linked_to_the_buyer_and_the_store() -> None:
    history = FakeHistory(
        locations=[{"id": "L1", "name": "Main St", "status": "ACTIVE"}],
        orders=[order(n) for n in range(1, 4)] + [order(4, customer="UNKNOWN")],
        payments=[payment(n) for n in range(1, 4)],
        refunds=[
            {
                "id": "R1",
                "payment_id": "P1",
                "order_id": "O1",
                "status": "COMPLETED",
                "location_id": "L1",
                "created_at": "2026-01-02T00:00:00Z",
                "updated_at": "2026-01-02T00:00:00Z",
                "amount_money": {"amount": 500, "currency": "USD"},
            }
        ],
    )
    dataverse, state = FakeDataverse(), FakeState()
    state.ledger[("customer", "C1")] = LedgerRow("customer", "C1", dataverse_id=CONTACT, etag="1")
    ctx = flow_context(dataverse=dataverse, state=state, square=FakeSquare(orders={"O1": order(1)}))
    ctx.sales = SalesOptions(owners=parse_location_owners(OWNERS, "LOCATION_OWNERS")[0])
    bc = BulkContext(ctx=ctx, writer=BulkWriter(dataverse, 100), queue=FakeQueue())
    totals = asyncio.run(Backfill(bc, history, chunk_size=100).run("sales", None))

    tables = dataverse.tables
    location = tables["tb_locations"][key("tb_squarelocationid", "L1")]
    assert location["tb_name"] == "Main St" and location["tb_territoryname"] == "West"
    assert location["ownerid@odata.bind"].endswith("systemusers(22222222-2222-2222-2222-222222222222)")
    sale = tables["tb_transactions"][key("tb_squareorderid", "O1")]
    assert sale["tb_ContactId@odata.bind"] == f"/contacts({CONTACT})"
    assert sale["tb_totalamount"] == 11.0
    assert sale["tb_receiptnumber"] == "R1"  # written by the payment's row, as the live flow does
    assert "tb_ContactId@odata.bind" not in tables["tb_transactions"][key("tb_squareorderid", "O4")]
    line = tables["tb_transactionlines"][key("tb_squarelinekey", "O1.u1")]
    assert line["tb_name"] == "Tea" and line["tb_quantity"] == 2.0
    paid = tables["tb_payments"][key("tb_squarepaymentid", "P2")]
    assert paid["tb_TransactionId@odata.bind"] == "/tb_transactions(tb_squareorderid='O2')"
    refund = tables["tb_refunds"][key("tb_squarerefundid", "R1")]
    assert refund["tb_amount"] == 5.0 and refund["tb_ContactId@odata.bind"] == f"/contacts({CONTACT})"
    assert totals["orders"].created == 4 and totals["orders"].unmatched == 1
    assert totals["payments"].created == 3 and totals["refunds"].created == 1
    bulk_calls = [c for c in dataverse.calls if c.startswith("upsert_multiple")]
    assert sorted(bulk_calls) == sorted(
        [
            "upsert_multiple:tb_locations:1",
            "upsert_multiple:tb_transactions:4",
            "upsert_multiple:tb_transactionlines:4",
            "upsert_multiple:tb_transactions:3",
            "upsert_multiple:tb_payments:3",
            "upsert_multiple:tb_refunds:1",
        ]
    )
    assert state.ledger[("order", "O1")].version == 2

    again = asyncio.run(Backfill(bc, history, chunk_size=100).run("sales", None))
    assert again["orders"].unchanged == 4 and again["payments"].unchanged == 3 and again["refunds"].unchanged == 1
