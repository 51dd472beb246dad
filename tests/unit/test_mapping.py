from __future__ import annotations

import pytest

from shared.core.errors import InvalidDataError
from shared.core.models import SquareCustomer
from shared.flows.customer_mapping import ContactColumns, content_hash, map_customer
from tests.conftest import example

COLUMNS = ContactColumns("tb")


def _customer(**fields: object) -> SquareCustomer:
    return SquareCustomer.model_validate({"id": "CUST1", "version": 1, **fields})


def test_official_customer_created_example_maps_to_a_contact() -> None:
    raw = example("customer.created.json")["data"]["object"]["customer"]
    plan = map_customer(SquareCustomer.model_validate(raw), columns=COLUMNS, phone_region="US")
    assert plan.payload["firstname"] == "Jenkins"
    assert plan.payload["lastname"] == "Smorly"
    assert plan.payload["emailaddress1"] == "jenkins+smorly@squareup.com"
    assert plan.payload["mobilephone"] == "+12126668929"
    assert plan.payload["birthdate"] == "1962-03-04"
    assert plan.payload["address1_city"] == "Oakland"
    assert plan.payload["address1_stateorprovince"] == "CA"
    assert plan.payload["donotbulkemail"] is False
    assert plan.email_key == "jenkins+smorly@squareup.com"
    assert "tb_squarecustomerid" not in plan.payload  # the key travels in the URL, not the body


def test_retrieve_example_with_dashed_phone_normalises() -> None:
    raw = example("api.retrieve_customer.json")["customer"]
    plan = map_customer(SquareCustomer.model_validate(raw), columns=COLUMNS, phone_region="US")
    assert plan.phone_e164 == "+12125554240"
    assert plan.payload["tb_squarereferenceid"] == "YOUR_REFERENCE_ID"
    assert plan.payload["description"] == "a customer"


def test_birthday_without_year_is_not_written() -> None:
    plan = map_customer(_customer(birthday="0000-09-21"), columns=COLUMNS, phone_region="US")
    assert plan.payload["birthdate"] is None


def test_every_bad_field_is_reported_together() -> None:
    with pytest.raises(InvalidDataError) as caught:
        map_customer(
            _customer(email_address="nope", phone_number="call me", given_name="x" * 51, birthday="1999-13-40"),
            columns=COLUMNS,
            phone_region="US",
        )
    fields = {problem.field for problem in caught.value.problems}
    assert fields == {"email_address", "phone_number", "firstname", "birthday"}
    assert "51 characters, the CRM column holds 50" in str(caught.value)


def test_content_hash_changes_only_with_content() -> None:
    first = map_customer(_customer(given_name="Ada"), columns=COLUMNS, phone_region="US")
    same = map_customer(
        _customer(given_name="Ada", version=9, updated_at="2030-01-01T00:00:00Z"), columns=COLUMNS, phone_region="US"
    )
    other = map_customer(_customer(given_name="Augusta"), columns=COLUMNS, phone_region="US")
    assert first.content_hash == same.content_hash != other.content_hash
    assert content_hash({"b": 1, "a": 2}) == content_hash({"a": 2, "b": 1})


def test_removed_fields_are_cleared_in_the_crm() -> None:
    plan = map_customer(_customer(given_name="Ada"), columns=COLUMNS, phone_region="US")
    assert plan.payload["emailaddress1"] is None and plan.payload["mobilephone"] is None


def test_prefix_names_the_custom_columns() -> None:
    columns = ContactColumns("contoso")
    plan = map_customer(_customer(company_name="Acme"), columns=columns, phone_region="US")
    assert plan.payload["contoso_squarecompanyname"] == "Acme"
    assert columns.square_id == "contoso_squarecustomerid"
