"""The Square client's commerce calls against the emulator (real HTTP): orders (batched), payments,
refunds, locations, catalog changes since a version."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from shared.adapters.square_http import SquareClient
from shared.core.coalesce import Coalescer
from tests.contract.conftest import SQUARE_TOKEN
from tests.contract.test_square_commerce import _shop


def _client(square: httpx.Client, http: httpx.AsyncClient) -> SquareClient:
    return SquareClient(base_url=str(square.base_url), access_token=SQUARE_TOKEN, api_version="2025-08-20", http=http)


def test_reads_every_commerce_object(square: httpx.Client) -> None:
    shop = _shop(square)
    refund = square.post("/_control/refunds", json={"payment_id": shop["payment"]["id"], "amount": 50}).json()

    async def scenario() -> dict[str, Any]:
        async with httpx.AsyncClient() as http:
            client = _client(square, http)
            return {
                "order": await client.retrieve_order(shop["order"]["id"]),
                "missing": await client.retrieve_order("NOPE"),
                "payment": await client.get_payment(shop["payment"]["id"]),
                "refund": await client.get_refund(refund["id"]),
                "location": await client.retrieve_location(shop["location"]["id"]),
                "catalog": await client.search_catalog_changed_since("2000-01-01T00:00:00Z"),
            }

    found = asyncio.run(scenario())
    assert found["order"]["id"] == shop["order"]["id"] and found["missing"] is None
    assert (
        found["payment"]["order_id"] == shop["order"]["id"] and found["refund"]["payment_id"] == shop["payment"]["id"]
    )
    assert found["location"]["name"] == "Grant Park"
    objects, cursor, latest = found["catalog"]
    assert {o["type"] for o in objects} == {"ITEM", "CATEGORY"} and cursor is None and latest


def test_concurrent_order_loads_are_one_square_request(square: httpx.Client) -> None:
    location = square.post("/_control/locations", json={"name": "Batch"}).json()
    orders = [
        square.post(
            "/_control/sales", json={"location_id": location["id"], "lines": [{"name": f"Item {i}", "price": 100 + i}]}
        ).json()["order"]
        for i in range(5)
    ]
    square.delete("/_control/stats")

    async def scenario() -> list[dict[str, Any] | None]:
        async with httpx.AsyncClient() as http:
            loader = Coalescer(_client(square, http).batch_retrieve_orders)
            return await asyncio.gather(*(loader.load(o["id"]) for o in orders), loader.load("UNKNOWN"))

    results = asyncio.run(scenario())
    assert [r["id"] for r in results[:5]] == [o["id"] for o in orders] and results[5] is None  # type: ignore[index]
    stats = square.get("/_control/stats").json()
    assert stats["requests"] == 1 and stats["POST /v2/orders/batch-retrieve"] == 1
