"""Square's customer reads refuse and page as Square documents (SPEC = square/connect-api-specification
api.json, Release 2025-08-20; listed in docs/emulator-fidelity.md "## Square")."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import example
from tests.contract.conftest import SQUARE_TOKEN
from tests.contract.square_helpers import every_page, history, refusal, seed

SEARCH = "/v2/customers/search"


@pytest.mark.parametrize(("limit", "code"), [(0, "VALUE_TOO_LOW"), (101, "VALUE_TOO_HIGH"), (-5, "VALUE_TOO_LOW")])
def test_limits_outside_1_to_100_are_refused(square: httpx.Client, limit: int, code: str) -> None:
    """SPEC ListCustomers `limit` and SearchCustomersRequest.limit: < 1 or > 100 → 400 VALUE_TOO_LOW/HIGH."""
    assert refusal(square.get("/v2/customers", params={"limit": limit})) == (400, code, "limit")
    assert refusal(square.post(SEARCH, json={"limit": limit})) == (400, code, "limit")
    assert square.get("/v2/customers", params={"limit": 100}).status_code == 200
    assert square.post(SEARCH, json={"limit": 1}).status_code == 200


def test_only_profiles_with_public_information_are_listed_searched_or_counted(square: httpx.Client) -> None:
    """SPEC ListCustomersResponse / SearchCustomersResponse: only profiles with given_name, family_name,
    company_name, email_address or phone_number are included (and counted)."""
    named = seed(square, given_name="Ada")
    company = seed(square, company_name="Acme")
    hidden = seed(square, note="walk-in, nothing else")
    listed = square.get("/v2/customers", params={"count": "true"}).json()
    searched = square.post(SEARCH, json={"count": True}).json()
    for body in (listed, searched):
        assert {c["id"] for c in body["customers"]} == {named["id"], company["id"]} and body["count"] == 2
    assert square.get(f"/v2/customers/{hidden['id']}").status_code == 200  # it exists, it is just not listed


def test_default_sort_is_by_name_and_created_at_sorts_by_creation(square: httpx.Client) -> None:
    """SPEC CustomerSortField: DEFAULT = given_name + family_name (then company, email, phone); CREATED_AT;
    SortOrder ASC by default."""
    made = history(
        square,
        [
            {"given_name": "Cleo", "created_at": "2024-01-01T00:00:00Z"},
            {"given_name": "Ann", "created_at": "2024-03-01T00:00:00Z"},
            {"company_name": "Brick Co", "created_at": "2024-02-01T00:00:00Z"},
        ],
    )
    by_name = [c["id"] for c in square.get("/v2/customers").json()["customers"]]
    assert by_name == [made[1]["id"], made[2]["id"], made[0]["id"]]
    by_creation = square.post(SEARCH, json={"query": {"sort": {"field": "CREATED_AT", "order": "DESC"}}}).json()
    assert [c["id"] for c in by_creation["customers"]] == [made[1]["id"], made[2]["id"], made[0]["id"]]
    assert [c["created_at"][:7] for c in by_creation["customers"]] == ["2024-03", "2024-02", "2024-01"]


def test_there_is_no_sort_by_updated_at(square: httpx.Client) -> None:
    """SPEC CustomerSort.field: "either the default set of fields or created_at"."""
    wrong = square.post(SEARCH, json={"query": {"sort": {"field": "UPDATED_AT"}}})
    assert refusal(wrong) == (400, "INVALID_ENUM_VALUE", "query.sort.field")
    assert refusal(square.get("/v2/customers", params={"sort_field": "UPDATED_AT"}))[1] == "INVALID_ENUM_VALUE"
    assert refusal(square.get("/v2/customers", params={"sort_order": "UP"}))[1] == "INVALID_SORT_ORDER"


def test_filters_are_anded(square: httpx.Client) -> None:
    """SPEC CustomerQuery.filter: "Multiple filters are combined as AND statements"; OR is not supported."""
    made = history(
        square,
        [
            {"given_name": "Old", "email_address": "old@shop.example", "created_at": "2020-05-01T00:00:00Z"},
            {"given_name": "New", "email_address": "new@shop.example", "created_at": "2024-05-01T00:00:00Z"},
            {"given_name": "Other", "email_address": "x@elsewhere.example", "created_at": "2024-06-01T00:00:00Z"},
        ],
    )
    query = {
        "filter": {
            "created_at": {"start_at": "2023-01-01T00:00:00Z"},
            "email_address": {"fuzzy": "shop"},
        }
    }
    found = square.post(SEARCH, json={"query": query}).json()["customers"]
    assert [c["id"] for c in found] == [made[1]["id"]]


def test_text_filters_match_as_documented(square: httpx.Client) -> None:
    """SPEC CustomerFilter: email exact is case-insensitive, fuzzy is token-wise ("Steven gmail" matches
    steven.johnson@gmail.com and mygmail@stevensbakery.com); exact phone takes an E.164 query and compares stored
    numbers converted to E.164; fuzzy phone matches digit tokens; exact XOR fuzzy (SPEC CustomerTextFilter)."""
    steven = seed(square, email_address="steven.johnson@gmail.com", phone_number="+1 (206) 222-3333")
    bakery = seed(square, email_address="mygmail@stevensbakery.com", phone_number="+1-212-415-1234")
    seed(square, email_address="someone@else.example", phone_number="+1-415-212-1200")

    def ids(text_filter: dict[str, object]) -> set[str]:
        return {
            c["id"] for c in square.post(SEARCH, json={"query": {"filter": text_filter}}).json().get("customers", [])
        }

    assert ids({"email_address": {"fuzzy": "Steven gmail"}}) == {steven["id"], bakery["id"]}
    assert ids({"email_address": {"exact": "STEVEN.JOHNSON@gmail.com"}}) == {steven["id"]}
    assert ids({"phone_number": {"exact": "+12062223333"}}) == {steven["id"]}
    assert ids({"phone_number": {"fuzzy": "415 123"}}) == {bakery["id"]}
    both = square.post(SEARCH, json={"query": {"filter": {"email_address": {"exact": "a@b.c", "fuzzy": "a"}}}})
    assert refusal(both)[:2] == (400, "CONFLICTING_PARAMETERS")
    not_e164 = square.post(SEARCH, json={"query": {"filter": {"phone_number": {"exact": "2062223333"}}}})
    assert refusal(not_e164)[:2] == (400, "INVALID_PHONE_NUMBER")


def test_time_range_filters_and_bad_times(square: httpx.Client) -> None:
    """SPEC CustomerFilter.created_at/updated_at = TimeRange (RFC 3339); reference/square.md §3."""
    made = history(
        square,
        [
            {"given_name": "A", "created_at": "2023-01-01T00:00:00Z", "updated_at": "2023-01-01T00:00:00Z"},
            {"given_name": "B", "created_at": "2023-01-01T00:00:00Z", "updated_at": "2025-02-01T10:00:00Z"},
        ],
    )
    window = {"updated_at": {"start_at": "2025-02-01T10:00:00Z", "end_at": "2025-02-01T11:00:00+01:00"}}
    found = square.post(SEARCH, json={"query": {"filter": window}}).json()["customers"]
    assert [c["id"] for c in found] == [made[1]["id"]]
    bad = square.post(SEARCH, json={"query": {"filter": {"updated_at": {"start_at": "yesterday"}}}})
    assert refusal(bad) == (400, "INVALID_TIME", "query.filter.updated_at.start_at")


def test_a_cursor_is_only_valid_with_the_original_query(square: httpx.Client) -> None:
    """SPEC SearchCustomersRequest.cursor: "retrieve the next set of results associated with the original
    query"; ListCustomers `cursor`: "for your original query". Anything else → 400 INVALID_CURSOR."""
    history(square, [{"given_name": f"P{n}", "created_at": f"2024-01-{n + 1:02d}T00:00:00Z"} for n in range(5)])
    query = {"filter": {"created_at": {"start_at": "2024-01-01T00:00:00Z"}}}
    first = square.post(SEARCH, json={"limit": 2, "query": query}).json()
    other = {"filter": {"created_at": {"start_at": "2024-01-02T00:00:00Z"}}}
    assert refusal(square.post(SEARCH, json={"cursor": first["cursor"], "query": other})) == (
        400,
        "INVALID_CURSOR",
        "cursor",
    )
    assert refusal(square.post(SEARCH, json={"cursor": "made-up"}))[1] == "INVALID_CURSOR"
    listed = square.get("/v2/customers", params={"limit": 2}).json()
    switched = square.get("/v2/customers", params={"cursor": listed["cursor"], "sort_field": "CREATED_AT"})
    assert refusal(switched)[1] == "INVALID_CURSOR"
    again = square.post(SEARCH, json={"limit": 2, "cursor": first["cursor"], "query": query}).json()
    assert len(again["customers"]) == 2


