"""The demo's summary prints every failure message and id whole (wrapped, never cut)."""

from __future__ import annotations

from devstack.scenario import ScenarioResult, labelled, summary

LONG_MESSAGE = (
    "invalid data: email_address: not a valid email address (The part after the @-sign contains invalid "
    "characters); phone_number: not a possible phone number"
)


def test_failures_are_printed_whole_and_lines_stay_within_100_columns() -> None:
    failures = [
        {"record_id": "7Q9M2I0HZ2UEP1ENTHJXJQI3OG", "reason": "invalid_data", "field": "email_address"},
        {"record_id": "794G9DPMRCG629BE2U66MR2684", "reason": "needs_review", "field": None},
    ]
    result = ScenarioResult(
        square={"live": 3, "deleted": 0, "merged_away": 0},
        crm={"active_linked": 1, "deactivated": 0, "merged": 0, "contacts": 3, "requests": 9},
        delivery={"delivered": 3, "duplicates_sent": 0, "attempts": 3},
        failures=[
            {**failures[0], "message": LONG_MESSAGE, "status": "open", "candidates": []},
            {
                **failures[1],
                "message": "2 CRM contacts match this customer by email",
                "status": "open",
                "candidates": ["7f6a6cc6-a3b5-4385-833b-555bd172645e", "9774d0cc-af60-4a60-ae23-b9c5b1f7405e"],
            },
        ],
        unconverged={},
        expected_failures={f["record_id"] for f in failures},
        latencies=[1.5],
        seconds=2.0,
    )
    text = summary(result)
    assert all(len(line) <= 100 for line in text.splitlines()), text
    flattened = " ".join(text.split())
    assert LONG_MESSAGE in flattened and "(…)" not in text and "…" not in text
    for whole in ("7Q9M2I0HZ2UEP1ENTHJXJQI3OG", "9774d0cc-af60-4a60-ae23-b9c5b1f7405e", "p50 1.50 s"):
        assert whole in text
    assert "OK — the CRM matches Square" in text


def test_labelled_lines_wrap_under_the_text_without_splitting_a_word() -> None:
    url = "https://example.com/" + "x" * 120
    assert labelled("CRM:", f"short words then {url} and more", width=60) == [
        "  CRM:       short words then",
        " " * 13 + url,
        " " * 13 + "and more",
    ]
