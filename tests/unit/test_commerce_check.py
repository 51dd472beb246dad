"""The store-activity oracle (devstack/commerce_check.py) against hand-written Square objects and CRM rows."""

from __future__ import annotations

import copy
from typing import Any

from devstack.commerce_check import catalog_from, commerce_differences
from devstack.commerce_expected import major


def usd(cents: int) -> dict[str, Any]:
    return {"amount": cents, "currency": "USD"}


CATALOG = [
    {"type": "CATEGORY", "id": "CAT1", "category_data": {"name": "Drinks"}},
    {
        "type": "ITEM",
        "id": "ITEM1",
        "item_data": {
            "name": "Latte",
            "categories": [{"id": "CAT1"}],
            "variations": [{"id": "VAR1", "item_variation_data": {"name": "Large", "sku": "LAT-L"}}],
        },
    },
]
ORDER = {
    "id": "ORDER1",
    "location_id": "STORE1",
    "customer_id": "CUST1",
    "state": "COMPLETED",
    "source": {"name": "Point of Sale"},
    "created_at": "2026-05-01T10:00:00.000Z",
    "updated_at": "2026-05-01T10:05:00.000Z",
    "closed_at": "2026-05-01T10:00:00.000Z",
    "line_items": [
        {
            "uid": "LINE1",
            "name": "Latte",
            "catalog_object_id": "VAR1",
            "variation_name": "Large",
            "quantity": "2",
            "base_price_money": usd(500),
            "gross_sales_money": usd(1000),
            "total_discount_money": usd(100),
            "total_tax_money": usd(77),
            "total_money": usd(977),
        }
    ],
    "total_money": usd(1177),
    "total_tax_money": usd(77),
    "total_discount_money": usd(100),
    "total_tip_money": usd(200),
    "total_service_charge_money": usd(0),
    "refunds": [{"id": "REFUND1", "amount_money": usd(300), "status": "COMPLETED"}],
}
PAYMENT = {
    "id": "PAY1",
    "order_id": "ORDER1",
    "location_id": "STORE1",
    "status": "COMPLETED",
    "created_at": "2026-05-01T10:00:01.000Z",
    "updated_at": "2026-05-01T10:06:00.000Z",
    "amount_money": usd(977),
    "tip_money": usd(200),
    "total_money": usd(1177),
    "refunded_money": usd(300),
    "source_type": "CARD",
    "card_details": {"card": {"card_brand": "VISA", "last_4": "1111"}},
    "receipt_number": "AB12",
    "receipt_url": "https://squareup.com/receipt/preview/PAY1",
}
REFUND = {
    "id": "PAY1_REFUND1",
    "payment_id": "PAY1",
    "order_id": "ORDER1",
    "status": "COMPLETED",
    "amount_money": usd(300),
    "reason": "Customer request",
    "created_at": "2026-05-01T11:00:00.000Z",
    "updated_at": "2026-05-01T11:00:05.000Z",
}
STORE = {"id": "STORE1", "name": "Grant Park", "currency": "USD", "timezone": "America/Los_Angeles", "status": "ACTIVE"}
SQUARE = {
    "orders": [ORDER],
    "payments": [PAYMENT],
    "refunds": [REFUND],
    "locations": [STORE],
    "catalog": CATALOG,
    "merged_into": {},
}
OWNERS = {"STORE1": {"owner": "team-1", "business_unit": "West", "territory": "Bay Area"}}