def test_cursors_expire(square: httpx.Client) -> None:
    """reference/square.md §6: pagination cursors expire after a few minutes (TTL set short here)."""
    history(square, [{"given_name": f"E{n}"} for n in range(3)])
    square.post("/_control/cursors", json={"ttl_seconds": 0})
    first = square.get("/v2/customers", params={"limit": 1}).json()
    assert refusal(square.get("/v2/customers", params={"cursor": first["cursor"]}))[1] == "INVALID_CURSOR"


def test_paging_returns_every_customer_once(square: httpx.Client) -> None:
    """Paging (SPEC ListCustomers/SearchCustomers `cursor`): no gap, no repeat, even when customers change
    while a client pages."""
    made = square.post("/_control/history/generate", json={"customers": 537, "seed": 4}).json()
    assert made["customers"] == 537
    seen: list[str] = []
    cursor = None
    while True:
        body = square.get("/v2/customers", params={"limit": 100, **({"cursor": cursor} if cursor else {})}).json()
        seen.extend(c["id"] for c in body["customers"])
        if len(seen) == 100:
            square.patch(f"/_control/customers/{seen[0]}", json={"given_name": "Zed"})  # edited mid-way
        cursor = body.get("cursor")
        if not cursor:
            break
    assert len(seen) == 537 and len(set(seen)) == 537
    searched, pages = every_page(
        lambda c: square.post(SEARCH, json={"limit": 100, **({"cursor": c} if c else {})}), "customers"
    )
    assert len({c["id"] for c in searched}) == 537 and pages == 6


