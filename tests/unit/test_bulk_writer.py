"""The bulk writer over the fake Dataverse (which enforces the bulk rules): de-duplication by address,
chunking by request size, CreateMultiple for new rows, and the per-row fallback of a refused chunk."""

from __future__ import annotations

import asyncio

from shared.bulk.writer import BulkRow, BulkWriter, dedupe
from shared.core.ports import BulkTarget
from tests.fakes import FakeDataverse


def keyed(ref: str, key: str, **payload: object) -> BulkRow:
    return BulkRow((ref,), BulkTarget(payload, key={"tb_squarecustomerid": key}))


def test_duplicate_keys_in_one_chunk_are_merged_later_values_winning() -> None:
    rows = [keyed("a", "K1", firstname="Old", lastname="Keep"), keyed("b", "K2"), keyed("c", "K1", firstname="New")]
    merged = dedupe(rows)
    assert len(merged) == 2
    first = next(r for r in merged if r.target.key["tb_squarecustomerid"] == "K1")
    assert dict(first.target.payload) == {"firstname": "New", "lastname": "Keep"}
    assert first.refs == ("a", "c")


def test_a_chunk_with_a_duplicate_key_is_sent_once_and_accepted() -> None:
    dataverse = FakeDataverse()
    rows = [keyed("a", "K1", firstname="A"), keyed("a", "K1", firstname="B")]
    result = asyncio.run(BulkWriter(dataverse, 10).write("contacts", "contact", rows))
    assert result.failed == {}
    assert [row["firstname"] for row in dataverse.rows.values()] == ["B"]
    assert dataverse.calls == ["upsert_multiple:contacts:1"]


def test_rows_are_sent_in_requests_of_the_configured_size() -> None:
    dataverse = FakeDataverse()
    rows = [keyed(str(n), f"K{n}", firstname=str(n)) for n in range(25)]
    result = asyncio.run(BulkWriter(dataverse, 10).write("contacts", "contact", rows))
    assert sorted(dataverse.calls) == sorted(["upsert_multiple:contacts:10"] * 2 + ["upsert_multiple:contacts:5"])
    assert result.requests == 3
    assert len(dataverse.rows) == 25


def test_new_rows_go_through_create_multiple_and_their_ids_come_back() -> None:
    dataverse = FakeDataverse()
    rows = [
        BulkRow((f"C{n}",), BulkTarget({"firstname": "x"}, key={"tb_squarecustomerid": f"C{n}"}), create=True)
        for n in range(3)
    ]
    result = asyncio.run(BulkWriter(dataverse, 100).write("contacts", "contact", rows))
    assert dataverse.calls == ["create_multiple:contacts:3"]
    assert set(result.ids.values()) == set(dataverse.rows)
    assert {row["tb_squarecustomerid"] for row in dataverse.rows.values()} == {"C0", "C1", "C2"}


def test_a_refused_chunk_is_retried_row_by_row_so_one_bad_row_is_one_failure() -> None:
    dataverse = FakeDataverse(reject=lambda payload: payload.get("firstname") == "BAD")
    rows = [keyed(str(n), f"K{n}", firstname="BAD" if n == 3 else f"ok{n}") for n in range(6)]
    result = asyncio.run(BulkWriter(dataverse, 10).write("contacts", "contact", rows))
    assert set(result.failed) == {"3"}
    assert result.failed["3"].reason_code == "crm_rejected"
    assert sorted(row["firstname"] for row in dataverse.rows.values()) == ["ok0", "ok1", "ok2", "ok4", "ok5"]
    assert result.fallbacks == 1
    assert result.requests == 1 + 6


def test_a_create_that_races_a_live_create_falls_back_to_an_upsert_by_key() -> None:
    dataverse = FakeDataverse()
    existing = dataverse.seed(tb_squarecustomerid="C1", firstname="live")
    rows = [BulkRow(("C1",), BulkTarget({"firstname": "bulk"}, key={"tb_squarecustomerid": "C1"}), create=True)]
    result = asyncio.run(BulkWriter(dataverse, 100).write("contacts", "contact", rows))
    assert result.failed == {}
    assert list(dataverse.rows) == [existing]
    assert dataverse.rows[existing]["firstname"] == "bulk"
