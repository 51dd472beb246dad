"""Square's customer writes (CreateCustomer, UpdateCustomer, DeleteCustomer) refuse, version and notify as
Square documents (SPEC = square/connect-api-specification api.json, Release 2025-08-20)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from shared.pipeline.signature import SIGNATURE_HEADER, is_valid_signature
from tests.conftest import example
from tests.contract.conftest import NOTIFICATION_URL, SIGNATURE_KEY
from tests.contract.square_helpers import Receiver, delivered, flush, refusal, seed


def _create(square: httpx.Client, **body: Any) -> httpx.Response:
    return square.post("/v2/customers", json=body)


@pytest.mark.parametrize(
    ("name", "limit"),
    [("given_name", 300), ("family_name", 300), ("company_name", 500), ("nickname", 100), ("reference_id", 100)],
)
def test_field_lengths_are_enforced(square: httpx.Client, name: str, limit: int) -> None:
    """SPEC CreateCustomerRequest / UpdateCustomerRequest: "The maximum length for this value is N characters"
    → VALUE_TOO_LONG (endpoint error listed in the paths' x-endpoint-errors)."""
    base = {"email_address": "len@example.com"}
    assert _create(square, **base, **{name: "x" * limit}).status_code == 200
    assert refusal(_create(square, **base, **{name: "x" * (limit + 1)})) == (400, "VALUE_TOO_LONG", name)
    customer = seed(square, given_name="Len")
    too_long = square.put(f"/v2/customers/{customer['id']}", json={name: "y" * (limit + 1)})
    assert refusal(too_long) == (400, "VALUE_TOO_LONG", name)


def test_email_length_and_format(square: httpx.Client) -> None:
    """SPEC: email_address at most 254 characters; INVALID_EMAIL_ADDRESS for a malformed one."""
    long_email = "a" * 60 + "@" + "b" * 189 + ".com"
    assert len(long_email) == 254 and _create(square, email_address=long_email).status_code == 200
    assert refusal(_create(square, email_address="a" + long_email))[1] == "VALUE_TOO_LONG"
    for bad in ("not-an-email", "two@@example.com", "no@dot", "spa ce@example.com"):
        assert refusal(_create(square, email_address=bad)) == (400, "INVALID_EMAIL_ADDRESS", "email_address"), bad


@pytest.mark.parametrize(
    ("phone", "accepted"),
    [
        ("+1 (206) 222-3456", True),
        ("+1-212-555-4240", True),
        ("+12126668929", True),
        ("206.555.0100", True),
        ("555-0100", False),  # 7 digits
        ("+1234567890123456789", False),  # 19 digits
        ("+1 206 555 01OO", False),  # letters
        ("+1 206 % 555 0100", False),
        ("1+2065550100", False),
    ],
)
def test_phone_numbers_need_9_to_16_digits(square: httpx.Client, phone: str, accepted: bool) -> None:
    """SPEC CreateCustomerRequest.phone_number: "must be valid and can contain 9–16 digits, with an optional `+`
    prefix and country code"; stored as entered (reference/square.md §5)."""
    response = _create(square, phone_number=phone)
    if accepted:
        assert response.status_code == 200 and response.json()["customer"]["phone_number"] == phone
    else:
        assert refusal(response) == (400, "INVALID_PHONE_NUMBER", "phone_number")


def test_birthday_formats(square: httpx.Client) -> None:
    """SPEC CreateCustomerRequest.birthday: `YYYY-MM-DD` or `MM-DD`, returned as YYYY-MM-DD with 0000 for no
    year; anything else → INVALID_TIME (endpoint error)."""
    assert _create(square, given_name="B", birthday="09-21").json()["customer"]["birthday"] == "0000-09-21"
    assert _create(square, given_name="B", birthday="1998-09-21").json()["customer"]["birthday"] == "1998-09-21"
    for bad in ("21/09/1998", "1998-02-30", "13-01"):
        assert refusal(_create(square, given_name="B", birthday=bad)) == (400, "INVALID_TIME", "birthday"), bad


def test_create_needs_a_public_field_and_matches_the_official_shape(square: httpx.Client) -> None:
    """SPEC CreateCustomer: "You must provide at least one of" given_name, family_name, company_name,
    email_address, phone_number. The answer has the official example's fields (SPEC CreateCustomerResponse)."""
    assert refusal(_create(square, note="only a note"))[:2] == (400, "MISSING_REQUIRED_PARAMETER")
    response = _create(square, **example("api.create_customer.request.json"))
    official = example("api.create_customer.json")["customer"]
    customer = response.json()["customer"]
    assert set(customer) == set(official) and customer["version"] == 0
    assert customer["creation_source"] == "THIRD_PARTY" and customer["phone_number"] == "+1-212-555-4240"


def test_create_with_an_idempotency_key_never_duplicates(square: httpx.Client, receiver: Receiver) -> None:
    """docs build-basics/common-api-patterns/idempotency: the same key and request answer the first response
    (no second customer); the same key with a changed request is an error (SPEC ErrorCode IDEMPOTENCY_KEY_REUSED)."""
    body = {"idempotency_key": "crm-contact-42", "given_name": "Ida", "email_address": "ida@example.com"}
    first = _create(square, **body).json()["customer"]
    square.put(f"/v2/customers/{first['id']}", json={"note": "changed since"})
    again = _create(square, **body).json()["customer"]
    assert again == first  # the first response, as it was
    assert refusal(_create(square, **{**body, "given_name": "Other"}))[:2] == (400, "IDEMPOTENCY_KEY_REUSED")
    live = square.get("/_control/customers").json()["customers"]
    assert [c["id"] for c in live if c.get("email_address") == "ida@example.com"] == [first["id"]]
    flush(square)
    assert [e["type"] for e in delivered(receiver)].count("customer.created") == 1


def test_update_checks_the_version_and_counts_each_commit(square: httpx.Client) -> None:
    """docs optimistic-concurrency: version starts at 0 and rises per successful update; a request with another
    version gets a "version mismatch" error (code VERSION_MISMATCH, docs general-troubleshooting); without a
    version the latest is assumed (SPEC UpdateCustomerRequest.version)."""
    customer = seed(square, given_name="V")
    path = f"/v2/customers/{customer['id']}"
    assert square.put(path, json={"note": "a", "version": 0}).json()["customer"]["version"] == 1
    stale = square.put(path, json={"note": "b", "version": 0})
    assert refusal(stale) == (400, "VERSION_MISMATCH", "version")
    assert square.get(path).json()["customer"]["note"] == "a"  # the refused write changed nothing
    assert square.put(path, json={"note": "c"}).json()["customer"]["version"] == 2
    assert refusal(square.put(path, json={"version": "two"}))[:2] == (400, "EXPECTED_INTEGER")


def test_update_is_sparse_and_null_or_empty_removes(square: httpx.Client) -> None:
    """SPEC UpdateCustomer: "only new or changed fields are required … To remove a field, specify null"; docs
    (newer reference) also remove with an empty string; address is sparse too (SPEC UpdateCustomerRequest.address);
    the official request (version 2, phone_number null) applies as in the official response."""
    customer = seed(
        square,
        given_name="Amelia",
        phone_number="+1-212-555-4240",
        nickname="Mel",
        address={"address_line_1": "500 Electric Ave", "locality": "New York", "postal_code": "10003"},
    )
    path = f"/v2/customers/{customer['id']}"
    changed = square.put(path, json={"nickname": "", "address": {"postal_code": "10011", "locality": None}}).json()
    assert "nickname" not in changed["customer"] and changed["customer"]["given_name"] == "Amelia"
    assert changed["customer"]["address"] == {"address_line_1": "500 Electric Ave", "postal_code": "10011"}
    square.put(path, json={"note": "v2"})
    official = square.put(path, json=example("api.update_customer.request.json")).json()["customer"]
    assert "phone_number" not in official and official["version"] == 3
    assert official["email_address"] == example("api.update_customer.request.json")["email_address"]


def test_delete_checks_an_optional_version(square: httpx.Client) -> None:
    """SPEC DeleteCustomer `version` query parameter (optimistic concurrency); afterwards RetrieveCustomer is
    404 NOT_FOUND (docs retrieve-profiles)."""
    customer = seed(square, given_name="D")
    path = f"/v2/customers/{customer['id']}"
    assert refusal(square.delete(path, params={"version": 5})) == (400, "VERSION_MISMATCH", "version")
    assert square.delete(path, params={"version": 0}).json() == {}
    assert refusal(square.get(path))[:2] == (404, "NOT_FOUND")
    assert refusal(square.delete(path))[:2] == (404, "NOT_FOUND")


def test_writes_to_a_merged_away_id_are_404(square: httpx.Client) -> None:
    """SPEC UpdateCustomer / DeleteCustomer: "To update a customer profile that was created by merging existing
    profiles, you must use the ID of the newly created profile"."""
    first, second = seed(square, given_name="A"), seed(square, given_name="B")
    survivor = square.post("/_control/merge", json={"customer_ids": [first["id"], second["id"]]}).json()
    assert refusal(square.put(f"/v2/customers/{first['id']}", json={"note": "x"}))[:2] == (404, "NOT_FOUND")
    assert refusal(square.delete(f"/v2/customers/{second['id']}"))[:2] == (404, "NOT_FOUND")
    assert square.put(f"/v2/customers/{survivor['id']}", json={"note": "x"}).status_code == 200


def test_api_writes_fire_signed_webhooks_like_dashboard_edits(square: httpx.Client, receiver: Receiver) -> None:
    """Customer webhooks (SPEC CustomerCreatedEvent/UpdatedEvent/DeletedEvent) fire for API writes too, so a
    two-way sync sees the echo of its own UpdateCustomer, with the committed version."""
    created = _create(square, given_name="Echo", email_address="echo@example.com").json()["customer"]
    updated = square.put(f"/v2/customers/{created['id']}", json={"note": "from the CRM", "version": 0}).json()
    square.delete(f"/v2/customers/{created['id']}", params={"version": 1})
    flush(square)
    hook, _ = receiver
    events = delivered(receiver)
    assert [e["type"] for e in events] == ["customer.created", "customer.updated", "customer.deleted"]
    echo = events[1]["data"]["object"]["customer"]
    assert echo["note"] == "from the CRM" and echo["version"] == updated["customer"]["version"] == 1
    assert events[0]["data"]["object"]["customer"]["creation_source"] == "THIRD_PARTY"
    for headers, body in hook.deliveries:
        assert is_valid_signature(
            body, headers[SIGNATURE_HEADER], signature_key=SIGNATURE_KEY, notification_url=NOTIFICATION_URL
        )
