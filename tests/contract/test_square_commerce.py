"""The emulator's stores, catalog, sales and refunds against Square's official examples: response and
event shapes, and the webhooks a Point-of-Sale sale fires (payment events, never order.created)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.conftest import example
from tests.support import ThreadedServer, WebhookReceiver


def _keys(document: dict[str, Any]) -> set[str]:
    return set(document)


def _types(document: dict[str, Any], names: set[str]) -> dict[str, str]:
    return {name: type(document[name]).__name__ for name in names if name in document}


def _shop(square: httpx.Client) -> dict[str, Any]:
    location = square.post("/_control/locations", json={"name": "Grant Park"}).json()
    items = square.post(
        "/_control/catalog",
        json={
            "items": [
                {
                    "name": "Tea",
                    "category": "Drinks",
                    "variations": [{"name": "Mug", "price": 150}, {"name": "Pot", "price": 450}],
                },
                {"name": "Coffee", "category": "Drinks", "variations": [{"name": "Regular", "price": 250}]},
            ]
        },
    ).json()["objects"]
    sale = square.post(
        "/_control/sales",
        json={
            "location_id": location["id"],
            "discount_percent": 50,
            "tax_percent": 8.5,
            "tip": 100,
            "lines": [
                {"variation_id": items[0]["item_data"]["variations"][0]["id"], "quantity": 1},
                {"variation_id": items[1]["item_data"]["variations"][0]["id"], "quantity": 2},
            ],
        },
    ).json()
    return {"location": location, "items": items, **sale}


def _flush(square: httpx.Client) -> None:
    assert square.post("/_control/flush", params={"timeout": "20"}).json()["idle"]


def _events(receiver: tuple[WebhookReceiver, ThreadedServer]) -> list[dict[str, Any]]:
    return [json.loads(body) for _, body in receiver[0].deliveries]


def test_locations_match_the_official_shapes(square: httpx.Client) -> None:
    shop = _shop(square)
    official = example("api.retrieve_location.json")["location"]
    location = square.get(f"/v2/locations/{shop['location']['id']}").json()["location"]
    assert _keys(official) - {"address", "phone_number"} <= _keys(location)
    assert _types(location, _keys(official)) == _types(official, _keys(location))
    assert set(square.get("/v2/locations").json()) == set(example("api.list_locations.json"))
    assert square.get("/v2/locations/NOPE").status_code == 404


def test_order_matches_the_official_shape_and_adds_up(square: httpx.Client) -> None:
    shop = _shop(square)
    official = example("api.retrieve_order.json")["order"]
    order = square.get(f"/v2/orders/{shop['order']['id']}").json()["order"]
    assert _keys(official) - {"version"} <= _keys(order)  # POS orders carry no version
    assert "version" not in order
    line_keys = _keys(official["line_items"][0]) - {"applied_discounts"}
    assert all(line_keys <= _keys(line) for line in order["line_items"])
    assert _types(order, _keys(official)) == _types(official, _keys(order) - {"version"})
    lines_total = sum(line["total_money"]["amount"] for line in order["line_items"])
    assert order["total_money"]["amount"] == lines_total + order["total_tip_money"]["amount"]
    assert order["line_items"][0]["total_discount_money"]["amount"] == 75  # 50 % of 150
    assert order["total_tax_money"]["amount"] == sum(line["total_tax_money"]["amount"] for line in order["line_items"])


def test_batch_retrieve_orders_skips_unknown_ids(square: httpx.Client) -> None:
    shop = _shop(square)
    request = example("api.batch_retrieve_orders.request.json")
    request["order_ids"] = [shop["order"]["id"], "UNKNOWN"]
    request.pop("location_id")
    body = square.post("/v2/orders/batch-retrieve", json=request).json()
    assert set(body) == set(example("api.batch_retrieve_orders.json")) and [o["id"] for o in body["orders"]] == [
        shop["order"]["id"]
    ]


def test_payment_and_refund_match_the_official_shapes(square: httpx.Client) -> None:
    shop = _shop(square)
    official = example("api.get_payment.json")["payment"]
    payment = square.get(f"/v2/payments/{shop['payment']['id']}").json()["payment"]
    wanted = _keys(official) - {
        "delay_action",
        "delay_duration",
        "delayed_until",
        "employee_id",
        "team_member_id",
        "note",
        "processing_fee",
    }
    assert wanted <= _keys(payment)
    assert _types(payment, wanted) == _types(official, wanted)
    assert (
        payment["status"] == "COMPLETED" and payment["total_money"]["amount"] == payment["amount_money"]["amount"] + 100
    )
    assert set(square.get("/v2/payments", params={"location_id": shop["location"]["id"]}).json()) == set(
        example("api.list_payments.json")
    ) - {"cursor"}
    refund = square.post(
        "/_control/refunds", json={"payment_id": payment["id"], "amount": 100, "reason": "Broken mug"}
    ).json()
    official_refund = example("api.get_payment_refund.json")["refund"]
    fetched = square.get(f"/v2/refunds/{refund['id']}").json()["refund"]
    assert _keys(official_refund) <= _keys(fetched) and fetched["status"] == "COMPLETED"
    assert fetched["id"].startswith(payment["id"] + "_")


def test_catalog_search_and_batch_retrieve(square: httpx.Client) -> None:
    shop = _shop(square)
    search = square.post(
        "/v2/catalog/search", json={"object_types": ["ITEM"], "begin_time": "2000-01-01T00:00:00Z"}
    ).json()
    official = example("api.search_catalog_objects.json")["objects"][0]
    assert set(search) >= set(example("api.search_catalog_objects.json")) and search["latest_time"]
    assert _keys(official) <= _keys(search["objects"][0]) and _keys(official["item_data"]) - {
        "description",
        "tax_ids",
        "visibility",
    } <= _keys(search["objects"][0]["item_data"])
    nothing_new = square.post(
        "/v2/catalog/search", json={"object_types": ["ITEM"], "begin_time": search["latest_time"]}
    ).json()
    assert "objects" not in nothing_new  # begin_time is exclusive: "modified after"
    request = example("api.batch_retrieve_catalog_objects.request.json")
    request["object_ids"] = [item["id"] for item in shop["items"]]
    batch = square.post("/v2/catalog/batch-retrieve", json=request).json()
    assert set(batch) == set(example("api.batch_retrieve_catalog_objects.json"))
    assert [o["type"] for o in batch["related_objects"]] == ["CATEGORY"]


def test_a_pos_sale_fires_payment_events_and_no_order_created(
    square: httpx.Client, receiver: tuple[WebhookReceiver, ThreadedServer]
) -> None:
    shop = _shop(square)
    square.post("/_control/refunds", json={"payment_id": shop["payment"]["id"], "reason": "Changed mind"})
    _flush(square)
    events = _events(receiver)
    types = [e["type"] for e in events]
    assert "order.created" not in types
    for event_type, name in [
        ("location.created", "location.created.json"),
        ("catalog.version.updated", "catalog.version.updated.json"),
        ("payment.created", "payment.created.json"),
        ("refund.created", "refund.created.json"),
        ("order.updated", "order.updated.json"),
    ]:
        event = next(e for e in events if e["type"] == event_type)
        official = example(name)
        assert set(official) <= set(event), event_type
        assert set(official["data"]) <= set(event["data"]), event_type
        if "object" in official["data"]:
            assert set(official["data"]["object"]) == set(event["data"]["object"]), event_type
    order_updated = next(e for e in events if e["type"] == "order.updated")["data"]["object"]["order_updated"]
    assert set(order_updated) == set(example("order.updated.json")["data"]["object"]["order_updated"]) - {"version"}
    created = next(e for e in events if e["type"] == "payment.created")["data"]["object"]["payment"]
    assert created["status"] == "APPROVED" and created["order_id"] == shop["order"]["id"]


def test_an_api_created_order_fires_order_created_with_a_version(
    square: httpx.Client, receiver: tuple[WebhookReceiver, ThreadedServer]
) -> None:
    location = square.post("/_control/locations", json={"name": "Online"}).json()
    sale = square.post(
        "/_control/sales",
        json={
            "location_id": location["id"],
            "via_api": True,
            "source": "Online Store",
            "lines": [{"name": "Gift card", "price": 2500}],
        },
    ).json()
    _flush(square)
    created = next(e for e in _events(receiver) if e["type"] == "order.created")
    assert set(created["data"]["object"]["order_created"]) == set(
        example("order.created.json")["data"]["object"]["order_created"]
    )
    assert sale["order"]["version"] == 1
