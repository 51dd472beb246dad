"""With two-way sync on, the bulk paths never overwrite what the CRM owns: the batch worker hands customers to
the single path (which reads the CRM's values to decide), and a backfill writes only Square's columns."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from shared.bulk.customers import square_owned
from shared.bulk.writer import BulkRow, BulkWriter, WriteResult
from shared.pipeline.batch import BulkOptions, Inbound, handle_batch
from tests.two_way_kit import TwoWay
from tests.unit.test_customer_flow import command, customer

PAYLOAD = {"firstname": "Ada", "lastname": "Lovelace", "mobilephone": "+12065550100", "emailaddress1": "a@x.org"}


def test_a_backfill_writes_only_the_columns_square_owns() -> None:
    assert square_owned(TwoWay({}).ctx, PAYLOAD) == PAYLOAD  # one-way: everything, as before
    owned = square_owned(TwoWay({"mobilephone": "crm", "emailaddress1": "both"}).ctx, PAYLOAD)
    assert owned == {"firstname": "Ada", "lastname": "Lovelace"}


def test_the_batch_worker_sends_customers_one_by_one_when_the_crm_owns_a_field() -> None:
    kit = TwoWay({"mobilephone": "crm"})
    writes: list[object] = []

    class CountingWriter(BulkWriter):
        async def write(self, entity_set: str, entity: str, rows: Sequence[BulkRow]) -> WriteResult:
            writes.append(rows)
            return await super().write(entity_set, entity, rows)

    kit.customers_worker.bulk = BulkOptions(CountingWriter(kit.dataverse, 100), threshold=2)
    messages = [
        Inbound(
            command("customer.created", customer(f"C{i}", email_address=f"c{i}@example.com")).model_dump_json().encode()
        )
        for i in range(4)
    ]
    asyncio.run(handle_batch(kit.customers_worker, messages))
    assert writes == []
    keyed = {r.get("tb_squarecustomerid") for r in kit.dataverse.rows.values()}
    assert {f"C{i}" for i in range(4)} <= keyed  # each written by the single path
