"""The client's bulk methods and the bulk writer against the Dataverse emulator (which enforces the
documented bulk rules: tests/contract/test_dataverse_bulk.py): the key only in @odata.id (a key also in
the body fails the create path — reference/dataverse.md §12), duplicate keys merged before sending,
all-or-nothing chunks retried row by row, CreateMultiple ids, and queries in one $batch of GETs."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from shared.adapters.dataverse_auth import StaticToken
from shared.adapters.dataverse_http import DataverseClient
from shared.adapters.rate_gate import RateGate
from shared.bulk.writer import BulkRow, BulkWriter
from shared.core.ports import BulkTarget
from tests.contract.conftest import DATAVERSE_TOKEN

KEY = "tb_squarecustomerid"


def _rows(dataverse: httpx.Client) -> list[dict[str, Any]]:
    return list(dataverse.get("/_control/tables/contacts").json())


def _with_client(dataverse: httpx.Client, scenario: Any) -> Any:
    async def run() -> Any:
        async with httpx.AsyncClient(timeout=30) as http:
            client = DataverseClient(
                base_url=str(dataverse.base_url),
                api_version="v9.2",
                tokens=StaticToken(DATAVERSE_TOKEN),
                gate=RateGate(4),
                http=http,
            )
            return await scenario(client)

    return asyncio.run(run())


def _keyed(key: str, **payload: Any) -> BulkTarget:
    return BulkTarget({KEY: key, **payload}, key={KEY: key})  # the key in the payload too: the client strips it


def test_upsert_multiple_creates_and_updates_by_alternate_key_with_the_key_in_odata_id_only(
    dataverse: httpx.Client,
) -> None:
    async def scenario(client: DataverseClient) -> None:
        await client.upsert_multiple(
            "contacts", "contact", [_keyed("K1", lastname="One"), _keyed("K2", lastname="Two")]
        )
        await client.upsert_multiple(
            "contacts", "contact", [_keyed("K1", lastname="Uno"), _keyed("K3", lastname="Three")]
        )

    _with_client(dataverse, scenario)  # the create path would answer 400 0x80040216 with the key in the body
    by_key = {r[KEY]: r["lastname"] for r in _rows(dataverse)}
    assert by_key == {"K1": "Uno", "K2": "Two", "K3": "Three"}


def test_create_multiple_returns_the_new_ids_in_order(dataverse: httpx.Client) -> None:
    async def scenario(client: DataverseClient) -> list[str]:
        return await client.create_multiple(
            "contacts", "contact", [{KEY: "N1", "lastname": "A"}, {KEY: "N2", "lastname": "B"}]
        )

    ids = _with_client(dataverse, scenario)
    by_id = {r["contactid"]: r[KEY] for r in _rows(dataverse)}
    assert [by_id[i] for i in ids] == ["N1", "N2"]


def test_the_writer_merges_duplicate_keys_and_turns_one_bad_row_into_one_failure(dataverse: httpx.Client) -> None:
    rows = [
        BulkRow(("C1",), BulkTarget({"lastname": "First"}, key={KEY: "C1"})),
        BulkRow(("C2",), BulkTarget({"lastname": "x" * 51}, key={KEY: "C2"})),  # longer than lastname's 50
        BulkRow(("C3",), BulkTarget({"lastname": "Third"}, key={KEY: "C3"})),
        BulkRow(("C1",), BulkTarget({"firstname": "Again"}, key={KEY: "C1"})),  # same key: merged, not refused
    ]

    async def scenario(client: DataverseClient) -> Any:
        return await BulkWriter(client, 100).write("contacts", "contact", rows)

    result = _with_client(dataverse, scenario)
    assert set(result.failed) == {"C2"} and result.failed["C2"].reason_code == "crm_rejected"
    by_key = {r[KEY]: (r.get("firstname"), r["lastname"]) for r in _rows(dataverse)}
    assert by_key == {"C1": ("Again", "First"), "C3": (None, "Third")}


def test_a_create_of_a_key_that_exists_falls_back_to_an_upsert(dataverse: httpx.Client) -> None:
    dataverse.post("/_control/tables/contacts", json=[{KEY: "E1", "lastname": "Live"}]).raise_for_status()
    rows = [
        BulkRow(("E1",), BulkTarget({"lastname": "Bulk"}, key={KEY: "E1"}), create=True),
        BulkRow(("E2",), BulkTarget({"lastname": "New"}, key={KEY: "E2"}), create=True),
    ]

    async def scenario(client: DataverseClient) -> Any:
        return await BulkWriter(client, 100).write("contacts", "contact", rows)

    result = _with_client(dataverse, scenario)
    assert result.failed == {} and result.fallbacks == 1
    assert sorted((r[KEY], r["lastname"]) for r in _rows(dataverse)) == [("E1", "Bulk"), ("E2", "New")]


def test_query_many_answers_several_filters_in_one_request(dataverse: httpx.Client) -> None:
    dataverse.post(
        "/_control/tables/contacts",
        json=[{"emailaddress1": "a@example.com", "lastname": "A"}, {"mobilephone": "(206) 555-0100", "lastname": "B"}],
    ).raise_for_status()
    dataverse.delete("/_control/stats")
    filters = [
        "emailaddress1 eq 'a@example.com'",
        "endswith(mobilephone,'0100') and contains(mobilephone,'555')",
        "lastname eq 'none'",
    ]

    async def scenario(client: DataverseClient) -> list[list[dict[str, Any]]]:
        return await client.query_many("contacts", filters, ["contactid", "lastname"])

    answers = _with_client(dataverse, scenario)
    assert [[r["lastname"] for r in rows] for rows in answers] == [["A"], ["B"], []]
    stats = dataverse.get("/_control/stats").json()
    assert stats["requests"] == 1
