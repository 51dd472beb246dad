from __future__ import annotations

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
    assert text == (
        "tb_squarecustomerid eq 'S1' or ((emailaddress1 eq 'o''brien@example.com' or mobilephone eq '+15551234567' "
        "or telephone1 eq '+15551234567') and statecode eq 0)"
    )
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


def test_without_email_or_phone_only_the_key_is_asked() -> None:
    assert match_filter(MatchKeys(KEY, "S1", None, None)) == "tb_squarecustomerid eq 'S1'"
    assert odata_string("a'b") == "'a''b'"