def test_bulk_retrieve_takes_1_to_100_ids_and_answers_per_id(square: httpx.Client) -> None:
    """docs customers-api/use-the-api/retrieve-profiles: "To retrieve 1 to 100 customer profiles"; missing ids
    get a NOT_FOUND inside the 200 (SPEC BulkRetrieveCustomersResponse example)."""
    customer = seed(square, given_name="Bulk")
    missing = "2GYD7WNXF7BJZW1PMGNXZ3Y8M8"
    body = square.post("/v2/customers/bulk-retrieve", json={"customer_ids": [customer["id"], missing]}).json()
    assert body["responses"][missing] == example("api.bulk_retrieve_customers.json")["responses"][missing]
    assert body["responses"][customer["id"]]["customer"]["id"] == customer["id"]
    too_many = square.post("/v2/customers/bulk-retrieve", json={"customer_ids": [f"ID{n}" for n in range(101)]})
    assert refusal(too_many) == (400, "ARRAY_LENGTH_TOO_LONG", "customer_ids")
    assert refusal(square.post("/v2/customers/bulk-retrieve", json={"customer_ids": []}))[1] == "ARRAY_EMPTY"


def test_a_merged_away_id_retrieves_the_survivor(square: httpx.Client) -> None:
    """Square forum (payments-failing-retrievecustomer…/10676): RetrieveCustomer with a merged-away id returns
    the new profile; BulkRetrieve does the same."""
    first, second = seed(square, given_name="A"), seed(square, given_name="B")
    survivor = square.post("/_control/merge", json={"customer_ids": [first["id"], second["id"]]}).json()
    assert square.get(f"/v2/customers/{first['id']}").json()["customer"]["id"] == survivor["id"]
    bulk = square.post("/v2/customers/bulk-retrieve", json={"customer_ids": [second["id"]]}).json()
    assert bulk["responses"][second["id"]]["customer"]["id"] == survivor["id"]


