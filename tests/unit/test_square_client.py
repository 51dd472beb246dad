from __future__ import annotations

import asyncio

import httpx
import pytest

from shared.adapters.square_http import SquareClient
from shared.core.errors import TerminalError, ThrottledError, TransientError
from tests.conftest import example


def client(response: httpx.Response, seen: list[httpx.Request] | None = None) -> SquareClient:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return response

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return SquareClient(
        base_url="https://connect.squareupsandbox.com", access_token="tok", api_version="2025-08-20", http=http
    )


def test_retrieve_customer_sends_auth_and_version() -> None:
    seen: list[httpx.Request] = []
    customer = asyncio.run(
        client(httpx.Response(200, json=example("api.retrieve_customer.json")), seen).retrieve_customer("JDKY")
    )
    assert customer is not None and customer["id"] == "JDKYHBWT1D4F8MFH63DBMEN8Y4"
    assert seen[0].headers["Authorization"] == "Bearer tok" and seen[0].headers["Square-Version"] == "2025-08-20"
    assert seen[0].url.path == "/v2/customers/JDKY"


def test_not_found_is_none() -> None:
    assert (
        asyncio.run(client(httpx.Response(404, json=example("api.error.not_found.json"))).retrieve_customer("x"))
        is None
    )


@pytest.mark.parametrize(
    ("status", "kind"),
    [(429, ThrottledError), (500, TransientError), (503, TransientError), (400, TerminalError), (401, TransientError)],
)
def test_errors_are_classified(status: int, kind: type[Exception]) -> None:
    body = {"errors": [{"category": "API_ERROR", "code": "RATE_LIMITED" if status == 429 else "X", "detail": "d"}]}
    with pytest.raises(kind):
        asyncio.run(client(httpx.Response(status, json=body)).retrieve_customer("x"))


def test_search_updated_since_pages() -> None:
    seen: list[httpx.Request] = []
    customers, cursor = asyncio.run(
        client(httpx.Response(200, json=example("api.search_customers.json")), seen).search_customers_updated_since(
            "2026-01-01T00:00:00Z", "c1"
        )
    )
    assert len(customers) == 2 and cursor == "9dpS093Uy12AzeE"
    assert b'"updated_at":{"start_at":"2026-01-01T00:00:00Z"}' in seen[0].content.replace(b" ", b"")
