"""The customer oracle (devstack/crm_check.py) against hand-written Square customers and CRM rows."""

from __future__ import annotations

from typing import Any

from devstack.crm_check import differences, expected_contact

ADA = {
    "id": "CUST1",
    "given_name": "  Ada ",
    "family_name": "Lovelace",
    "nickname": " ",
    "email_address": " Ada.Lovelace@Example.COM ",
    "phone_number": "(206) 555-0100",
    "birthday": "1815-12-10",
    "note": "prefers email",
    "reference_id": "REF-7",
    "company_name": "Analytical Engines",
    "preferences": {"email_unsubscribed": True},
    "address": {
        "address_line_1": "12 St James's Square ",
        "locality": "London",
        "administrative_district_level_1": "LND",
        "postal_code": "SW1Y 4JH",
        "country": "GB",
    },
}
# What the CRM must hold for ADA, written out by hand.
ADA_ROW = {
    "contactid": "c-1",
    "statecode": 0,
    "tb_squarecustomerid": "CUST1",
    "firstname": "Ada",
    "lastname": "Lovelace",
    "nickname": None,
    "emailaddress1": "Ada.Lovelace@example.com",
    "mobilephone": "+12065550100",
    "birthdate": "1815-12-10",
    "description": "prefers email",
    "donotbulkemail": True,
    "tb_squarereferenceid": "REF-7",
    "tb_squarecompanyname": "Analytical Engines",
    "address1_line1": "12 St James's Square",
    "address1_line2": None,
    "address1_line3": None,
    "address1_city": "London",
    "address1_stateorprovince": "LND",
    "address1_postalcode": "SW1Y 4JH",
    "address1_country": "GB",
}


def _state(*customers: dict[str, Any], merged_into: dict[str, str] | None = None) -> dict[str, Any]:
    return {"customers": list(customers), "merged_into": merged_into or {}}


def test_a_contact_written_as_the_table_says_matches() -> None:
    assert differences({"CUST1"}, _state(ADA), [ADA_ROW]) == {}


def test_every_mapped_column_is_checked() -> None:
    for column, wrong in [
        ("firstname", "  Ada "),  # not trimmed
        ("emailaddress1", "ada.lovelace@example.com"),  # local part case-folded
        ("emailaddress1", "Ada.Lovelace@Example.COM"),  # domain not lower-cased
        ("mobilephone", "(206) 555-0100"),  # not E.164
        ("birthdate", None),
        ("donotbulkemail", False),
        ("tb_squarecompanyname", None),
        ("address1_line1", "12 St James's Square "),
        ("nickname", " "),  # blank is None
    ]:
        problems = differences({"CUST1"}, _state(ADA), [{**ADA_ROW, column: wrong}])
        assert problems == {"CUST1": f"fields differ: {column}"}, (column, wrong)


def test_a_birthday_without_a_year_and_an_absent_preference_expect_nothing() -> None:
    customer = {"id": "CUST2", "given_name": "Grace", "birthday": "0000-12-09", "phone_number": "+44 20 7946 0958"}
    expected = expected_contact(customer)
    assert expected["birthdate"] is None and expected["donotbulkemail"] is False
    assert expected["mobilephone"] == "+442079460958"
    assert "address1_city" not in expected  # no address in Square: the CRM's address is not judged


def test_missing_duplicate_inactive_deleted_and_merged_contacts_are_reported() -> None:
    grace = {"id": "CUST2", "given_name": "Grace"}
    grace_row = {"contactid": "c-2", "statecode": 0, "tb_squarecustomerid": "CUST2", "firstname": "Grace"}
    grace_row["donotbulkemail"] = False
    state = _state(ADA, grace, merged_into={"OLD9": "CUST2"})
    assert differences({"CUST1"}, state, []) == {"CUST1": "expected one contact, found 0"}
    assert differences({"CUST1"}, state, [ADA_ROW, {**ADA_ROW, "contactid": "c-9"}]) == {
        "CUST1": "expected one contact, found 2"
    }
    assert differences({"CUST1"}, state, [{**ADA_ROW, "statecode": 1}]) == {"CUST1": "contact is inactive"}
    deleted = {"contactid": "c-3", "statecode": 0, "tb_squarecustomerid": "GONE"}
    assert differences({"GONE"}, state, [deleted]) == {"GONE": "deleted in Square but active in the CRM"}
    assert differences({"GONE"}, state, [{**deleted, "statecode": 1}]) == {}
    old = {"contactid": "c-4", "statecode": 1, "tb_squarecustomerid": "OLD9"}
    assert differences({"OLD9"}, state, [old]) == {"OLD9": "1 contact(s) still keyed by a merged-away id"}
    assert differences({"OLD9", "CUST2"}, state, [grace_row]) == {}


def test_an_impossible_phone_number_expects_no_contact_value() -> None:
    customer = {"id": "CUST3", "phone_number": "12"}
    row = {"contactid": "c-5", "statecode": 0, "tb_squarecustomerid": "CUST3", "mobilephone": "12"}
    assert differences({"CUST3"}, _state(customer), [row])["CUST3"].endswith("mobilephone")
