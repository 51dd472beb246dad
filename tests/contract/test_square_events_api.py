"""Square's Events API (BETA; SPEC paths /v2/events, /v2/events/enable, /v2/events/disable, /v2/events/types)
and the history the emulator can hold without firing events."""

from __future__ import annotations

from datetime import datetime

import httpx

from tests.conftest import example
from tests.contract.square_helpers import Receiver, delivered, every_page, flush, refusal, seed

EVENTS = "/v2/events"


def _types(square: httpx.Client, query: dict[str, object] | None = None) -> list[str]:
    body = square.post(EVENTS, json={"query": query or {}}).json()
    return [e["type"] for e in body.get("events", [])]


def test_events_are_searchable_only_while_enabled(square: httpx.Client) -> None:
    """SPEC DisableEvents: "All events are disabled by default. You must enable events to make them searchable.
    Disabling events for a specific time period prevents them from being searchable, even if you re-enable them
    later"; EnableEvents: "Only events that occur while in the enabled state are searchable"."""
    before = seed(square, given_name="Before")
    assert square.post(EVENTS, json={}).json() == {}
    assert square.put("/v2/events/enable").json() == {}
    during = seed(square, given_name="During")
    assert square.put("/v2/events/disable").json() == {}
    seed(square, given_name="Disabled")
    square.put("/v2/events/enable")
    after = seed(square, given_name="After")
    found = square.post(EVENTS, json={"query": {"sort": {"order": "ASC"}}}).json()["events"]
    assert [e["data"]["id"] for e in found] == [during["id"], after["id"]]
    assert before["id"] not in {e["data"]["id"] for e in found}


def test_search_events_shape_filters_and_sort(square: httpx.Client) -> None:
    """SPEC SearchEventsResponse: `events` + `metadata[{event_id, api_version}]` (official example keys);
    SearchEventsFilter event_types / location_ids; SearchEventsSortField DEFAULT = created_at."""
    square.put("/v2/events/enable")
    customer = seed(square, given_name="Shape")
    store = square.post("/_control/locations", json={"name": "Events Store"}).json()
    square.post("/_control/sales", json={"location_id": store["id"], "lines": [{"name": "Tea", "price": 300}]})
    body = square.post(EVENTS, json={"query": {"filter": {"event_types": ["customer.created"]}}}).json()
    official = example("api.search_events.json")
    assert set(body) == set(official) - {"cursor"}
    assert set(body["metadata"][0]) == set(official["metadata"][0])
    assert [e["data"]["id"] for e in body["events"]] == [customer["id"]]
    assert set(body["events"][0]) >= set(official["events"][0]) - {"location_id"}
    by_store = _types(square, {"filter": {"location_ids": [store["id"]]}})
    assert by_store == ["location.created"]  # location events carry location_id
    newest_first = square.post(EVENTS, json={"query": {"sort": {"field": "DEFAULT", "order": "DESC"}}}).json()
    stamps = [datetime.fromisoformat(e["created_at"]) for e in newest_first["events"]]
    assert len(stamps) == 4 and stamps == sorted(stamps, reverse=True)
    assert refusal(square.post(EVENTS, json={"query": {"sort": {"field": "TYPE"}}}))[1] == "INVALID_ENUM_VALUE"


def test_only_the_last_28_days_are_searchable(square: httpx.Client) -> None:
    """SPEC SearchEvents: "Search for Square API events that occur within a 28-day timeframe"; docs
    events-api/overview: "You can only retrieve events that occurred within the past 28 days"."""
    square.put("/v2/events/enable")
    old = seed(square, given_name="Old")
    square.post("/_control/clock", json={"advance_seconds": 29 * 86400})
    new = seed(square, given_name="New")
    found = square.post(EVENTS, json={"query": {"filter": {"created_at": {"start_at": "2000-01-01T00:00:00Z"}}}}).json()
    assert [e["data"]["id"] for e in found["events"]] == [new["id"]] and old["id"] != new["id"]


def test_limit_and_cursor_with_the_original_query(square: httpx.Client) -> None:
    """SPEC SearchEventsRequest.limit minimum 1, maximum 100 (→ VALUE_TOO_LOW/HIGH as for customers);
    SearchEventsRequest.query: "To retrieve additional pages using a cursor, you must use the original query"."""
    square.put("/v2/events/enable")
    square.post("/_control/customers", json=[{"given_name": f"E{n}"} for n in range(130)])
    assert refusal(square.post(EVENTS, json={"limit": 101})) == (400, "VALUE_TOO_HIGH", "limit")
    assert refusal(square.post(EVENTS, json={"limit": 0})) == (400, "VALUE_TOO_LOW", "limit")
    query = {"filter": {"event_types": ["customer.created"]}}
    events, pages = every_page(
        lambda c: square.post(EVENTS, json={"query": query, **({"cursor": c} if c else {})}), "events"
    )
    assert len(events) == 130 and len({e["event_id"] for e in events}) == 130 and pages == 2
    first = square.post(EVENTS, json={"query": query, "limit": 10}).json()
    changed = square.post(EVENTS, json={"query": {}, "cursor": first["cursor"]})
    assert refusal(changed) == (400, "INVALID_CURSOR", "cursor")


def test_list_event_types_shape(square: httpx.Client) -> None:
    """SPEC ListEventTypesResponse: `event_types` and `metadata[{event_type, api_version_introduced,
    release_status}]`."""
    body = square.get("/v2/events/types").json()
    official = example("api.list_event_types.json")
    assert set(body) == set(official) and set(body["metadata"][0]) == set(official["metadata"][0])
    assert {"customer.updated", "payment.updated"} <= set(body["event_types"])


def test_history_fires_nothing_and_keeps_its_timestamps(square: httpx.Client, receiver: Receiver) -> None:
    """Customers and sales loaded as history (before Tillbridge) fire no webhook and no event: only a backfill
    can find them. Timestamps and versions are kept as given."""
    square.put("/v2/events/enable")
    made = square.post(
        "/_control/history/customers",
        json=[
            {
                "given_name": "Hist",
                "created_at": "2021-04-05T06:07:08Z",
                "updated_at": "2022-01-01T00:00:00Z",
                "version": 3,
            }
        ],
    ).json()["customers"][0]
    assert (made["created_at"], made["updated_at"], made["version"]) == (
        "2021-04-05T06:07:08.000Z",
        "2022-01-01T00:00:00.000Z",
        3,
    )
    generated = square.post(
        "/_control/history/generate",
        json={
            "customers": 300,
            "sales": 200,
            "seed": 9,
            "start": "2023-01-01T00:00:00Z",
            "end": "2024-01-01T00:00:00Z",
        },
    ).json()
    assert generated["customers"] == 300 and generated["sales"] == 200 and generated["total_customers"] == 301
    flush(square)
    assert delivered(receiver) == []
    assert [e for e in square.post(EVENTS, json={}).json().get("events", []) if e["type"].startswith("customer")] == []
    state = square.get("/_control/commerce").json()
    assert len(state["payments"]) == 200 and all("2023" <= p["created_at"] < "2024-01-03" for p in state["payments"])
    emails = [c["email_address"] for c in square.get("/_control/customers").json()["customers"] if "email_address" in c]
    assert len(emails) == len(set(emails)) == 300
