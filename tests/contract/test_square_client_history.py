"""The Square client's history, reconcile and write calls against the emulator over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest

from shared.adapters.square_http import SquareClient
from shared.core.errors import ConcurrencyError, InvalidDataError, ThrottledError, TransientError
from shared.core.paging import paginate
from tests.contract.conftest import SQUARE_TOKEN
from tests.contract.square_helpers import Receiver, delivered, flush

T = TypeVar("T")


def _run(square: httpx.Client, scenario: Callable[[SquareClient], Awaitable[T]]) -> T:
    async def main() -> T:
        async with httpx.AsyncClient(timeout=30) as http:
            client = SquareClient(
                base_url=str(square.base_url), access_token=SQUARE_TOKEN, api_version="2025-08-20", http=http
            )
            return await scenario(client)

    return asyncio.run(main())


async def _all(
    fetch: Callable[[str | None], Awaitable[tuple[list[dict[str, Any]], str | None]]],
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    async for page in paginate(fetch, "test"):
        found.extend(page)
    return found


def test_customers_stream_by_list_search_and_bulk_retrieve(square: httpx.Client) -> None:
    square.post(
        "/_control/history/generate",
        json={"customers": 250, "seed": 2, "start": "2024-01-01T00:00:00Z", "end": "2024-12-31T00:00:00Z"},
    )
    ids = [c["id"] for c in square.get("/_control/customers").json()["customers"]]
    square.delete("/_control/stats")

    async def scenario(client: SquareClient) -> tuple[Any, ...]:
        listed = await _all(lambda c: client.list_customers(c, limit=100))
        query = {"filter": {"created_at": {"start_at": "2024-07-01T00:00:00Z"}}, "sort": {"field": "CREATED_AT"}}
        searched = await _all(lambda c: client.search_customers(query, c))
        bulk = await client.bulk_retrieve_customers([*ids[:150], "NOT-A-CUSTOMER"])
        return listed, searched, bulk

    listed, searched, bulk = _run(square, scenario)
    assert [c["created_at"] for c in listed] == sorted(c["created_at"] for c in listed) and len(listed) == 250
    assert searched and all(c["created_at"] >= "2024-07-01" for c in searched)
    assert len(searched) == sum(1 for c in listed if c["created_at"] >= "2024-07-01")
    assert set(bulk) == set(ids[:150])  # unknown ids are simply absent
    stats = square.get("/_control/stats").json()
    assert stats["GET /v2/customers"] == 3 and stats["POST /v2/customers/bulk-retrieve"] == 2


def test_orders_payments_refunds_locations_stream(square: httpx.Client) -> None:
    stores = [square.post("/_control/locations", json={"name": f"Store {n}"}).json()["id"] for n in range(12)]
    square.post(
        "/_control/history/sales",
        json=[
            {
                "location_id": store,
                "at": f"2026-0{1 + n % 9}-1{n % 10}T10:00:00Z",
                "lines": [{"name": "Tea", "price": 300 + n}],
                "refund": {"at": f"2026-0{1 + n % 9}-2{n % 10}T10:00:00Z", "amount": 50},
            }
            for n, store in enumerate(stores * 3)
        ],
    )

    async def scenario(client: SquareClient) -> tuple[Any, ...]:
        locations = await client.list_locations()
        ids = [loc["id"] for loc in locations]
        query = {
            "filter": {"date_time_filter": {"updated_at": {"start_at": "2025-01-01T00:00:00Z"}}},
            "sort": {"sort_field": "UPDATED_AT", "sort_order": "ASC"},
        }
        orders: list[dict[str, Any]] = []
        for start in range(0, len(ids), 10):
            group = ids[start : start + 10]
            orders += await _all(lambda c, g=group: client.search_orders(g, query, c, limit=7))
        payments: list[dict[str, Any]] = []
        for location_id in ids:
            payments += await _all(
                lambda c, loc=location_id: client.list_payments(
                    c, location_id=loc, begin_time="2025-06-01T00:00:00Z", limit=2
                )
            )
        refunds = await _all(lambda c: client.list_refunds(c, begin_time="2025-06-01T00:00:00Z", limit=10))
        return locations, orders, payments, refunds

    locations, orders, payments, refunds = _run(square, scenario)
    assert [loc["name"] for loc in locations] == sorted(loc["name"] for loc in locations) and len(locations) == 12
    assert len({o["id"] for o in orders}) == len(orders) == 36
    assert len({p["id"] for p in payments}) == 36 and len({r["id"] for r in refunds}) == 36
    with pytest.raises(ValueError, match="1 to 10"):
        _run(square, lambda client: client.search_orders([loc["id"] for loc in locations], {}))


def test_search_events_needs_events_enabled(square: httpx.Client) -> None:
    square.post("/_control/customers", json={"given_name": "Unseen"})
    square.put("/v2/events/enable")
    square.post("/_control/customers", json=[{"given_name": f"Seen{n}"} for n in range(3)])

    async def scenario(client: SquareClient) -> list[dict[str, Any]]:
        return await _all(lambda c: client.search_events({"filter": {"event_types": ["customer.created"]}}, c, limit=2))

    events = _run(square, scenario)
    assert sorted(e["data"]["object"]["customer"]["given_name"] for e in events) == ["Seen0", "Seen1", "Seen2"]


def test_update_customer_versions_and_refusals(square: httpx.Client, receiver: Receiver) -> None:
    customer = square.post("/_control/customers", json={"given_name": "Two", "email_address": "two@example.com"}).json()

    async def scenario(client: SquareClient) -> tuple[Any, ...]:
        updated = await client.update_customer(customer["id"], {"phone_number": "+1 206-555-0100"}, version=0)
        try:
            await client.update_customer(customer["id"], {"note": "stale"}, version=0)
            stale: Exception | None = None
        except ConcurrencyError as error:
            stale = error
        try:
            await client.update_customer(customer["id"], {"email_address": "not an email"})
            invalid: InvalidDataError | None = None
        except InvalidDataError as error:
            invalid = error
        missing = await client.update_customer("NO-SUCH-CUSTOMER", {"note": "x"})
        return updated, stale, invalid, missing

    updated, stale, invalid, missing = _run(square, scenario)
    assert updated is not None and updated["version"] == 1 and updated["phone_number"] == "+1 206-555-0100"
    assert isinstance(stale, ConcurrencyError) and missing is None
    assert invalid is not None and invalid.problems[0].field == "email_address"
    assert "INVALID_EMAIL_ADDRESS" in invalid.problems[0].reason
    flush(square)
    echoes = [e for e in delivered(receiver) if e["type"] == "customer.updated"]
    assert [e["data"]["object"]["customer"]["version"] for e in echoes] == [1]  # one committed update, one echo


def test_create_customer_is_idempotent(square: httpx.Client) -> None:
    async def scenario(client: SquareClient) -> tuple[dict[str, Any], dict[str, Any]]:
        fields = {"given_name": "Once", "email_address": "once@example.com"}
        first = await client.create_customer(fields, idempotency_key="crm-contact-1")
        retried = await client.create_customer(fields, idempotency_key="crm-contact-1")
        return first, retried

    first, retried = _run(square, scenario)
    assert first["id"] == retried["id"]
    live = square.get("/_control/customers").json()["customers"]
    assert [c["id"] for c in live if c.get("email_address") == "once@example.com"] == [first["id"]]


def test_ids_are_one_path_segment(square: httpx.Client) -> None:
    """An id holding `../` must not address another resource (httpx would otherwise normalise the path)."""
    store = square.post("/_control/locations", json={"name": "Paths"}).json()["id"]
    payment = square.post(
        "/_control/sales", json={"location_id": store, "lines": [{"name": "Tea", "price": 1}]}
    ).json()["payment"]

    async def scenario(client: SquareClient) -> tuple[Any, ...]:
        return (
            await client.retrieve_customer(f"../payments/{payment['id']}"),
            await client.retrieve_customer(".."),
            await client.get_payment(payment["id"]),
        )

    sneaky, dots, real = _run(square, scenario)
    assert sneaky is None and dots is None and real is not None and real["id"] == payment["id"]


def test_injected_rate_limits_and_outages_apply_nothing(square: httpx.Client) -> None:
    """SPEC ErrorCategory RATE_LIMIT_ERROR (429 RATE_LIMITED) and 5xx: the client raises Throttled/Transient
    errors to retry later, and Square applied nothing."""
    customer = square.post("/_control/customers", json={"given_name": "Busy"}).json()
    faults = [{"status": 429, "method": "PUT", "path_prefix": "/v2/customers"}, {"status": 503, "method": "PUT"}]
    assert len(square.post("/_control/faults", json=faults).json()) == 2

    async def attempt(client: SquareClient) -> Exception | None:
        try:
            await client.update_customer(customer["id"], {"note": "later"}, version=0)
        except (ThrottledError, TransientError) as error:
            return error
        return None

    assert isinstance(_run(square, attempt), ThrottledError)
    second = _run(square, attempt)
    assert isinstance(second, TransientError) and not isinstance(second, ThrottledError)
    assert square.get(f"/v2/customers/{customer['id']}").json()["customer"]["version"] == 0
    assert _run(square, attempt) is None and square.get("/_control/faults").json() == []
