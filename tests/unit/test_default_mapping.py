"""The shipped configuration file reproduces the payloads Tillbridge wrote before mappings were
configurable: each expected payload below was written out (literally) from the code before the mapping
engine existed, and is compared with what the engine now produces from config/tillbridge.yaml. One deliberate
change since: a customer without an address gets the address columns cleared (None), so removing an address
in Square clears it in the CRM (before, the old address stayed)."""

from __future__ import annotations

from typing import Any

from shared.config.file import load_config
from shared.core.models import SquareCustomer
from shared.flows import commerce_mapping as cm
from shared.flows.customer_mapping import ContactColumns, map_customer
from tests.conftest import example

T = cm.Tables("tb")
CONFIG = load_config("config/tillbridge.yaml", prefix="tb")

CUSTOMERS: dict[str, dict[str, Any]] = {
    "created": example("customer.created.json")["data"]["object"]["customer"],
    "retrieve": example("api.retrieve_customer.json")["customer"],
    "bare": {
        "id": "C9",
        "given_name": "  Ada ",
        "family_name": "",
        "birthday": "0000-09-21",
        "preferences": {"email_unsubscribed": True},
    },
    "partial_address": {
        "id": "C8",
        "email_address": " Mixed@Example.COM ",
        "phone_number": "(212) 555-0100",
        "address": {"locality": " Oakland "},
        "company_name": "Acme",
    },
}
ORDER2: dict[str, Any] = {
    "id": "O2",
    "refunds": [{"status": "COMPLETED", "amount_money": {"amount": 400, "currency": "JPY"}}],
    "total_money": {"amount": 1000, "currency": "jpy"},
    "state": "COMPLETED",
    "line_items": [
        {"uid": "a", "catalog_object_id": "V1", "quantity": "1.5"},
        {"uid": "b", "quantity": "1", "name": "Scone", "base_price_money": {"amount": 300, "currency": "JPY"}},
    ],
}


def produced() -> dict[str, Any]:
    columns = ContactColumns("tb")
    out: dict[str, Any] = {}
    for name, raw in CUSTOMERS.items():
        customer = SquareCustomer.model_validate(raw)
        out["contact_" + name] = map_customer(
            customer, columns=columns, phone_region="US", mapping=CONFIG.contact_mapping
        ).payload
    order = example("api.retrieve_order.json")["order"]
    payment = example("api.get_payment.json")["payment"]
    catalog = {"V1": cm.CatalogEntry("Tea", "Mug", "SKU-1", "Drinks")}
    out["transaction_order"] = cm.transaction_payload(T, order, None, CONFIG)
    out["transaction_with_payment"] = cm.transaction_payload(T, order, payment, CONFIG)
    out["lines_order"] = cm.line_payloads(T, order, {}, CONFIG)
    out["transaction_refunded"] = cm.transaction_payload(T, ORDER2, {"id": "PAYMENT123456789"}, CONFIG)
    out["lines_catalog"] = cm.line_payloads(T, ORDER2, catalog, CONFIG)
    out["payment_example"] = cm.payment_payload(T, payment, CONFIG)
    cash = {
        "id": "PCASH000000001",
        "status": "COMPLETED",
        "amount_money": {"amount": 250, "currency": "EUR"},
        "source_type": "CASH",
    }
    out["payment_cash"] = cm.payment_payload(T, cash, CONFIG)
    out["refund_example"] = cm.refund_payload(T, example("api.get_payment_refund.json")["refund"], CONFIG)
    long_reason = {"id": "R-abcdefghijkl", "reason": "x" * 600, "amount_money": {"amount": 5, "currency": "KWD"}}
    out["refund_long_reason"] = cm.refund_payload(T, long_reason, CONFIG)
    out["refund_empty_reason"] = cm.refund_payload(T, {"id": "R2", "reason": ""}, CONFIG)
    location = example("api.retrieve_location.json")["location"]
    out["location_example"] = cm.location_payload(T, location, "West", "Bay Area", CONFIG)
    out["location_bare"] = cm.location_payload(T, {"id": "L2"}, None, None, CONFIG)
    return out


def test_the_shipped_file_writes_exactly_what_tillbridge_wrote_before() -> None:
    assert produced() == EXPECTED


def test_a_column_order_change_would_not_hide_a_difference() -> None:
    """Payload dicts compare by content; the content hash (ledger echo check) must not move either."""
    from shared.flows.customer_mapping import content_hash

    assert content_hash(produced()["contact_created"]) == content_hash(EXPECTED["contact_created"])


