"""The pure ownership decisions, each case written out: which columns a Square change writes to the CRM,
which CRM columns go to Square, how conflicts are decided, and what the configuration file may say."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config.file import ConfigFileError, default_config, load_config
from shared.flows.ownership import (
    ConflictRule,
    Owner,
    Sides,
    decide_crm_to_square,
    decide_square_to_crm,
    fingerprint,
    fingerprints,
    square_changes,
    synced_fields,
)

FIELDS = synced_fields(default_config("tb").contact_mapping)
BY_COLUMN = {f.column: f for f in FIELDS}
EARLY, LATE = "2026-11-22T10:00:00Z", "2026-11-22T11:00:00Z"


def fps(**values: object) -> dict[str, str]:
    return fingerprints(values, FIELDS, "US")


def square_side(payload: dict[str, object], owners: dict[str, Owner], **kw: object) -> tuple[dict, tuple, tuple]:
    sides = kw.pop("sides", Sides())
    decision = decide_square_to_crm(
        payload,
        owners=owners,
        fields=FIELDS,
        sides=sides,  # type: ignore[arg-type]
        crm_now=kw.pop("crm_now", None),  # type: ignore[arg-type]
        first_sync=bool(kw.pop("first_sync", False)),
        rule=kw.pop("rule", ConflictRule.LATEST),  # type: ignore[arg-type]
        region="US",
    )
    return decision.payload, decision.push_back, tuple(c.winner for c in decision.conflicts)


def test_the_same_phone_typed_two_ways_is_one_value() -> None:
    phone = BY_COLUMN["mobilephone"]
    assert fingerprint(phone, "(212) 555-0199", "US") == fingerprint(phone, "+1 212 555 0199", "US")
    email = BY_COLUMN["emailaddress1"]
    assert fingerprint(email, "Ada@Example.com ", "US") == fingerprint(email, "ada@example.com", "US")
    assert fingerprint(phone, None, "US") == fingerprint(phone, "  ", "US") == ""


def test_only_fields_updatecustomer_writes_can_go_back_to_square() -> None:
    assert BY_COLUMN["donotbulkemail"].square_path is None  # preferences: not in UpdateCustomerRequest
    assert BY_COLUMN["mobilephone"].square_path == ("phone_number",)
    assert BY_COLUMN["address1_city"].square_path == ("address", "locality")
    assert BY_COLUMN["tb_squarecompanyname"].square_path == ("company_name",)


def test_square_owned_columns_are_written_unless_the_crm_already_holds_them() -> None:
    payload, back, _ = square_side(
        {"firstname": "Ada", "lastname": "Lovelace"}, {}, crm_now={"firstname": "Ada", "lastname": "Byron"}
    )
    assert payload == {"lastname": "Lovelace"} and back == ()


def test_crm_owned_columns_are_never_written_and_a_divergent_square_value_goes_back() -> None:
    sides = Sides(crm_before=fps(mobilephone="+12125550100"))
    payload, back, _ = square_side(
        {"mobilephone": "+14155550000", "firstname": "Ada"}, {"mobilephone": Owner.CRM}, sides=sides
    )
    assert payload == {"firstname": "Ada"} and back == ("mobilephone",)
    payload, back, _ = square_side({"mobilephone": "+12125550100"}, {"mobilephone": Owner.CRM}, sides=sides)
    assert payload == {} and back == ()


def test_a_crm_owned_column_is_filled_from_square_when_a_customer_is_first_linked_to_an_empty_contact() -> None:
    owners = {"mobilephone": Owner.CRM}
    payload, back, _ = square_side({"mobilephone": "+12125550100"}, owners, crm_now={}, first_sync=True)
    assert payload == {"mobilephone": "+12125550100"} and back == ()
    payload, back, _ = square_side(
        {"mobilephone": "+12125550100"}, owners, crm_now={"mobilephone": "+1 646 555 0001"}, first_sync=True
    )
    assert payload == {} and back == ("mobilephone",)


def test_crm_if_empty_fills_only_an_empty_crm_value_and_sends_nothing_back() -> None:
    owners = {"description": Owner.CRM_IF_EMPTY}
    assert square_side({"description": "note"}, owners, crm_now={"description": None})[:2] == (
        {"description": "note"},
        (),
    )
    assert square_side({"description": "note"}, owners, crm_now={"description": "mine"})[:2] == ({}, ())


@pytest.mark.parametrize(
    ("square_before", "crm_before", "square_now", "crm_now", "times", "expected"),
    [
        # only Square changed → Square's value is written
        ("a@x.com", "a@x.com", "s@x.com", "a@x.com", (EARLY, LATE), ({"emailaddress1": "s@x.com"}, (), ())),
        # only the CRM changed → kept, sent back
        ("a@x.com", "a@x.com", "a@x.com", "c@x.com", (EARLY, LATE), ({}, ("emailaddress1",), ())),
        # both changed, the CRM later → the CRM wins
        ("a@x.com", "a@x.com", "s@x.com", "c@x.com", (EARLY, LATE), ({}, ("emailaddress1",), ("crm",))),
        # both changed, Square later → Square wins
        ("a@x.com", "a@x.com", "s@x.com", "c@x.com", (LATE, EARLY), ({"emailaddress1": "s@x.com"}, (), ("square",))),
        # both changed at the same moment → ties go to Square
        ("a@x.com", "a@x.com", "s@x.com", "c@x.com", (LATE, LATE), ({"emailaddress1": "s@x.com"}, (), ("square",))),
        # Square's milliseconds after the CRM's whole second: the same second, a tie → Square
        (
            "a@x.com",
            "a@x.com",
            "s@x.com",
            "c@x.com",
            ("2026-11-22T11:00:00.400Z", "2026-11-22T11:00:00Z"),
            ({"emailaddress1": "s@x.com"}, (), ("square",)),
        ),
    ],
)
def test_both_owned_columns_follow_the_latest_change(
    square_before: str, crm_before: str, square_now: str, crm_now: str, times: tuple[str, str], expected: tuple
) -> None:
    sides = Sides(fps(emailaddress1=square_before), fps(emailaddress1=crm_before), times[0], times[1])
    decided = square_side(
        {"emailaddress1": square_now}, {"emailaddress1": Owner.BOTH}, sides=sides, crm_now={"emailaddress1": crm_now}
    )
    assert decided == expected


def test_a_conflict_under_the_review_rule_names_review_as_the_winner() -> None:
    sides = Sides(fps(emailaddress1="a@x.com"), fps(emailaddress1="a@x.com"), EARLY, LATE)
    *_, winners = square_side(
        {"emailaddress1": "s@x.com"},
        {"emailaddress1": Owner.BOTH},
        sides=sides,
        crm_now={"emailaddress1": "c@x.com"},
        rule=ConflictRule.REVIEW,
    )
    assert winners == ("review",)


def test_crm_changes_send_only_owned_columns_that_differ_from_square() -> None:
    owners = {"mobilephone": Owner.CRM, "emailaddress1": Owner.BOTH}
    square_before = fps(mobilephone="+12125550100", emailaddress1="a@x.com", firstname="Ada")
    crm_row = {
        "mobilephone": "(212) 555-0199",
        "emailaddress1": "a@x.com",
        "firstname": "Changed",
        "donotbulkemail": True,
    }
    decision = decide_crm_to_square(crm_row, owners=owners, fields=FIELDS, sides=Sides(square_before, square_before))
    assert decision.send == ("mobilephone",)  # firstname is Square's; the email did not change
    assert square_changes(crm_row, decision.send, FIELDS, "US") == {"phone_number": "+12125550199"}


def test_a_crm_change_to_a_both_column_meeting_a_newer_square_value_is_decided_by_time() -> None:
    owners = {"emailaddress1": Owner.BOTH}
    before = fps(emailaddress1="a@x.com")
    row = {"emailaddress1": "c@x.com"}
    fresh = fps(emailaddress1="s@x.com")
    crm_later = decide_crm_to_square(
        row, owners=owners, fields=FIELDS, sides=Sides(before, before, EARLY, LATE), square_now=fresh
    )
    assert crm_later.send == ("emailaddress1",) and [c.winner for c in crm_later.conflicts] == ["crm"]
    square_later = decide_crm_to_square(
        row, owners=owners, fields=FIELDS, sides=Sides(before, before, LATE, EARLY), square_now=fresh
    )
    assert square_later.send == () and [c.winner for c in square_later.conflicts] == ["square"]


def test_the_way_back_carries_the_crm_values_in_square_s_shape() -> None:
    row = {
        "firstname": "Ada",
        "birthdate": "1815-12-10",
        "address1_line1": "12 St James's Square",
        "address1_city": "London",
        "address1_postalcode": None,
        "tb_squarereferenceid": "REF-7",
    }
    body = square_changes(row, list(row), FIELDS, "US")
    assert body == {
        "given_name": "Ada",
        "birthday": "1815-12-10",
        "reference_id": "REF-7",
        "address": {"address_line_1": "12 St James's Square", "locality": "London", "postal_code": None},
    }


def _config(tmp_path: Path, contact_lines: str) -> Path:
    path = tmp_path / "tillbridge.yaml"
    path.write_text("version: 1\nmappings:\n  contact:\n" + contact_lines, encoding="utf-8")
    return path


def test_the_configuration_file_refuses_a_crm_owner_that_cannot_reach_square(tmp_path: Path) -> None:
    path = _config(
        tmp_path,
        "    firstname: {from: given_name}\n"
        "    donotbulkemail: {from: preferences.email_unsubscribed, transforms: [boolean], owner: crm}\n"
        "    mobilephone: {from: phone_number, transforms: [e164], owner: crm}\n"
        "    telephone1: {from: phone_number, owner: both}\n",
    )
    with pytest.raises(ConfigFileError) as raised:
        load_config(path)
    messages = [(p.path, p.line, p.message) for p in raised.value.config_problems]
    assert [m[:2] for m in messages] == [
        ("mappings.contact.donotbulkemail.owner", 5),
        ("mappings.contact.telephone1.owner", 7),
    ]
    assert "UpdateCustomer" in messages[0][2] and "mobilephone already sends phone_number" in messages[1][2]


def test_crm_if_empty_may_sit_on_any_column(tmp_path: Path) -> None:
    path = _config(tmp_path, "    jobtitle: {transforms: [{constant: Customer}], owner: crm_if_empty}\n")
    assert load_config(path).contact_mapping.fields[0].owner == "crm_if_empty"
