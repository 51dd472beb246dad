"""Pure mapping of Square orders, payments, refunds, locations; purchase aggregates."""

from __future__ import annotations

from decimal import Decimal

from shared.flows.commerce_mapping import (
    UNNAMED_LINE,
    CatalogEntry,
    Tables,
    line_payloads,
    location_payload,
    order_state,
    payment_payload,
    refund_payload,
    transaction_payload,
)
from shared.flows.purchase_stats import PurchaseStats, add_payment, add_refund, contact_fields
from tests.conftest import example

T = Tables("tb")


def test_official_order_example_maps_header_and_lines() -> None:
    order = example("api.retrieve_order.json")["order"]
    header = transaction_payload(T, order, None)
    assert header["tb_totalamount"] == 5.5 and header["tb_discountamount"] == 5.5 and header["tb_currency"] == "USD"
    lines = line_payloads(T, order, {})
    assert [key for key, _ in lines] == [
        f"{order['id']}.ULkg0tQTRK2bkU9fNv3IJD",
        f"{order['id']}.mumY8Nun4BC5aKe2yyx5a",
    ]
    assert (
        lines[1][1]["tb_quantity"] == 2.0
        and lines[1][1]["tb_unitprice"] == 3.0
        and lines[1][1]["tb_totalamount"] == 3.0
    )


def test_yen_has_no_minor_unit() -> None:
    order = {
        "id": "O",
        "total_money": {"amount": 1500, "currency": "JPY"},
        "line_items": [
            {
                "uid": "u",
                "name": "Matcha",
                "quantity": "1",
                "base_price_money": {"amount": 1500, "currency": "JPY"},
                "total_money": {"amount": 1500, "currency": "JPY"},
            }
        ],
    }
    assert transaction_payload(T, order, None)["tb_totalamount"] == 1500.0
    assert line_payloads(T, order, {})[0][1]["tb_unitprice"] == 1500.0


def test_lines_take_names_from_the_catalog_or_a_placeholder() -> None:
    order = {
        "id": "O",
        "line_items": [{"uid": "a", "catalog_object_id": "V1", "quantity": "1"}, {"uid": "b", "quantity": "1"}],
    }
    catalog = {"V1": CatalogEntry("Tea", "Mug", "SKU-1", "Drinks")}
    (_, named), (_, unnamed) = line_payloads(T, order, catalog)
    assert (named["tb_name"], named["tb_sku"], named["tb_categoryname"], named["tb_variationname"]) == (
        "Tea",
        "SKU-1",
        "Drinks",
        "Mug",
    )
    assert unnamed["tb_name"] == UNNAMED_LINE and unnamed["tb_itemname"] is None


def test_payment_and_refund_examples() -> None:
    payment = payment_payload(T, example("api.get_payment.json")["payment"])
    assert (payment["tb_amount"], payment["tb_cardbrand"], payment["tb_last4"], payment["tb_status"]) == (
        5.55,
        "VISA",
        "1111",
        "COMPLETED",
    )
    assert payment["tb_squareorderid"] == "d7eKah653Z579f3gVtjlxpSlmUcZY" and payment["tb_receipturl"].startswith(
        "https://"
    )
    refund = refund_payload(T, example("api.get_payment_refund.json")["refund"])
    assert (refund["tb_amount"], refund["tb_reason"], refund["tb_status"]) == (5.55, "Example Refund", "COMPLETED")


def test_refunds_change_the_order_state() -> None:
    order = {
        "id": "ORDER1",
        "state": "COMPLETED",
        "total_money": {"amount": 1000, "currency": "USD"},
        "refunds": [{"status": "COMPLETED", "amount_money": {"amount": 400, "currency": "USD"}}],
    }
    assert order_state(order) == "PARTIALLY_REFUNDED"
    order["refunds"].append({"status": "COMPLETED", "amount_money": {"amount": 600, "currency": "USD"}})
    assert order_state(order) == "REFUNDED"
    assert transaction_payload(T, order, None)["tb_refundedamount"] == 10.0


def test_location_example() -> None:
    location = location_payload(T, example("api.retrieve_location.json")["location"], "West", "Bay Area")
    assert location["tb_name"] == "Grant Park" and location["tb_address"] == "123 Main St, San Francisco, CA, 94114, US"
    assert (location["tb_businessunitname"], location["tb_territoryname"]) == ("West", "Bay Area")


def test_purchase_stats_count_each_payment_and_refund_once() -> None:
    stats = PurchaseStats()
    usd = {"currency": "USD"}
    assert add_payment(stats, "P1", Decimal("10.50"), at="2026-01-01T10:00:00Z", categories=["Drinks", "Food"], **usd)
    assert not add_payment(stats, "P1", Decimal("10.50"), at="2026-01-01T10:00:00Z", categories=["Drinks"], **usd)
    add_payment(stats, "P2", Decimal("4.00"), at="2026-01-02T10:00:00Z", categories=["Drinks"], **usd)
    assert add_refund(stats, "R1", Decimal("2.50"), **usd) and not add_refund(stats, "R1", Decimal("2.50"), **usd)
    fields = contact_fields(PurchaseStats.from_document(stats.to_document()), T.col)
    assert fields == {
        "tb_lastpurchaseon": "2026-01-02T10:00:00Z",
        "tb_lifetimevalue": 12.0,
        "tb_lifetimecurrency": "USD",
        "tb_visitcount": 2,
        "tb_topcategories": "Drinks, Food",
    }


def test_lifetime_value_never_adds_currencies_and_the_home_currency_is_the_earliest_purchase() -> None:
    """A buyer in the San Francisco store (USD) and the Tokyo store (JPY): 1,500 yen are not 1,500 dollars."""

    def counted(order: list[tuple[str, str, str, str]]) -> dict[str, object]:
        stats = PurchaseStats()
        for payment_id, amount, currency, at in order:
            add_payment(stats, payment_id, Decimal(amount), currency=currency, at=at, categories=[])
        add_refund(stats, "R-JPY", Decimal("500"), currency="JPY")
        return contact_fields(PurchaseStats.from_document(stats.to_document()), T.col)

    payments = [
        ("P-USD-1", "12.00", "USD", "2026-01-01T10:00:00Z"),
        ("P-JPY-1", "1500", "JPY", "2026-01-05T10:00:00Z"),
        ("P-USD-2", "8.00", "USD", "2026-01-09T10:00:00Z"),
    ]
    in_order, reversed_order = counted(payments), counted(payments[::-1])
    assert in_order == reversed_order  # arrival order does not choose the currency
    assert (in_order["tb_lifetimevalue"], in_order["tb_lifetimecurrency"]) == (20.0, "USD")
    assert in_order["tb_visitcount"] == 3


def test_stats_written_before_money_was_per_currency_still_read() -> None:
    legacy = PurchaseStats.from_document({"paid": "30.00", "refunded": "5.00", "visits": 2})
    assert (legacy.paid - legacy.refunded, legacy.visits) == (Decimal("25.00"), 2)
