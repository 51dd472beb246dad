from __future__ import annotations

import pytest

from devstack.dataverse_emulator.odata_filter import FilterError, parse_filter

ROW = {
    "emailaddress1": "Ada@Example.com",
    "statecode": 0,
    "mobilephone": None,
    "telephone1": "+15551234567",
    "contactid": "0a1b2c3d-0000-0000-0000-000000000001",
    "versionnumber": 7,
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("emailaddress1 eq 'ada@example.com' and statecode eq 0", True),
        ("(mobilephone eq '+15551234567' or telephone1 eq '+15551234567') and statecode eq 0", True),
        ("mobilephone eq null", True),
        ("mobilephone ne null", False),
        ("contactid eq 0a1b2c3d-0000-0000-0000-000000000001", True),
        ("contains(emailaddress1,'@EXAMPLE')", True),
        ("startswith(emailaddress1,'bob')", False),
        ("versionnumber gt 5 and not (statecode eq 1)", True),
        ("emailaddress1 eq 'o''brien@example.com'", False),
    ],
)
def test_filters(text: str, expected: bool) -> None:
    assert parse_filter(text)(ROW) is expected


@pytest.mark.parametrize("text", ["emailaddress1 like 'x'", "statecode eq", "(statecode eq 0", "eq 0"])
def test_unsupported_filters_are_errors(text: str) -> None:
    with pytest.raises(FilterError):
        parse_filter(text)


def test_a_long_or_of_equalities_answers_as_each_term_would() -> None:
    """The bulk path `or`s hundreds of `eq` terms; they are looked up in a set, with the same answers."""
    rows = [
        {"emailaddress1": "A@example.com", "statecode": 0, "n": 1},
        {"emailaddress1": "b@example.com", "statecode": 1, "n": 2.0},
        {"emailaddress1": None, "statecode": 0, "n": 3},
        {"mobilephone": "(206) 555-0100", "statecode": 0},
    ]
    emails = " or ".join(f"emailaddress1 eq 'x{i}@example.com'" for i in range(300))
    text = f"{emails} or emailaddress1 eq 'a@example.com' or n eq 2 or endswith(mobilephone,'0100') or emailaddress1 eq null"
    predicate = parse_filter(text)
    assert [predicate(row) for row in rows] == [True, True, True, True]
    narrower = parse_filter(f"({emails} or emailaddress1 eq 'b@example.com') and statecode eq 0")
    assert [narrower(row) for row in rows] == [False, False, False, False]


def test_a_long_or_of_trailing_digit_tests_answers_as_each_term_would() -> None:
    """The bulk path's phone candidates: `endswith(…) and contains(…)` and `endswith(…, 'NN NN')` per customer."""
    rows = [
        {"mobilephone": "(206) 555-0100"},
        {"mobilephone": "(425) 555-0100"},
        {"telephone1": "+33 1 23 45 01 00"},
        {"mobilephone": None, "telephone1": "0100"},
    ]
    clauses = " or ".join(f"(endswith(mobilephone,'{i:04d}') and contains(mobilephone,'206'))" for i in range(50, 400))
    text = f"{clauses} or endswith(telephone1,'01 00') or endswith(telephone1,'')"
    assert [parse_filter(text)(row) for row in rows] == [True, False, True, True]
    tight = parse_filter(f"{clauses} or endswith(telephone1,'01 00')")
    assert [tight(row) for row in rows] == [True, False, True, False]
