from __future__ import annotations

from shared.flows.matching import MatchKind, choose_match, email_filter, odata_string, phone_filter

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


def test_filters_quote_values() -> None:
    assert odata_string("o'brien@example.com") == "'o''brien@example.com'"
    assert email_filter("a@b.com") == "emailaddress1 eq 'a@b.com' and statecode eq 0"
    assert "mobilephone eq '+15551234567' or telephone1 eq '+15551234567'" in phone_filter("+15551234567")
