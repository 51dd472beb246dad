"""The Square emulator against Square's official examples (tests/fixtures/square_examples)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from shared.pipeline.signature import SIGNATURE_HEADER, is_valid_signature
from tests.conftest import example
from tests.contract.conftest import NOTIFICATION_URL, SIGNATURE_KEY
from tests.support import ThreadedServer, WebhookReceiver

SERVER_FIELDS = {"id", "created_at", "updated_at", "version", "creation_source"}


def _types(document: dict[str, Any]) -> dict[str, str]:
    return {key: type(value).__name__ for key, value in document.items()}


def _seed_from(square: httpx.Client, customer: dict[str, Any]) -> dict[str, Any]:
    fields = {k: v for k, v in customer.items() if k not in SERVER_FIELDS}
    response = square.post("/_control/customers", json=fields)
    assert response.status_code == 200
    return dict(response.json())


def _flush(square: httpx.Client) -> None:
    assert square.post("/_control/flush", params={"timeout": "20"}).json()["idle"]


def test_retrieve_customer_matches_the_official_shape(square: httpx.Client) -> None:
    official = example("api.retrieve_customer.json")
    created = _seed_from(square, official["customer"])
    response = square.get(f"/v2/customers/{created['id']}")
    assert response.status_code == 200 and response.headers["Square-Version"]
    body = response.json()
    assert set(body) == set(official)
    assert set(body["customer"]) == set(official["customer"])
    assert _types(body["customer"]) == _types(official["customer"])
    assert len(body["customer"]["id"]) == len(official["customer"]["id"])


def test_not_found_uses_squares_error_body(square: httpx.Client) -> None:
    official = example("api.error.not_found.json")
    response = square.get("/v2/customers/NOPE")
    assert response.status_code == 404
    body = response.json()
    assert set(body) == set(official) and set(body["errors"][0]) == set(official["errors"][0])
    assert (body["errors"][0]["code"], body["errors"][0]["category"]) == ("NOT_FOUND", "INVALID_REQUEST_ERROR")


def test_requests_without_the_token_are_401(square: httpx.Client) -> None:
    response = httpx.get(f"{square.base_url}/v2/customers/X")
    assert response.status_code == 401 and response.json()["errors"][0]["category"] == "AUTHENTICATION_ERROR"


def test_bulk_retrieve_matches_the_official_example(square: httpx.Client) -> None:
    official = example("api.bulk_retrieve_customers.json")
    found = [_seed_from(square, r["customer"]) for r in official["responses"].values() if "customer" in r]
    missing = "2GYD7WNXF7BJZW1PMGNXZ3Y8M8"
    request = example("api.bulk_retrieve_customers.request.json")
    request["customer_ids"] = [found[0]["id"], found[1]["id"], missing]
    body = square.post("/v2/customers/bulk-retrieve", json=request).json()
    assert set(body) == {"responses"} and list(body["responses"]) == request["customer_ids"]
    assert body["responses"][missing] == official["responses"][missing]
    for customer in found:
        assert set(body["responses"][customer["id"]]) == {"customer"}


def test_update_customer_applies_the_official_request(square: httpx.Client) -> None:
    official_response = example("api.update_customer.json")
    created = _seed_from(square, example("api.retrieve_customer.json")["customer"])
    for note in ("v1", "v2"):
        square.put(f"/v2/customers/{created['id']}", json={"note": note})
    request = example("api.update_customer.request.json")  # version 2, phone_number: null removes it
    response = square.put(f"/v2/customers/{created['id']}", json=request)
    assert response.status_code == 200
    customer = response.json()["customer"]
    assert customer["version"] == 3 and "phone_number" not in customer
    assert customer["email_address"] == request["email_address"] and customer["note"] == request["note"]
    assert set(customer) - {"group_ids", "segment_ids"} == set(official_response["customer"])
    stale = square.put(f"/v2/customers/{created['id']}", json=request)
    assert stale.status_code == 400 and stale.json()["errors"][0]["code"] == "VERSION_MISMATCH"


def test_update_rejects_an_invalid_email_like_square(square: httpx.Client) -> None:
    created = _seed_from(square, {"given_name": "Ada"})
    response = square.put(f"/v2/customers/{created['id']}", json={"email_address": "not-an-email"})
    assert response.status_code == 400 and response.json()["errors"][0]["code"] == "INVALID_EMAIL_ADDRESS"


def test_search_accepts_the_official_request_and_pages(square: httpx.Client) -> None:
    for index in range(3):
        _seed_from(square, {"given_name": f"C{index}", "email_address": f"c{index}@example.com"})
    official = square.post("/v2/customers/search", json=example("api.search_customers.request.json"))
    assert official.status_code == 200 and official.json() == {}  # nothing created in 2018: Square answers {}
    first = square.post(
        "/v2/customers/search",
        json={"limit": 2, "query": {"filter": {"updated_at": {"start_at": "2020-01-01T00:00:00Z"}}}},
    ).json()
    assert set(first) == set(example("api.search_customers.json")) and len(first["customers"]) == 2
    rest = square.post(
        "/v2/customers/search",
        json={
            "limit": 2,
            "cursor": first["cursor"],
            "query": {"filter": {"updated_at": {"start_at": "2020-01-01T00:00:00Z"}}},
        },
    ).json()
    assert len(rest["customers"]) == 1 and "cursor" not in rest
    assert square.post("/v2/customers/search", json={"limit": 101}).json()["errors"][0]["code"] == "VALUE_TOO_HIGH"


def test_list_customers_shape(square: httpx.Client) -> None:
    _seed_from(square, example("api.list_customers.json")["customers"][0])
    body = square.get("/v2/customers").json()
    assert set(body) == set(example("api.list_customers.json"))


def _delivered(receiver: tuple[WebhookReceiver, ThreadedServer]) -> list[tuple[dict[str, str], dict[str, Any], bytes]]:
    hook, _ = receiver
    return [(headers, json.loads(body), body) for headers, body in hook.deliveries]


def test_webhooks_are_signed_and_shaped_like_the_official_events(
    square: httpx.Client, receiver: tuple[WebhookReceiver, ThreadedServer]
) -> None:
    created = _seed_from(square, example("customer.created.json")["data"]["object"]["customer"])
    square.patch(f"/_control/customers/{created['id']}", json={"given_name": "Jenny"})
    square.delete(f"/_control/customers/{created['id']}")
    _flush(square)
    events = {event["type"]: (headers, event, raw) for headers, event, raw in _delivered(receiver)}
    for event_type in ("customer.created", "customer.updated"):
        headers, event, raw = events[event_type]
        official = example(f"{event_type}.json")
        assert set(event) == set(official) and set(event["data"]) == set(official["data"])
        assert set(event["data"]["object"]) == set(official["data"]["object"])
        assert is_valid_signature(
            raw, headers[SIGNATURE_HEADER], signature_key=SIGNATURE_KEY, notification_url=NOTIFICATION_URL
        )
        assert headers["square-environment"] == "Sandbox" and headers["square-retry-number"] == "0"
    _, deleted, _ = events["customer.deleted"]
    assert deleted["data"]["deleted"] is True and "group_ids" not in deleted["data"]["object"]["customer"]
    assert events["customer.updated"][1]["data"]["object"]["customer"]["version"] == 1


def test_failed_deliveries_are_retried_until_accepted(
    square: httpx.Client, receiver: tuple[WebhookReceiver, ThreadedServer]
) -> None:
    hook, _ = receiver
    hook.script = [500, 503]
    _seed_from(square, {"given_name": "Retry"})
    _flush(square)
    retries = [headers["square-retry-number"] for headers, _ in hook.deliveries]
    assert retries == ["0", "1", "2"]
    assert len({json.loads(body)["event_id"] for _, body in hook.deliveries}) == 1


def test_duplicates_and_reordering_on_request(
    square: httpx.Client, receiver: tuple[WebhookReceiver, ThreadedServer]
) -> None:
    square.post("/_control/delivery", json={"paused": True, "duplicate_rate": 1.0, "reorder_window": 10, "seed": 3})
    created = _seed_from(square, {"given_name": "V0"})
    for version in range(1, 8):
        square.patch(f"/_control/customers/{created['id']}", json={"given_name": f"V{version}"})
    square.post("/_control/delivery", json={"paused": False, "concurrency": 1})
    _flush(square)
    versions = [event["data"]["object"]["customer"]["version"] for _, event, _ in _delivered(receiver)]
    assert sorted(set(versions)) == list(range(8)) and len(versions) == 16
    assert versions != sorted(versions)


def test_merge_fires_created_and_deleted_with_context(
    square: httpx.Client, receiver: tuple[WebhookReceiver, ThreadedServer]
) -> None:
    first, second = (
        _seed_from(square, {"given_name": "A"}),
        _seed_from(square, {"given_name": "B", "email_address": "b@example.com"}),
    )
    survivor = square.post("/_control/merge", json={"customer_ids": [first["id"], second["id"]]}).json()
    _flush(square)
    merge_events = [e for _, e, _ in _delivered(receiver) if "event_context" in e["data"]["object"]]
    assert sorted(e["type"] for e in merge_events) == ["customer.created", "customer.deleted", "customer.deleted"]
    context = merge_events[0]["data"]["object"]["event_context"]["merge"]
    assert context == {"from_customer_ids": [first["id"], second["id"]], "to_customer_id": survivor["id"]}
    assert square.get(f"/v2/customers/{first['id']}").json()["customer"]["id"] == survivor["id"]