# The CRM as it must be, written out by hand from the Square objects above.
CRM: dict[str, list[dict[str, Any]]] = {
    "tb_transactions": [
        {
            "tb_transactionid": "t-1",
            "tb_squareorderid": "ORDER1",
            "tb_name": "Sale AB12",
            "tb_state": "PARTIALLY_REFUNDED",
            "tb_source": "Point of Sale",
            "tb_currency": "USD",
            "tb_totalamount": 11.77,
            "tb_taxamount": 0.77,
            "tb_discountamount": 1.0,
            "tb_tipamount": 2.0,
            "tb_servicechargeamount": 0.0,
            "tb_refundedamount": 3.0,
            "tb_receiptnumber": "AB12",
            "tb_receipturl": "https://squareup.com/receipt/preview/PAY1",
            "tb_squarecreatedon": "2026-05-01T10:00:00.000Z",
            "tb_squareupdatedon": "2026-05-01T10:05:00.000Z",
            "tb_closedon": "2026-05-01T10:00:00.000Z",
            "_tb_locationid_value": "s-1",
            "_tb_contactid_value": "c-1",
            "_ownerid_value": "team-1",
        }
    ],
    "tb_transactionlines": [
        {
            "tb_squarelinekey": "ORDER1.LINE1",
            "_tb_transactionid_value": "t-1",
            "tb_name": "Latte",
            "tb_itemname": "Latte",
            "tb_variationname": "Large",
            "tb_sku": "LAT-L",
            "tb_categoryname": "Drinks",
            "tb_catalogobjectid": "VAR1",
            "tb_quantity": 2.0,
            "tb_unitprice": 5.0,
            "tb_grossamount": 10.0,
            "tb_discountamount": 1.0,
            "tb_taxamount": 0.77,
            "tb_totalamount": 9.77,
            "tb_currency": "USD",
        }
    ],
    "tb_payments": [
        {
            "tb_squarepaymentid": "PAY1",
            "_tb_transactionid_value": "t-1",
            "tb_name": "Payment AB12",
            "tb_status": "COMPLETED",
            "tb_currency": "USD",
            "tb_amount": 9.77,
            "tb_tipamount": 2.0,
            "tb_totalamount": 11.77,
            "tb_refundedamount": 3.0,
            "tb_sourcetype": "CARD",
            "tb_cardbrand": "VISA",
            "tb_last4": "1111",
            "tb_receiptnumber": "AB12",
            "tb_receipturl": "https://squareup.com/receipt/preview/PAY1",
            "tb_squareorderid": "ORDER1",
            "tb_squarecreatedon": "2026-05-01T10:00:01.000Z",
            "tb_squareupdatedon": "2026-05-01T10:06:00.000Z",
        }
    ],
    "tb_refunds": [
        {
            "tb_squarerefundid": "PAY1_REFUND1",
            "_tb_transactionid_value": "t-1",
            "tb_name": "Refund _REFUND1",
            "tb_status": "COMPLETED",
            "tb_currency": "USD",
            "tb_amount": 3.0,
            "tb_reason": "Customer request",
            "tb_squarepaymentid": "PAY1",
            "tb_squareorderid": "ORDER1",
            "tb_squarecreatedon": "2026-05-01T11:00:00.000Z",
            "tb_squareupdatedon": "2026-05-01T11:00:05.000Z",
        }
    ],
    "tb_locations": [
        {
            "tb_locationid": "s-1",
            "tb_squarelocationid": "STORE1",
            "tb_name": "Grant Park",
            "tb_currency": "USD",
            "tb_timezone": "America/Los_Angeles",
            "tb_status": "ACTIVE",
            "tb_address": None,
            "tb_businessunitname": "West",
            "tb_territoryname": "Bay Area",
            "_ownerid_value": "team-1",
        }
    ],
    "contacts": [
        {
            "contactid": "c-1",
            "statecode": 0,
            "tb_squarecustomerid": "CUST1",
            "tb_visitcount": 1,
            "tb_lifetimevalue": 8.77,
            "tb_lastpurchaseon": "2026-05-01T10:00:01.000Z",
            "tb_topcategories": "Drinks",
        }
    ],
    "incidents": [],
}


def _check(square: dict[str, Any], crm: dict[str, list[dict[str, Any]]], threshold: float = 25) -> dict[str, str]:
    return commerce_differences(square, crm, catalog_from(square["catalog"]), OWNERS, threshold)


def _crm_with(table: str, **changes: Any) -> dict[str, list[dict[str, Any]]]:
    crm = copy.deepcopy(CRM)
    crm[table][0].update(changes)
    return crm


def test_money_by_the_currencys_exponent() -> None:
    assert [str(major({"amount": 1999, "currency": c})) for c in ("USD", "JPY", "KWD")] == ["19.99", "1999", "1.999"]


def test_a_crm_written_as_the_tables_say_matches() -> None:
    assert _check(SQUARE, CRM) == {}


def test_a_dropped_tip_or_a_wrong_exponent_is_reported() -> None:
    assert _check(SQUARE, _crm_with("tb_transactions", tb_tipamount=0.0)) == {"ORDER1": "differs: tb_tipamount"}
    assert _check(SQUARE, _crm_with("tb_payments", tb_totalamount=1177.0)) == {"PAY1": "differs: tb_totalamount"}


