"""History reads for backfill and reconcile — SearchOrders, BatchRetrieveOrders, ListPayments,
ListPaymentRefunds, ListLocations, SearchCatalogObjects / ListCatalog — refuse and page as Square documents
(SPEC = square/connect-api-specification api.json, Release 2025-08-20)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import example
from tests.contract.square_helpers import every_page, refusal

SEARCH = "/v2/orders/search"


def _store(square: httpx.Client, name: str) -> str:
    return str(square.post("/_control/locations", json={"name": name}).json()["id"])


def _past_sales(square: httpx.Client, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    response = square.post("/_control/history/sales", json=items)
    assert response.status_code == 200, response.text
    return list(response.json())


def _sale(location: str, at: str, **extra: Any) -> dict[str, Any]:
    return {"location_id": location, "at": at, "lines": [{"name": "Tea", "price": 350}], **extra}


def _ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat().replace("+00:00", "Z")


def test_search_orders_needs_1_to_10_of_the_sellers_locations(square: httpx.Client) -> None:
    """SPEC SearchOrdersRequest.location_ids: "Max: 10 location IDs", all of the same merchant; docs
    search-orders: "Your request must specify at least one location"."""
    store = _store(square, "Main")
    assert refusal(square.post(SEARCH, json={}))[:2] == (400, "MISSING_REQUIRED_PARAMETER")
    assert refusal(square.post(SEARCH, json={"location_ids": []}))[1] == "ARRAY_LENGTH_TOO_SHORT"
    eleven = [store] + [_store(square, f"S{n}") for n in range(10)]
    assert refusal(square.post(SEARCH, json={"location_ids": eleven})) == (400, "ARRAY_LENGTH_TOO_LONG", "location_ids")
    assert square.post(SEARCH, json={"location_ids": eleven[:10]}).status_code == 200
    assert refusal(square.post(SEARCH, json={"location_ids": ["NOT-OURS"]}))[:2] == (400, "INVALID_VALUE")


def test_sort_field_must_be_the_filtered_date_field(square: httpx.Client) -> None:
    """SPEC SearchOrdersFilter.date_time_filter / SearchOrdersSort.sort_field: "If this field does not match the
    timestamp field in DateTimeFilter, SearchOrders returns an error"; the default sort_field is CREATED_AT, so
    filtering on updated_at without a sort is refused too."""
    store = _store(square, "Main")
    window = {"start_at": _ago(10)}
    updated_only = {"filter": {"date_time_filter": {"updated_at": window}}}
    assert (
        refusal(square.post(SEARCH, json={"location_ids": [store], "query": updated_only}))[1]
        == "CONFLICTING_PARAMETERS"
    )
    mismatched = {**updated_only, "sort": {"sort_field": "CREATED_AT"}}
    assert (
        refusal(square.post(SEARCH, json={"location_ids": [store], "query": mismatched}))[2] == "query.sort.sort_field"
    )
    matched = {**updated_only, "sort": {"sort_field": "UPDATED_AT", "sort_order": "ASC"}}
    assert square.post(SEARCH, json={"location_ids": [store], "query": matched}).status_code == 200
    two_ranges = {"filter": {"date_time_filter": {"created_at": window, "updated_at": window}}}
    assert (
        refusal(square.post(SEARCH, json={"location_ids": [store], "query": two_ranges}))[1] == "CONFLICTING_PARAMETERS"
    )


def test_closed_at_sort_needs_a_closed_state_filter(square: httpx.Client) -> None:
    """SPEC SearchOrdersSortField.CLOSED_AT: "you must also set a StateFilter with closed states"; docs
    search-orders: OPEN + COMPLETED sorted by CLOSED_AT is an error."""
    store = _store(square, "Main")
    by_closed = {"sort": {"sort_field": "CLOSED_AT"}}
    assert (
        refusal(square.post(SEARCH, json={"location_ids": [store], "query": by_closed}))[1] == "CONFLICTING_PARAMETERS"
    )
    with_open = {**by_closed, "filter": {"state_filter": {"states": ["OPEN", "COMPLETED"]}}}
    assert (
        refusal(square.post(SEARCH, json={"location_ids": [store], "query": with_open}))[1] == "CONFLICTING_PARAMETERS"
    )
    closed = {**by_closed, "filter": {"state_filter": {"states": ["COMPLETED", "CANCELED"]}}}
    assert square.post(SEARCH, json={"location_ids": [store], "query": closed}).status_code == 200
    bad_state = {"filter": {"state_filter": {"states": ["PAID"]}}}
    assert refusal(square.post(SEARCH, json={"location_ids": [store], "query": bad_state}))[1] == "INVALID_ENUM_VALUE"


def test_date_ranges_are_inclusive_and_results_sorted(square: httpx.Client) -> None:
    """SPEC SearchOrdersDateTimeFilter: "the start time and end time are inclusive"; SearchOrdersSort.sort_order
    defaults to DESC; state_filter selects by OrderState."""
    store = _store(square, "Main")
    sales = _past_sales(
        square,
        [
            _sale(store, "2025-03-01T10:00:00Z"),
            _sale(store, "2025-03-02T10:00:00Z"),
            _sale(store, "2025-03-03T10:00:00Z"),
            _sale(store, "2025-03-02T12:00:00Z", state="OPEN"),
        ],
    )
    query = {
        "filter": {
            "date_time_filter": {
                "created_at": {"start_at": "2025-03-01T10:00:00Z", "end_at": "2025-03-02T10:00:00.000Z"}
            },
            "state_filter": {"states": ["COMPLETED"]},
        }
    }
    found = square.post(SEARCH, json={"location_ids": [store], "query": query}).json()["orders"]
    assert [o["id"] for o in found] == [sales[1]["order"]["id"], sales[0]["order"]["id"]]
    open_only = {"filter": {"state_filter": {"states": ["OPEN"]}}}
    assert [
        o["state"] for o in square.post(SEARCH, json={"location_ids": [store], "query": open_only}).json()["orders"]
    ] == ["OPEN"]


def test_return_entries_and_the_customer_filter(square: httpx.Client) -> None:
    """SPEC SearchOrdersRequest.return_entries → `order_entries` of OrderEntry {order_id, version?, location_id}
    (official example SearchOrdersResponse); SearchOrdersCustomerFilter: order or tender customer, max 10 ids."""
    store = _store(square, "Main")
    _past_sales(
        square, [_sale(store, "2025-01-01T00:00:00Z", customer_id="CUST1"), _sale(store, "2025-01-02T00:00:00Z")]
    )
    query = {"filter": {"customer_filter": {"customer_ids": ["CUST1"]}}}
    body = square.post(SEARCH, json={"location_ids": [store], "query": query, "return_entries": True}).json()
    assert set(body) == set(example("api.search_orders.json")) - {"cursor"}
    assert [set(e) for e in body["order_entries"]] == [{"order_id", "location_id"}]  # POS orders carry no version
    eleven = {"filter": {"customer_filter": {"customer_ids": [f"C{n}" for n in range(11)]}}}
    assert refusal(square.post(SEARCH, json={"location_ids": [store], "query": eleven}))[1] == "ARRAY_LENGTH_TOO_LONG"
    request = example("api.search_orders.request.json")
    request["location_ids"] = [store]
    assert square.post(SEARCH, json=request).status_code == 200  # the official request is accepted


def test_search_orders_pages_with_the_original_query_and_end_defaults_to_the_first_request(
    square: httpx.Client,
) -> None:
    """SPEC SearchOrdersRequest.limit (default 500, max 1000) and `query` ("when retrieving additional pages using
    a cursor, you must use the original query"); SearchOrdersDateTimeFilter: an absent end time "defaults to the
    time of the first request for the cursor"."""
    store = _store(square, "Main")
    _past_sales(square, [_sale(store, f"2025-02-{n + 1:02d}T09:00:00Z") for n in range(25)])
    query = {"filter": {"date_time_filter": {"created_at": {"start_at": "2025-01-01T00:00:00Z"}}}}
    first = square.post(SEARCH, json={"location_ids": [store], "query": query, "limit": 10}).json()
    square.post("/_control/sales", json={"location_id": store, "lines": [{"name": "Late", "price": 100}]})
    orders = list(first["orders"])
    cursor = first["cursor"]
    while cursor:
        page = square.post(SEARCH, json={"location_ids": [store], "query": query, "limit": 10, "cursor": cursor}).json()
        orders.extend(page.get("orders", []))
        cursor = page.get("cursor")
    assert len(orders) == 25 and len({o["id"] for o in orders}) == 25  # the sale rung up mid-way is not in it
    other = {"filter": {"date_time_filter": {"created_at": {"start_at": "2025-02-01T00:00:00Z"}}}}
    changed = square.post(SEARCH, json={"location_ids": [store], "query": other, "cursor": first["cursor"]})
    assert refusal(changed) == (400, "INVALID_CURSOR", "cursor")
    assert len(square.post(SEARCH, json={"location_ids": [store], "limit": 5000}).json()["orders"]) == 26


def test_batch_retrieve_orders_takes_at_most_100_and_skips_unknown(square: httpx.Client) -> None:
    """SPEC BatchRetrieveOrdersRequest.order_ids: "A maximum of 100 orders"; unknown ids are not errors."""
    store = _store(square, "Main")
    sale = _past_sales(square, [_sale(store, "2025-01-01T00:00:00Z")])[0]
    found = square.post("/v2/orders/batch-retrieve", json={"order_ids": [sale["order"]["id"], "UNKNOWN"]}).json()
    assert [o["id"] for o in found["orders"]] == [sale["order"]["id"]]
    too_many = square.post("/v2/orders/batch-retrieve", json={"order_ids": [f"O{n}" for n in range(101)]})
    assert refusal(too_many) == (400, "ARRAY_LENGTH_TOO_LONG", "order_ids")


def test_list_payments_defaults_to_the_main_location_and_the_last_year(square: httpx.Client) -> None:
    """SPEC ListPayments: `location_id` "By default, results are returned for the default (main) location";
    `begin_time` "Default: The current time minus one year", inclusive; sort_order DESC by default."""
    main, second = _store(square, "Main"), _store(square, "Second")
    sales = _past_sales(
        square,
        [_sale(main, _ago(400)), _sale(main, _ago(30)), _sale(main, _ago(2)), _sale(second, _ago(5))],
    )
    ids = [s["payment"]["id"] for s in sales]
    default = square.get("/v2/payments").json()["payments"]
    assert [p["id"] for p in default] == [ids[2], ids[1]]  # main only, last year only, newest first
    old = square.get("/v2/payments", params={"begin_time": _ago(500), "sort_order": "ASC"}).json()["payments"]
    assert [p["id"] for p in old] == ids[:3]
    assert [p["id"] for p in square.get("/v2/payments", params={"location_id": second}).json()["payments"]] == [ids[3]]
    assert refusal(square.get("/v2/payments", params={"begin_time": "last week"})) == (
        400,
        "INVALID_TIME",
        "begin_time",
    )


def test_list_payments_by_update_time_and_limit(square: httpx.Client) -> None:
    """SPEC ListPayments updated_at_begin_time / sort_field UPDATED_AT; `limit` above 100 "is ignored and the
    default value is used"; cursor paging over the original query."""
    main = _store(square, "Main")
    sales = _past_sales(
        square,
        [_sale(main, _ago(40), refund={"at": _ago(1), "amount": 100})]
        + [_sale(main, _ago(20 - n / 10)) for n in range(150)],
    )
    recent = square.get("/v2/payments", params={"updated_at_begin_time": _ago(3), "sort_field": "UPDATED_AT"}).json()[
        "payments"
    ]
    assert [p["id"] for p in recent] == [sales[0]["payment"]["id"]]  # the refund touched it a day ago
    first = square.get("/v2/payments", params={"limit": 500}).json()
    assert len(first["payments"]) == 100 and first["cursor"]
    payments, pages = every_page(
        lambda c: square.get("/v2/payments", params={"limit": 60, **({"cursor": c} if c else {})}), "payments"
    )
    assert len({p["id"] for p in payments}) == 151 and pages == 3


def test_list_refunds_cover_every_location(square: httpx.Client) -> None:
    """SPEC ListPaymentRefunds: `location_id` "By default, results are returned for all locations"; `status`
    filter; shape of the official example (SPEC ListPaymentRefundsResponse)."""
    main, second = _store(square, "Main"), _store(square, "Second")
    _past_sales(
        square,
        [
            _sale(main, _ago(10), refund={"at": _ago(9)}),
            _sale(second, _ago(8), refund={"at": _ago(7), "amount": 50}),
        ],
    )
    refunds = square.get("/v2/refunds").json()["refunds"]
    assert {r["location_id"] for r in refunds} == {main, second}
    official = example("api.list_payment_refunds.json")["refunds"][0]
    assert set(official) <= set(refunds[0])
    assert square.get("/v2/refunds", params={"status": "PENDING"}).json() == {}
    assert len(square.get("/v2/refunds", params={"location_id": second}).json()["refunds"]) == 1


def test_list_locations_is_alphabetical_without_paging(square: httpx.Client) -> None:
    """SPEC ListLocations: all locations, including inactive ones, "listed alphabetically by name"; no cursor."""
    for name in ("Zeta", "Alpha", "Mid"):
        _store(square, name)
    inactive = _store(square, "Beta")
    square.patch(f"/_control/locations/{inactive}", json={"status": "INACTIVE"})
    body = square.get("/v2/locations").json()
    assert [loc["name"] for loc in body["locations"]] == ["Alpha", "Beta", "Mid", "Zeta"] and "cursor" not in body


def _catalog(square: httpx.Client) -> list[dict[str, Any]]:
    items = [
        {"name": f"Item {n}", "category": "Things", "variations": [{"name": "One", "price": 100 + n}]} for n in range(3)
    ]
    items.append({"name": "Gone", "deleted": True})
    return list(square.post("/_control/catalog", json={"items": items}).json()["objects"])


def test_catalog_search_types_deleted_and_limits(square: httpx.Client) -> None:
    """SPEC SearchCatalogObjectsRequest: nested types (ITEM_VARIATION) only when asked; deleted objects only with
    include_deleted_objects; include_deleted_objects and include_category_path_to_root never both true; a limit
    ≤ 0 or > 1000 is ignored; begin_time exclusive."""
    items = _catalog(square)
    default = square.post("/v2/catalog/search", json={}).json()["objects"]
    assert {o["type"] for o in default} == {"ITEM", "CATEGORY"} and "Gone" not in {
        o.get("item_data", {}).get("name") for o in default
    }
    variations = square.post("/v2/catalog/search", json={"object_types": ["ITEM_VARIATION"]}).json()["objects"]
    assert len(variations) == 4 and {v["type"] for v in variations} == {"ITEM_VARIATION"}
    with_deleted = square.post(
        "/v2/catalog/search", json={"object_types": ["ITEM"], "include_deleted_objects": True}
    ).json()
    assert len(with_deleted["objects"]) == 4
    both = {"include_deleted_objects": True, "include_category_path_to_root": True}
    assert refusal(square.post("/v2/catalog/search", json=both))[:2] == (400, "CONFLICTING_PARAMETERS")
    assert len(square.post("/v2/catalog/search", json={"object_types": ["ITEM"], "limit": 0}).json()["objects"]) == 3
    later = square.post("/v2/catalog/search", json={"begin_time": items[0]["updated_at"]}).json()
    assert "objects" not in later and later["latest_time"]
    assert refusal(square.post("/v2/catalog/search", json={"object_types": ["SHOES"]}))[1] == "INVALID_ENUM_VALUE"


def test_list_catalog_never_returns_deleted_objects_and_pages_by_100(square: httpx.Client) -> None:
    """SPEC ListCatalog: "does not return deleted catalog items"; case-insensitive comma-separated `types`; page
    size 100 (`cursor`); shape of the official example (SPEC ListCatalogResponse)."""
    _catalog(square)
    square.post("/_control/catalog", json={"items": [{"name": f"Bulk {n}"} for n in range(120)]})
    listed, pages = every_page(
        lambda c: square.get("/v2/catalog/list", params={"types": "item, category", **({"cursor": c} if c else {})}),
        "objects",
    )
    assert pages == 2 and len(listed) == 124 and all(not o["is_deleted"] for o in listed)
    official = example("api.list_catalog.json")["objects"][0]  # a CATEGORY
    assert set(official) <= set(next(o for o in listed if o["type"] == official["type"]))


@pytest.mark.parametrize("limit", [0, 101])
def test_list_payment_refund_limit_above_100_gives_at_most_100(square: httpx.Client, limit: int) -> None:
    """SPEC ListPaymentRefunds `limit`: "If the supplied value is greater than 100, no more than 100 results are
    returned"; below 1 the default (100) applies."""
    main = _store(square, "Main")
    _past_sales(square, [_sale(main, _ago(5 + n / 100), refund={"at": _ago(4)}) for n in range(101)])
    assert len(square.get("/v2/refunds", params={"limit": limit}).json()["refunds"]) == 100