@pytest.mark.parametrize(
    "path",
    [
        "/v2/customers/..%2Fcustomers%2Fsearch",
        "/v2/customers/%2E%2E",
        "/v2/customers/not%20an%20id",
        "/v2/customers/X%2F..%2F..%2Fpayments%2FP",
        "/v2/no-such-endpoint",
    ],
)
def test_unknown_or_ill_formed_ids_are_square_404s(square: httpx.Client, path: str) -> None:
    """An id is one path segment: an unknown or ill-formed one is Square's 404 NOT_FOUND (SPEC `Error`), and an
    encoded `../` never reaches another resource."""
    seed(square, given_name="Someone")
    assert refusal(square.get(path)) == (404, "NOT_FOUND", None)


def test_error_body_auth_and_square_version(square: httpx.Client) -> None:
    """Square's error body (docs handling-errors, SPEC `Error`); 401 without the bearer token; Square-Version
    echoed (default when absent) and a malformed one refused (SPEC ErrorCode INVALID_SQUARE_VERSION_FORMAT)."""
    base = str(square.base_url)
    unauthorised = httpx.get(f"{base}/v2/customers")
    assert refusal(unauthorised) == (401, "UNAUTHORIZED", None)
    assert unauthorised.json()["errors"][0]["category"] == "AUTHENTICATION_ERROR"
    auth = {"Authorization": f"Bearer {SQUARE_TOKEN}"}
    assert httpx.get(f"{base}/v2/customers", headers=auth).headers["Square-Version"] == "2025-08-20"
    pinned = httpx.get(f"{base}/v2/customers", headers={**auth, "Square-Version": "2026-01-22"})
    assert pinned.status_code == 200 and pinned.headers["Square-Version"] == "2026-01-22"
    malformed = httpx.get(f"{base}/v2/customers", headers={**auth, "Square-Version": "latest"})
    assert refusal(malformed)[:2] == (400, "INVALID_SQUARE_VERSION_FORMAT")
    not_json = square.post(SEARCH, content=b"{not json", headers={"Content-Type": "application/json"})
    assert refusal(not_json)[:2] == (400, "EXPECTED_JSON_BODY")


def test_creation_source_group_and_segment_filters(square: httpx.Client) -> None:
    """SPEC CustomerFilter.creation_source (values + INCLUDE/EXCLUDE rule), group_ids / segment_ids (any, all,
    none; "up to three segment IDs"); a filter the emulator does not implement is refused, never ignored."""
    made = history(
        square,
        [
            {"given_name": "G1", "group_ids": ["VIP", "NEWS"], "creation_source": "THIRD_PARTY"},
            {"given_name": "G2", "group_ids": ["NEWS"], "segment_ids": ["S1"]},
            {"given_name": "G3"},
        ],
    )

    def ids(query_filter: dict[str, object]) -> list[str]:
        body = square.post(SEARCH, json={"query": {"filter": query_filter, "sort": {"field": "CREATED_AT"}}}).json()
        return [c["id"] for c in body.get("customers", [])]

    g1, g2, g3 = (c["id"] for c in made)
    assert ids({"creation_source": {"values": ["THIRD_PARTY"]}}) == [g1]
    assert ids({"creation_source": {"values": ["THIRD_PARTY"], "rule": "EXCLUDE"}}) == [g2, g3]
    assert ids({"group_ids": {"all": ["VIP", "NEWS"]}}) == [g1]
    assert ids({"group_ids": {"any": ["VIP", "NEWS"], "none": ["VIP"]}}) == [g2]
    assert ids({"segment_ids": {"any": ["S1"]}}) == [g2]
    four = square.post(SEARCH, json={"query": {"filter": {"segment_ids": {"any": ["A", "B", "C", "D"]}}}})
    assert refusal(four)[:2] == (400, "ARRAY_LENGTH_TOO_LONG")
    custom = square.post(SEARCH, json={"query": {"filter": {"custom_attribute": {"filters": []}}}})
    assert refusal(custom)[:2] == (400, "BAD_REQUEST")
