"""$batch changesets: the client's builder and parser against the emulator — one request, all or nothing."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from shared.adapters.dataverse_auth import StaticToken
from shared.adapters.dataverse_http import DataverseClient
from shared.adapters.odata_batch import build_batch, parse_batch_response
from shared.adapters.rate_gate import RateGate
from shared.core.errors import TerminalError
from shared.core.ports import BatchOperation
from tests.contract.conftest import DATAVERSE_TOKEN

API = "/api/data/v9.2/"


def _client(dataverse: httpx.Client, http: httpx.AsyncClient) -> DataverseClient:
    return DataverseClient(
        base_url=str(dataverse.base_url),
        api_version="v9.2",
        tokens=StaticToken(DATAVERSE_TOKEN),
        gate=RateGate(4),
        http=http,
    )


def _sale(order: str, bad_line: bool = False) -> list[BatchOperation]:
    order_ref = f"/tb_transactions(tb_squareorderid='{order}')"
    line_extra = {"tb_nosuchcolumn": 1} if bad_line else {}
    return [
        BatchOperation("PATCH", "tb_locations(tb_squarelocationid='L1')", {"tb_name": "Square location L1"}),
        BatchOperation(
            "PATCH",
            f"tb_transactions(tb_squareorderid='{order}')",
            {
                "tb_name": f"Sale {order}",
                "tb_totalamount": 5.0,
                "tb_LocationId@odata.bind": "/tb_locations(tb_squarelocationid='L1')",
            },
        ),
        BatchOperation(
            "PATCH",
            f"tb_transactionlines(tb_squarelinekey='{order}.1')",
            {"tb_name": "Tea", "tb_TransactionId@odata.bind": order_ref},
        ),
        BatchOperation(
            "PATCH",
            f"tb_transactionlines(tb_squarelinekey='{order}.2')",
            {"tb_name": "Cake", "tb_TransactionId@odata.bind": order_ref, **line_extra},
        ),
    ]


def test_a_sale_is_one_request_and_every_row_links(dataverse: httpx.Client) -> None:
    dataverse.delete("/_control/stats")

    async def run() -> list[int]:
        async with httpx.AsyncClient() as http:
            return [r.status for r in await _client(dataverse, http).batch(_sale("O1"))]

    assert asyncio.run(run()) == [204, 204, 204, 204]
    stats = dataverse.get("/_control/stats").json()
    assert stats["requests"] == 1
    header = dataverse.get(API + "tb_transactions(tb_squareorderid='O1')").json()
    lines = dataverse.get(
        API + "tb_transactionlines", params={"$filter": f"_tb_transactionid_value eq {header['tb_transactionid']}"}
    ).json()["value"]
    assert sorted(line["tb_name"] for line in lines) == ["Cake", "Tea"]
    assert (
        header["_tb_locationid_value"]
        == dataverse.get(API + "tb_locations(tb_squarelocationid='L1')").json()["tb_locationid"]
    )


def test_a_failing_part_rolls_the_whole_changeset_back(dataverse: httpx.Client) -> None:
    async def run() -> None:
        async with httpx.AsyncClient() as http:
            await _client(dataverse, http).batch(_sale("O2", bad_line=True))

    with pytest.raises(TerminalError) as caught:
        asyncio.run(run())
    assert "0x80060888" in str(caught.value)
    assert dataverse.get(API + "tb_transactions(tb_squareorderid='O2')").status_code == 404
    assert dataverse.get(API + "tb_transactionlines(tb_squarelinekey='O2.1')").status_code == 404


def test_repeating_a_batch_is_harmless(dataverse: httpx.Client) -> None:
    async def run() -> None:
        async with httpx.AsyncClient() as http:
            client = _client(dataverse, http)
            await client.batch(_sale("O3"))
            await client.batch(_sale("O3"))

    asyncio.run(run())
    rows = dataverse.get("/_control/tables/tb_transactionlines").json()
    assert len([r for r in rows if r["tb_squarelinekey"].startswith("O3.")]) == 2


def test_content_id_references_and_continue_on_error(dataverse: httpx.Client) -> None:
    root = f"{dataverse.base_url}{API}"
    content_type, body = build_batch(
        [
            BatchOperation("POST", "tb_locations", {"tb_name": "Referenced", "tb_squarelocationid": "L9"}),
            BatchOperation(
                "PATCH", "tb_transactions(tb_squareorderid='O9')", {"tb_name": "x", "tb_LocationId@odata.bind": "$1"}
            ),
        ],
        root,
    )
    response = dataverse.post(API + "$batch", content=body, headers={"Content-Type": content_type})
    parts = parse_batch_response(response.headers["Content-Type"], response.content)
    assert response.status_code == 200 and [p.status for p in parts] == [204, 204]
    order = dataverse.get(API + "tb_transactions(tb_squareorderid='O9')").json()
    assert (
        order["_tb_locationid_value"]
        == dataverse.get(API + "tb_locations(tb_squarelocationid='L9')").json()["tb_locationid"]
    )
    bad_type, bad_body = build_batch([BatchOperation("PATCH", "nosuchset(x='1')", {})], root)
    failed = dataverse.post(API + "$batch", content=bad_body, headers={"Content-Type": bad_type})
    assert failed.status_code == 400
    assert parse_batch_response(failed.headers["Content-Type"], failed.content)[0].status == 404
