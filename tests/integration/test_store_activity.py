"""Store activity through the local host: sales, payments, refunds, stores and the catalog reach the CRM
exactly, under duplicated and reordered webhooks (a refund may arrive before its sale)."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.commerce_check import catalog_from, commerce_differences
from tests.integration.conftest import MAPPED_STORE, TOKYO_STORE, UNMAPPED_STORE, WEST_TEAM
from tests.stackkit import StackKit, wait_until

pytestmark = pytest.mark.integration


def _scope(state: dict[str, Any], order_ids: set[str]) -> dict[str, Any]:
    """Only this test's objects (other tests share the stack)."""
    return {
        "orders": [o for o in state["orders"] if o["id"] in order_ids],
        "payments": [p for p in state["payments"] if p.get("order_id") in order_ids],
        "refunds": [r for r in state["refunds"] if r.get("order_id") in order_ids],
        "locations": [loc for loc in state["locations"] if loc["id"] in {MAPPED_STORE, UNMAPPED_STORE, TOKYO_STORE}],
    }


def _assert_matches(kit: StackKit, order_ids: set[str]) -> None:
    state = kit.commerce_state()
    problems = commerce_differences(_scope(state, order_ids), kit.crm_commerce(), catalog_from(state["catalog"]))
    assert not problems, problems


def test_sales_payments_refunds_stores_and_catalog(kit: StackKit) -> None:
    kit.delivery(paused=True, duplicate_rate=0.4, reorder_window=30, delay_ms_max=150, seed=5)
    for store_id, name, currency in [
        (MAPPED_STORE, "Grant Park", "USD"),
        (UNMAPPED_STORE, "Midtown", "USD"),
        (TOKYO_STORE, "Shibuya", "JPY"),
    ]:
        if store_id not in {loc["id"] for loc in kit.commerce_state()["locations"]}:
            kit.add_store(id=store_id, name=name, currency=currency)
    items = kit.edit_catalog(
        [
            {"name": "Tea", "category": "Drinks", "variations": [{"name": "Mug", "price": 350, "sku": "TEA-MUG"}]},
            {"name": "Scone", "category": "Bakery", "variations": [{"name": "Plain", "price": 425, "sku": "SCN-1"}]},
        ]
    )
    tea, scone = (item["item_data"]["variations"][0]["id"] for item in items)
    ada = kit.create(given_name="Ada", family_name="Buyer", email_address="ada.buyer@example.com")
    sales = [
        kit.sale(
            location_id=MAPPED_STORE,
            customer_id=ada["id"],
            discount_percent=10,
            tax_percent=8.5,
            tip=200,
            lines=[{"variation_id": tea, "quantity": 2}, {"variation_id": scone, "quantity": 1}],
        ),
        kit.sale(location_id=MAPPED_STORE, customer_id=ada["id"], lines=[{"variation_id": scone, "quantity": 3}]),
        kit.sale(
            location_id=UNMAPPED_STORE,
            buyer_email_address="walk.in@example.com",
            lines=[{"name": "Gift wrap", "price": 150}],
        ),
        kit.sale(
            location_id=TOKYO_STORE, lines=[{"variation_id": tea, "quantity": 1}, {"price": 500}]
        ),  # no name on one line
    ]
    small = kit.refund(sales[0]["payment"]["id"], 300, "Cold tea")
    large = kit.refund(sales[1]["payment"]["id"], None, "Wrong order")  # whole payment: above the case threshold
    kit.delivery(paused=False)
    kit.flush()
    order_ids = {sale["order"]["id"] for sale in sales}
    wait_until(lambda: _assert_matches(kit, order_ids), timeout=120)

    transactions = {t["tb_squareorderid"]: t for t in kit.crm_table("tb_transactions")}
    contacts = {c.get("tb_squarecustomerid"): c for c in kit.contacts()}
    first = transactions[sales[0]["order"]["id"]]
    assert first.get("_tb_contactid_value") == contacts[ada["id"]]["contactid"], sorted(first.items())
    assert first["_ownerid_value"] == WEST_TEAM and first["tb_state"] == "PARTIALLY_REFUNDED"
    guest = transactions[sales[2]["order"]["id"]]
    guest_contact = next(c for c in kit.contacts() if c["contactid"] == guest["_tb_contactid_value"])
    assert guest_contact["emailaddress1"] == "walk.in@example.com"
    assert guest["_ownerid_value"] == "00000000-0000-0000-0000-0000000000a1"  # unmapped store: the default owner
    tokyo = transactions[sales[3]["order"]["id"]]
    assert tokyo["tb_currency"] == "JPY" and tokyo["tb_totalamount"] == float(
        sales[3]["order"]["total_money"]["amount"]
    )
    lines = [
        line
        for line in kit.crm_table("tb_transactionlines")
        if line["_tb_transactionid_value"] == tokyo["tb_transactionid"]
    ]
    assert sorted(line["tb_name"] for line in lines) == ["(unnamed item)", "Tea"]

    # the buyer's aggregates: two visits, lifetime value net of refunds, top categories, last purchase
    wait_until(lambda: _assert_aggregates(kit, ada["id"], sales[:2], [small, large]), timeout=60)
    refunds = {r["tb_squarerefundid"]: r for r in kit.crm_table("tb_refunds")}
    assert refunds[large["id"]]["_tb_transactionid_value"] == transactions[sales[1]["order"]["id"]]["tb_transactionid"]
    cases = [i for i in kit.crm_table("incidents") if large["id"] in (i.get("description") or "")]
    assert len(cases) == 1 and cases[0]["_customerid_value"] == contacts[ada["id"]]["contactid"]
    assert not [
        i for i in kit.crm_table("incidents") if small["id"] in (i.get("description") or "")
    ]  # below the threshold

    stores = {s["tb_squarelocationid"]: s for s in kit.crm_table("tb_locations")}
    assert (
        stores[MAPPED_STORE]["tb_territoryname"] == "Bay Area" and stores[MAPPED_STORE]["_ownerid_value"] == WEST_TEAM
    )
    open_failures = {f.record_id: f.reason_code for f in kit.failures("locations") if f.status == "open"}
    assert open_failures.get(UNMAPPED_STORE) == "needs_mapping"
    assert not [f for f in kit.failures("sales") if f.record_id in order_ids and f.status == "open"]


def _assert_aggregates(
    kit: StackKit, customer_id: str, sales: list[dict[str, Any]], refunds: list[dict[str, Any]]
) -> None:
    contact = next(c for c in kit.contacts() if c.get("tb_squarecustomerid") == customer_id)
    paid = sum(s["payment"]["total_money"]["amount"] for s in sales) / 100
    refunded = sum(r["amount_money"]["amount"] for r in refunds) / 100
    assert contact["tb_visitcount"] == 2
    assert abs(contact["tb_lifetimevalue"] - (paid - refunded)) < 1e-9
    assert contact["tb_topcategories"] == "Bakery, Drinks"
    assert contact["tb_lastpurchaseon"] == max(s["payment"]["created_at"] for s in sales)