def test_lines_are_checked_by_the_documented_key_and_their_link() -> None:
    wrong_key = _crm_with("tb_transactionlines", tb_squarelinekey="ORDER1:LINE1")
    assert _check(SQUARE, wrong_key) == {"ORDER1": "differs: line ORDER1.LINE1"}
    unlinked = _crm_with("tb_transactionlines", _tb_transactionid_value="t-other")
    assert _check(SQUARE, unlinked) == {"ORDER1": "differs: line ORDER1.LINE1"}
    unnamed = _crm_with("tb_transactionlines", tb_sku=None, tb_categoryname="Bakery")
    assert _check(SQUARE, unnamed) == {"ORDER1": "differs: line.tb_categoryname, line.tb_sku"}


def test_state_refunds_links_owner_and_stores_are_checked() -> None:
    assert _check(SQUARE, _crm_with("tb_transactions", tb_state="COMPLETED")) == {"ORDER1": "differs: tb_state"}
    assert _check(SQUARE, _crm_with("tb_transactions", _tb_contactid_value=None)) == {
        "ORDER1": "differs: contactid link"
    }
    assert _check(SQUARE, _crm_with("tb_refunds", tb_amount=300.0)) == {"PAY1_REFUND1": "differs: tb_amount"}
    assert _check(SQUARE, _crm_with("tb_locations", tb_territoryname=None, _ownerid_value="x")) == {
        "STORE1": "differs: tb_territoryname, owner link"
    }
    missing = copy.deepcopy(CRM)
    missing["tb_payments"] = []
    assert _check(SQUARE, missing) == {"PAY1": "expected one row, found 0"}


def test_buyer_aggregates_and_cases() -> None:
    assert _check(SQUARE, _crm_with("contacts", tb_lifetimevalue=11.77)) == {
        "contact of CUST1": "differs: tb_lifetimevalue"
    }
    assert _check(SQUARE, _crm_with("contacts", tb_topcategories=None)) == {
        "contact of CUST1": "differs: tb_topcategories"
    }
    # a refund of 3.00 opens a case from a threshold of 2, linked to the buyer
    assert _check(SQUARE, CRM, threshold=2) == {"case for PAY1_REFUND1": "expected 1 case(s), found 0"}
    case = {"description": "Square refund PAY1_REFUND1 for payment PAY1", "_customerid_value": "c-1"}
    with_case = copy.deepcopy(CRM) | {"incidents": [case]}
    assert _check(SQUARE, with_case, threshold=2) == {}
    assert _check(SQUARE, with_case) == {"case for PAY1_REFUND1": "expected 0 case(s), found 1"}


def test_a_guest_sale_links_the_one_contact_with_the_buyers_email_and_merges_are_followed() -> None:
    guest = copy.deepcopy(SQUARE)
    del guest["orders"][0]["customer_id"]
    guest["payments"][0]["buyer_email_address"] = "Guest1@example.com"
    crm = copy.deepcopy(CRM)
    crm["contacts"].append({"contactid": "c-guest", "statecode": 0, "emailaddress1": "guest1@example.com"})
    crm["tb_transactions"][0]["_tb_contactid_value"] = "c-guest"
    assert _check(guest, crm) == {}
    merged = copy.deepcopy(SQUARE)
    merged["orders"][0]["customer_id"] = "OLD1"
    merged["merged_into"] = {"OLD1": "CUST1"}
    assert _check(merged, CRM) == {}


def test_a_line_square_gives_no_name_expects_the_documented_placeholder() -> None:
    square = copy.deepcopy(SQUARE)
    line = square["orders"][0]["line_items"][0]
    del line["name"], line["catalog_object_id"], line["variation_name"]
    crm = _crm_with("tb_transactionlines", tb_name="(unnamed item)", tb_itemname=None, tb_sku=None)
    crm["tb_transactionlines"][0].update(tb_variationname=None, tb_categoryname=None, tb_catalogobjectid=None)
    crm["contacts"][0]["tb_topcategories"] = None  # no catalog line: no category bought
    assert _check(square, crm) == {}
    crm["tb_transactionlines"][0]["tb_name"] = None
    assert _check(square, crm) == {"ORDER1": "differs: line.tb_name"}
