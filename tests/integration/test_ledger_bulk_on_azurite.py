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


def test_a_kind_spread_over_partitions_pages_every_row_once_and_bulk_results_keep_their_order(stack: Stack) -> None:
    """The ledger spreads each kind over hash buckets (one partition per kind scans on every look-up in
    Azurite and caps throughput in Azure); paging still visits every row exactly once, whatever the page
    size, and a bulk save answers row by row in the order it was given."""
    from shared.adapters.table_state import ledger_keys

    store = table_state_store(stack.env["AzureWebJobsStorage"], "", "", "ledgerpages")
    ids = [f"P{n:03d}" for n in range(90)]
    assert len({ledger_keys("customer", i)[0] for i in ids}) > 8  # really spread

    async def scenario() -> None:
        saved = await store.save_ledgers([LedgerRow("customer", i, version=n) for n, i in enumerate(ids)])
        assert [row.square_id for row in saved if isinstance(row, LedgerRow)] == ids
        await store.save_ledger(LedgerRow("order", "O1", version=1))  # another kind stays out of the pages
        for size in (1, 7, 90, 500):
            seen: list[str] = []
            after: str | None = None
            while True:
                rows, after = await store.ledger_page("customer", after, size)
                assert len(rows) <= size
                seen += [row.square_id for row in rows]
                if after is None:
                    break
            assert sorted(seen) == ids and len(seen) == len(ids), size
        assert sorted(row.square_id for row in await store.list_ledger("customer")) == ids

    asyncio.run(scenario())
