from __future__ import annotations

import pytest

from devstack.dataverse_emulator.odata_filter import parse_filter
from shared.flows.matching import MatchKeys, MatchKind, choose_match, match_filter, odata_string, split_candidates

KEY = "tb_squarecustomerid"


def _contact(contact_id: str, linked: str | None = None) -> dict[str, object]:
    return {"contactid": contact_id, KEY: linked}


def test_no_candidates_creates() -> None:
    assert choose_match(square_id="S", key_column=KEY, by_email=[], by_phone=[]).kind is MatchKind.CREATE


def test_single_email_candidate_links() -> None:
    decision = choose_match(square_id="S", key_column=KEY, by_email=[_contact("c1")], by_phone=[_contact("c2")])
    assert (decision.kind, decision.contact_id, decision.matched_on) == (MatchKind.LINK, "c1", "email")


def test_phone_used_only_when_email_finds_nothing() -> None:
    decision = choose_match(square_id="S", key_column=KEY, by_email=[], by_phone=[_contact("c2")])
    assert (decision.kind, decision.contact_id, decision.matched_on) == (MatchKind.LINK, "c2", "phone")


def test_several_candidates_need_review_and_are_listed() -> None:
    decision = choose_match(square_id="S", key_column=KEY, by_email=[_contact("c2"), _contact("c1")], by_phone=[])
    assert decision.kind is MatchKind.REVIEW
    assert decision.candidates == ("c1", "c2")


def test_contacts_linked_to_another_square_customer_are_not_candidates() -> None:
    decision = choose_match(
        square_id="S", key_column=KEY, by_email=[_contact("c1", "OTHER"), _contact("c2")], by_phone=[]
    )
    assert (decision.kind, decision.contact_id) == (MatchKind.LINK, "c2")
    only_others = choose_match(square_id="S", key_column=KEY, by_email=[_contact("c1", "OTHER")], by_phone=[])
    assert only_others.kind is MatchKind.CREATE


def test_one_query_answers_key_email_and_phone() -> None:
    keys = MatchKeys(KEY, "S1", "o'brien@example.com", "+15551234567")
    text = match_filter(keys)
    assert text.startswith("tb_squarecustomerid eq 'S1' or ((emailaddress1 eq 'o''brien@example.com' or ")
    assert text.endswith(") and statecode eq 0)")
    rows = [
        {"contactid": "keyed", KEY: "S1", "statecode": 1},
        {"contactid": "mail", KEY: None, "statecode": 0, "emailaddress1": "O'Brien@Example.com"},
        {"contactid": "phone", KEY: None, "statecode": 0, "telephone1": "+15551234567"},
        {"contactid": "old", KEY: None, "statecode": 1, "emailaddress1": "o'brien@example.com"},
        {"contactid": "other", KEY: None, "statecode": 0, "emailaddress1": "someone@example.com"},
    ]
    matching = [row for row in rows if parse_filter(text)(row)]
    assert [row["contactid"] for row in matching] == ["keyed", "mail", "phone"]
    found = split_candidates(matching, keys)
    assert [r["contactid"] for r in found.keyed] == ["keyed"]
    assert [r["contactid"] for r in found.by_email] == ["mail"]
    assert [r["contactid"] for r in found.by_phone] == ["phone"]


# How people type one number into a CRM (the square customer's is +12065550100).
REAL_WORLD_FORMS = [
    "(206) 555-0100",
    "206.555.0100",
    "206-555-0100",
    "+1 206 555 0100",
    "+1-206-555-0100",
    "1 (206) 555-0100",
    "2065550100",
    "+12065550100",
]


@pytest.mark.parametrize("written", REAL_WORLD_FORMS)
def test_a_number_written_the_way_people_write_it_is_found_and_confirmed(written: str) -> None:
    keys = MatchKeys(KEY, "S1", None, "+12065550100", "US")
    row = {"contactid": "c1", KEY: None, "statecode": 0, "mobilephone": written}
    assert parse_filter(match_filter(keys))(row), written  # the query finds it as a candidate
    assert [r["contactid"] for r in split_candidates([row], keys).by_phone] == ["c1"]


def test_pairs_grouping_and_other_countries() -> None:
    keys = MatchKeys(KEY, "S1", None, "+33123456789", "FR")
    row = {"contactid": "c1", KEY: None, "statecode": 0, "telephone1": "01 23 45 67 89"}
    assert parse_filter(match_filter(keys))(row)
    assert len(split_candidates([row], keys).by_phone) == 1


def test_look_alikes_are_candidates_but_never_confirmed() -> None:
    keys = MatchKeys(KEY, "S1", None, "+12065550100", "US")
    look_alikes = [
        {"contactid": "other-area", KEY: None, "statecode": 0, "mobilephone": "(425) 555-0100"},
        {"contactid": "other-number", KEY: None, "statecode": 0, "mobilephone": "555-0100"},
        {"contactid": "garbage", KEY: None, "statecode": 0, "mobilephone": "call 555 0100"},
    ]
    assert split_candidates(look_alikes, keys).by_phone == ()


def test_two_contacts_with_the_same_number_need_review() -> None:
    keys = MatchKeys(KEY, "S1", None, "+12065550100", "US")
    rows = [
        {"contactid": "c1", KEY: None, "statecode": 0, "mobilephone": "(206) 555-0100"},
        {"contactid": "c2", KEY: None, "statecode": 0, "telephone1": "206.555.0100"},
    ]
    found = split_candidates(rows, keys)
    decision = choose_match(square_id="S1", key_column=KEY, by_email=found.by_email, by_phone=found.by_phone)
    assert decision.kind is MatchKind.REVIEW and decision.candidates == ("c1", "c2")


def test_without_email_or_phone_only_the_key_is_asked() -> None:
    assert match_filter(MatchKeys(KEY, "S1", None, None)) == "tb_squarecustomerid eq 'S1'"
    assert odata_string("a'b") == "'a''b'"
