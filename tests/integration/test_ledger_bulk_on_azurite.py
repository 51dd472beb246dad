"""Many ledger rows at once on Azurite: reads by key in one partition, writes as entity-group transactions,
and a transaction holding one row that changed since it was read falls back row by row (that row gets its
ConcurrencyError, the others are saved)."""

from __future__ import annotations

import asyncio

import pytest

from devstack.stack import Stack
from shared.adapters.table_state import table_state_store
from shared.core.errors import ConcurrencyError
from shared.core.ports import LedgerRow

pytestmark = pytest.mark.integration


def test_many_rows_are_read_and_written_at_once_with_each_rows_etag_rule(stack: Stack) -> None:
    store = table_state_store(stack.env["AzureWebJobsStorage"], "", "", "ledgerbulk")
    ids = [f"C{n:04d}" for n in range(130)] + ["odd/id#1"]  # more than one transaction; a key needing escape

    async def scenario() -> None:
        assert set((await store.get_ledgers("customer", ids)).values()) == {None}
        first = await store.save_ledgers([LedgerRow("customer", i, version=1) for i in ids])
        assert all(isinstance(row, LedgerRow) and row.etag for row in first)
        read = await store.get_ledgers("customer", [*ids, "MISSING"])
        assert read["MISSING"] is None and {row.version for i, row in read.items() if row} == {1}
        moved = read["C0007"]
        assert moved is not None
        moved.version = 2
        await store.save_ledger(moved)  # another writer moves one row on
        for row in read.values():
            if row is not None:
                row.version = 3
        rows = [row for i, row in read.items() if row is not None and i != "C0007"] + [first[7]]  # first[7]: stale etag
        second = await store.save_ledgers(rows)
        assert isinstance(second[-1], ConcurrencyError)
        assert all(isinstance(result, LedgerRow) for result in second[:-1])
        after = await store.get_ledgers("customer", ids)
        assert after["C0007"] is not None and after["C0007"].version == 2
        assert {row.version for i, row in after.items() if row and i != "C0007"} == {3}

    asyncio.run(scenario())
