"""The two-way calls of both clients over httpx.MockTransport: Square's UpdateCustomer/CreateCustomer/
DeleteCustomer (versions, field errors, throttling) and Dataverse change tracking (Prefer header, delta and
next links, `$deletedEntity` entries, ExpiredVersionStamp) and paged queries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from shared.adapters.dataverse_auth import StaticToken
from shared.adapters.dataverse_http import DataverseClient
from shared.adapters.rate_gate import RateGate
from shared.adapters.square_http import SquareClient
from shared.core.errors import (
    ChangeTokenExpiredError,
    ConcurrencyError,
    InvalidDataError,
    TerminalError,
    ThrottledError,
    TransientError,
)
from tests.conftest import example

Handler = Callable[[httpx.Request], httpx.Response]


def square(handler: Handler) -> SquareClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return SquareClient(base_url="https://connect.squareupsandbox.com", access_token="tok", api_version="v", http=http)


def dataverse(handler: Handler) -> DataverseClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return DataverseClient(
        base_url="https://org.example", api_version="v9.2", tokens=StaticToken("t"), gate=RateGate(4), http=http
    )


def square_error(status: int, code: str, field: str | None = None, detail: str = "") -> httpx.Response:
    error: dict[str, Any] = {"category": "INVALID_REQUEST_ERROR", "code": code, "detail": detail}
    if field:
        error["field"] = field
    return httpx.Response(status, json={"errors": [error]})


def test_update_customer_is_one_sparse_put_with_the_version() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=example("api.update_customer.json"))

    changes = {"email_address": "New.Amelia.Earhart@example.com", "note": "updated customer note", "phone_number": None}
    updated = asyncio.run(square(handler).update_customer("JDKYHBWT1D4F8MFH63DBMEN8Y4", changes, version=2))
    (request,) = seen
    assert request.method == "PUT" and request.url.path == "/v2/customers/JDKYHBWT1D4F8MFH63DBMEN8Y4"
    assert json.loads(request.content) == example("api.update_customer.request.json")  # Square's own example
    assert updated is not None and updated["note"] == "updated customer note"


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (square_error(400, "VERSION_MISMATCH", "version"), ConcurrencyError),
        (square_error(429, "RATE_LIMITED"), ThrottledError),
        (square_error(500, "INTERNAL_SERVER_ERROR"), TransientError),
        (square_error(400, "BAD_REQUEST"), TerminalError),
    ],
)
def test_update_customer_errors_are_classified(response: httpx.Response, error: type[Exception]) -> None:
    with pytest.raises(error):
        asyncio.run(square(lambda _: response).update_customer("C1", {"note": "x"}, version=3))


def test_a_refused_field_names_square_s_field_and_message() -> None:
    response = square_error(400, "INVALID_EMAIL_ADDRESS", "email_address", "Invalid email address.")
    with pytest.raises(InvalidDataError) as raised:
        asyncio.run(square(lambda _: response).update_customer("C1", {"email_address": "nope"}, version=3))
    (problem,) = raised.value.problems
    assert problem.field == "email_address" and problem.reason == "INVALID_EMAIL_ADDRESS: Invalid email address."


def test_update_of_a_customer_square_no_longer_has_is_none() -> None:
    response = httpx.Response(404, json=example("api.error.not_found.json"))
    assert asyncio.run(square(lambda _: response).update_customer("C1", {"note": "x"})) is None


def test_create_customer_sends_the_idempotency_key_and_delete_reports_a_missing_customer() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "DELETE":
            return httpx.Response(404, json=example("api.error.not_found.json"))
        return httpx.Response(200, json={"customer": {"id": "NEW1", "version": 0}})

    client = square(handler)
    created = asyncio.run(client.create_customer({"given_name": "Grace"}, idempotency_key="tb-abc"))
    assert created["id"] == "NEW1"
    assert json.loads(seen[0].content) == {"given_name": "Grace", "idempotency_key": "tb-abc"}
    assert asyncio.run(client.delete_customer("GONE", version=None)) is False
    assert seen[1].method == "DELETE" and seen[1].url.path == "/v2/customers/GONE"


def test_the_first_change_read_asks_for_tracking_and_follows_the_next_link() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if "$skiptoken" not in str(request.url):
            next_link = "https://org.example/api/data/v9.2/contacts?$select=firstname&$skiptoken=2"
            return httpx.Response(200, json={"value": [{"contactid": "a"}], "@odata.nextLink": next_link})
        delta = "https://org.example/api/data/v9.2/contacts?$select=firstname&$deltatoken=919042%2108%2f22%2f2017"
        return httpx.Response(200, json={"value": [{"contactid": "b"}], "@odata.deltaLink": delta})

    client = dataverse(handler)
    first = asyncio.run(client.read_changes("contacts", ["firstname"], None, page_size=1))
    assert first.rows == [{"contactid": "a"}] and first.delta_link is None and first.next_link
    last = asyncio.run(client.read_changes("contacts", ["firstname"], first.next_link, page_size=1))
    assert last.delta_link and last.delta_link.endswith("$deltatoken=919042%2108%2f22%2f2017")
    assert seen[0].url.path == "/api/data/v9.2/contacts" and seen[0].url.params["$select"] == "firstname"
    assert all(r.headers["Prefer"] == "odata.track-changes,odata.maxpagesize=1" for r in seen)
    assert seen[1].url.params["$skiptoken"] == "2"


def test_a_delta_page_separates_changed_rows_from_deleted_entities() -> None:
    body = {
        "@odata.context": "https://org.example/api/data/v9.2/$metadata#contacts/$delta",
        "value": [
            {"@odata.etag": 'W/"1"', "contactid": "c1", "firstname": "Ada"},
            {
                "@odata.context": "https://org.example/api/data/v9.2/$metadata#contacts/$deletedEntity",
                "id": "c2",
                "reason": "deleted",
            },
        ],
        "@odata.deltaLink": "https://org.example/api/data/v9.2/contacts?$select=firstname&$deltatoken=2",
    }
    page = asyncio.run(
        dataverse(lambda _: httpx.Response(200, json=body)).read_changes("contacts", [], "x?$deltatoken=1")
    )
    assert [r["contactid"] for r in page.rows] == ["c1"] and page.deleted_ids == ["c2"]


def test_an_expired_token_is_its_own_error() -> None:
    body = {
        "error": {
            "code": "0x80044352",
            "message": "Version stamp associated with the client has expired. Please perform a full sync.",
        }
    }
    client = dataverse(lambda _: httpx.Response(400, json=body))
    with pytest.raises(ChangeTokenExpiredError):
        asyncio.run(client.read_changes("contacts", [], "https://org.example/api/data/v9.2/contacts?$deltatoken=1"))


def test_a_paged_query_filters_and_returns_the_next_link() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"value": [{"contactid": "a"}], "@odata.nextLink": "https://org.example/x"})

    rows, link = asyncio.run(
        dataverse(handler).query_page("contacts", "modifiedon ge 2026-11-22T12:00:00Z", ["firstname"], None, 100)
    )
    assert rows == [{"contactid": "a"}] and link == "https://org.example/x"
    assert seen[0].url.params["$filter"] == "modifiedon ge 2026-11-22T12:00:00Z"
    assert seen[0].headers["Prefer"] == "odata.maxpagesize=100"