EXPECTED: dict[str, Any] = {
    "contact_created": {
        "firstname": "Jenkins",
        "lastname": "Smorly",
        "nickname": None,
        "emailaddress1": "jenkins+smorly@squareup.com",
        "mobilephone": "+12126668929",
        "birthdate": "1962-03-04",
        "description": None,
        "donotbulkemail": False,
        "tb_squarereferenceid": None,
        "tb_squarecompanyname": None,
        "address1_line1": "1018 40th Street",
        "address1_line2": None,
        "address1_line3": None,
        "address1_city": "Oakland",
        "address1_stateorprovince": "CA",
        "address1_postalcode": "94608",
        "address1_country": None,
    },
    "contact_retrieve": {
        "firstname": "Amelia",
        "lastname": "Earhart",
        "nickname": None,
        "emailaddress1": "Amelia.Earhart@example.com",
        "mobilephone": "+12125554240",
        "birthdate": None,
        "description": "a customer",
        "donotbulkemail": False,
        "tb_squarereferenceid": "YOUR_REFERENCE_ID",
        "tb_squarecompanyname": None,
        "address1_line1": "500 Electric Ave",
        "address1_line2": "Suite 600",
        "address1_line3": None,
        "address1_city": "New York",
        "address1_stateorprovince": "NY",
        "address1_postalcode": "10003",
        "address1_country": "US",
    },
    "contact_bare": {
        "firstname": "Ada",
        "lastname": None,
        "nickname": None,
        "emailaddress1": None,
        "mobilephone": None,
        "birthdate": None,
        "description": None,
        "donotbulkemail": True,
        "tb_squarereferenceid": None,
        "tb_squarecompanyname": None,
        "address1_line1": None,
        "address1_line2": None,
        "address1_line3": None,
        "address1_city": None,
        "address1_stateorprovince": None,
        "address1_postalcode": None,
        "address1_country": None,
    },
    "contact_partial_address": {
        "firstname": None,
        "lastname": None,
        "nickname": None,
        "emailaddress1": "Mixed@example.com",
        "mobilephone": "+12125550100",
        "birthdate": None,
        "description": None,
        "donotbulkemail": False,
        "tb_squarereferenceid": None,
        "tb_squarecompanyname": "Acme",
        "address1_line1": None,
        "address1_line2": None,
        "address1_line3": None,
        "address1_city": "Oakland",
        "address1_stateorprovince": None,
        "address1_postalcode": None,
        "address1_country": None,
    },
    "transaction_order": {
        "tb_state": "OPEN",
        "tb_source": None,
        "tb_currency": "USD",
        "tb_totalamount": 5.5,
        "tb_taxamount": 0.0,
        "tb_discountamount": 5.5,
        "tb_tipamount": 0.0,
        "tb_servicechargeamount": 0.0,
        "tb_refundedamount": 0.0,
        "tb_squarecreatedon": "2020-05-18T16:30:49.614Z",
        "tb_squareupdatedon": "2020-05-18T16:30:49.614Z",
        "tb_closedon": None,
    },
    "transaction_with_payment": {
        "tb_state": "OPEN",
        "tb_source": None,
        "tb_currency": "USD",
        "tb_totalamount": 5.5,
        "tb_taxamount": 0.0,
        "tb_discountamount": 5.5,
        "tb_tipamount": 0.0,
        "tb_servicechargeamount": 0.0,
        "tb_refundedamount": 0.0,
        "tb_squarecreatedon": "2020-05-18T16:30:49.614Z",
        "tb_squareupdatedon": "2020-05-18T16:30:49.614Z",
        "tb_closedon": None,
        "tb_name": "Sale bP9m",
        "tb_receiptnumber": "bP9m",
        "tb_receipturl": "https://squareup.com/receipt/preview/bP9mAsEMYPUGjjGNaNO5ZDVyLhSZY",
    },
    "lines_order": [
        (
            "CAISENgvlJ6jLWAzERDzjyHVybY.ULkg0tQTRK2bkU9fNv3IJD",
            {
                "tb_name": "Item 1",
                "tb_quantity": 1.0,
                "tb_unitprice": 5.0,
                "tb_grossamount": 5.0,
                "tb_discountamount": 2.5,
                "tb_taxamount": 0.0,
                "tb_totalamount": 2.5,
                "tb_currency": "USD",
                "tb_sku": None,
                "tb_itemname": "Item 1",
                "tb_variationname": None,
                "tb_categoryname": None,
                "tb_catalogobjectid": None,
            },
        ),
        (
            "CAISENgvlJ6jLWAzERDzjyHVybY.mumY8Nun4BC5aKe2yyx5a",
            {
                "tb_name": "Item 2",
                "tb_quantity": 2.0,
                "tb_unitprice": 3.0,
                "tb_grossamount": 6.0,
                "tb_discountamount": 3.0,
                "tb_taxamount": 0.0,
                "tb_totalamount": 3.0,
                "tb_currency": "USD",
                "tb_sku": None,
                "tb_itemname": "Item 2",
                "tb_variationname": None,
                "tb_categoryname": None,
                "tb_catalogobjectid": None,
            },
        ),
    ],
    "transaction_refunded": {
        "tb_state": "PARTIALLY_REFUNDED",
        "tb_source": None,
        "tb_currency": "JPY",
        "tb_totalamount": 1000.0,
        "tb_taxamount": None,
        "tb_discountamount": None,
        "tb_tipamount": None,
        "tb_servicechargeamount": None,
        "tb_refundedamount": 400.0,
        "tb_squarecreatedon": None,
        "tb_squareupdatedon": None,
        "tb_closedon": None,
        "tb_name": "Order O2",
        "tb_receiptnumber": None,
        "tb_receipturl": None,
    },
    "lines_catalog": [
        (
            "O2.a",
            {
                "tb_name": "Tea",
                "tb_quantity": 1.5,
                "tb_unitprice": None,
                "tb_grossamount": None,
                "tb_discountamount": None,
                "tb_taxamount": None,
                "tb_totalamount": None,
                "tb_currency": None,
                "tb_sku": "SKU-1",
                "tb_itemname": "Tea",
                "tb_variationname": "Mug",
                "tb_categoryname": "Drinks",
                "tb_catalogobjectid": "V1",
            },
        ),
        (
            "O2.b",
            {
                "tb_name": "Scone",
                "tb_quantity": 1.0,
                "tb_unitprice": 300.0,
                "tb_grossamount": None,
                "tb_discountamount": None,
                "tb_taxamount": None,
                "tb_totalamount": None,
                "tb_currency": "JPY",
                "tb_sku": None,
                "tb_itemname": "Scone",
                "tb_variationname": None,
                "tb_categoryname": None,
                "tb_catalogobjectid": None,
            },
        ),
    ],
    "payment_example": {
        "tb_name": "Payment bP9m",
        "tb_status": "COMPLETED",
        "tb_currency": "USD",
        "tb_amount": 5.55,
        "tb_tipamount": 0.0,
        "tb_totalamount": 5.55,
        "tb_refundedamount": 0.0,
        "tb_sourcetype": "CARD",
        "tb_cardbrand": "VISA",
        "tb_last4": "1111",
        "tb_receiptnumber": "bP9m",
        "tb_receipturl": "https://squareup.com/receipt/preview/bP9mAsEMYPUGjjGNaNO5ZDVyLhSZY",
        "tb_squareorderid": "d7eKah653Z579f3gVtjlxpSlmUcZY",
        "tb_squarecreatedon": "2021-10-13T19:34:33.524Z",
        "tb_squareupdatedon": "2021-10-13T19:34:34.339Z",
    },
    "payment_cash": {
        "tb_name": "Payment PCASH0000000",
        "tb_status": "COMPLETED",
        "tb_currency": "EUR",
        "tb_amount": 2.5,
        "tb_tipamount": 0.0,
        "tb_totalamount": None,
        "tb_refundedamount": 0.0,
        "tb_sourcetype": "CASH",
        "tb_cardbrand": None,
        "tb_last4": None,
        "tb_receiptnumber": None,
        "tb_receipturl": None,
        "tb_squareorderid": None,
        "tb_squarecreatedon": None,
        "tb_squareupdatedon": None,
    },
    "refund_example": {
        "tb_name": "Refund xcWYjGxd",
        "tb_status": "COMPLETED",
        "tb_currency": "USD",
        "tb_amount": 5.55,
        "tb_reason": "Example Refund",
        "tb_squarepaymentid": "bP9mAsEMYPUGjjGNaNO5ZDVyLhSZY",
        "tb_squareorderid": "9ltv0bx5PuvGXUYHYHxYSKEqC3IZY",
        "tb_squarecreatedon": "2021-10-13T19:59:05.073Z",
        "tb_squareupdatedon": "2021-10-13T20:00:02.442Z",
    },
    "refund_long_reason": {
        "tb_name": "Refund efghijkl",
        "tb_status": None,
        "tb_currency": "KWD",
        "tb_amount": 0.005,
        "tb_reason": "x" * 500,
        "tb_squarepaymentid": None,
        "tb_squareorderid": None,
        "tb_squarecreatedon": None,
        "tb_squareupdatedon": None,
    },
    "refund_empty_reason": {
        "tb_name": "Refund R2",
        "tb_status": None,
        "tb_currency": None,
        "tb_amount": None,
        "tb_reason": None,
        "tb_squarepaymentid": None,
        "tb_squareorderid": None,
        "tb_squarecreatedon": None,
        "tb_squareupdatedon": None,
    },
    "location_example": {
        "tb_name": "Grant Park",
        "tb_currency": "USD",
        "tb_timezone": "America/Los_Angeles",
        "tb_status": "ACTIVE",
        "tb_address": "123 Main St, San Francisco, CA, 94114, US",
        "tb_businessunitname": "West",
        "tb_territoryname": "Bay Area",
    },
    "location_bare": {
        "tb_name": "L2",
        "tb_currency": None,
        "tb_timezone": None,
        "tb_status": None,
        "tb_address": None,
        "tb_businessunitname": None,
        "tb_territoryname": None,
    },
}
