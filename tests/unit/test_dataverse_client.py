"""The Dataverse client over httpx.MockTransport: request shapes, 429 handling, error classification."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import httpx
import pytest

from shared.adapters.dataverse_auth import StaticToken
from shared.adapters.dataverse_http import DataverseClient, classify, make_http_client
from shared.adapters.rate_gate import RateGate
from shared.core.errors import ConcurrencyError, TerminalError, ThrottledError, TransientError
from shared.core.keys import key_segment

ENTITY = "https://org.example/api/data/v9.2/contacts(11111111-2222-3333-4444-555555555555)"


def client(
    handler: Callable[[httpx.Request], httpx.Response], *, wait: float = 5.0, gate: RateGate | None = None
) -> DataverseClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return DataverseClient(
        base_url="https://org.example",
        api_version="v9.2",
        tokens=StaticToken("tok"),
        gate=gate or RateGate(4),
        http=http,
        max_inline_wait_seconds=wait,
    )


def test_upsert_by_key_is_one_patch_with_odata_headers() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204, headers={"OData-EntityId": ENTITY})

    result = asyncio.run(
        client(handler).upsert_by_key("contacts", {"tb_squarecustomerid": "ABC"}, {"firstname": "Ada"})
    )
    (request,) = seen
    assert request.method == "PATCH"
    assert request.url.path == "/api/data/v9.2/contacts(tb_squarecustomerid='ABC')"
    assert request.headers["Authorization"] == "Bearer tok" and request.headers["OData-Version"] == "4.0"
    assert "If-Match" not in request.headers and "If-None-Match" not in request.headers
    assert json.loads(request.content) == {"firstname": "Ada"}
    assert result.entity_id == "11111111-2222-3333-4444-555555555555"


def test_update_by_key_is_update_only_and_reports_missing() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["If-Match"] == "*"
        return httpx.Response(
            404,
            json={"error": {"code": "0x80060891", "message": "A record with the specified key values does not exist"}},
        )

    assert asyncio.run(client(handler).update_by_key("contacts", {"k": "v"}, {"statecode": 1})) is None


def test_429_pauses_every_sender_then_succeeds() -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return httpx.Response(
                429, headers={"Retry-After": "1"}, json={"error": {"code": "0x80072322", "message": "limit"}}
            )
        return httpx.Response(204, headers={"OData-EntityId": ENTITY})

    gate = RateGate(4)
    started = time.monotonic()
    asyncio.run(client(handler, gate=gate).upsert_by_key("contacts", {"k": "v"}, {}))
    assert calls["n"] == 2 and time.monotonic() - started >= 0.9


def test_throttling_beyond_the_inline_budget_raises_with_retry_after() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            429, headers={"Retry-After": "300"}, json={"error": {"code": "0x80072321", "message": "time"}}
        )

    with pytest.raises(ThrottledError) as caught:
        asyncio.run(client(handler, wait=5).upsert_by_key("contacts", {"k": "v"}, {}))
    assert caught.value.retry_after == 300


def test_5xx_is_retried_then_surfaces_as_transient() -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        return httpx.Response(503, json={"error": {"code": "0x80040216", "message": "unavailable"}})

    with pytest.raises(TransientError):
        asyncio.run(client(handler).upsert_by_key("contacts", {"k": "v"}, {}))
    assert calls["n"] == 3


def test_network_errors_are_transient() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    with pytest.raises(TransientError):
        asyncio.run(client(handler).get("contacts", "x", ["contactid"]))


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (400, "0x80044331", TerminalError),
        (403, "0x80040220", TerminalError),
        (412, "0x80060882", ConcurrencyError),
        (429, "0x80072326", ThrottledError),
        (500, "0x80040216", TransientError),
        (400, "0x80090412", TransientError),  # customisation lock: retry later
        (401, "", TransientError),
    ],
)
def test_error_table(status: int, code: str, kind: type[Exception]) -> None:
    error = classify(httpx.Response(status, json={"error": {"code": code, "message": "m"}}))
    assert type(error) is kind
    if isinstance(error, TerminalError) and status == 403:
        assert error.reason_code == "privilege_denied"


def test_query_sends_select_filter_top() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["$filter"] == "emailaddress1 eq 'a@b.com'"
        assert request.url.params["$select"] == "contactid,tb_squarecustomerid" and request.url.params["$top"] == "50"
        return httpx.Response(200, json={"value": [{"contactid": "1"}]})

    rows = asyncio.run(
        client(handler).query("contacts", "emailaddress1 eq 'a@b.com'", ["contactid", "tb_squarecustomerid"])
    )
    assert rows == [{"contactid": "1"}]


def test_merge_body_carries_odata_types() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        assert request.url.path.endswith("/Merge")
        assert body["Target"] == {"@odata.type": "Microsoft.Dynamics.CRM.contact", "contactid": "t"}
        assert body["Subordinate"]["contactid"] == "s" and body["UpdateContent"]["@odata.type"].endswith("contact")
        return httpx.Response(204)

    asyncio.run(client(handler).merge("contact", "t", "s", {}))


def test_dop_hint_lowers_the_concurrency_limit() -> None:
    gate = RateGate(16)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"x-ms-dop-hint": "4"}, json={"UserId": "u"})

    asyncio.run(client(handler, gate=gate).who_am_i())
    assert gate.limit == 4


def test_key_segment_doubles_quotes_and_encodes() -> None:
    assert key_segment({"name": "O'Brien Co"}) == "(name='O%27%27Brien%20Co')"


def test_affinity_cookie_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert "cookie" not in request.headers
        return httpx.Response(200, headers={"Set-Cookie": "ARRAffinity=abc; Path=/"}, json={"UserId": "u"})

    async def twice() -> None:
        http = make_http_client(5)
        http._transport = httpx.MockTransport(handler)  # the real client's cookie policy, a mock network
        dv = DataverseClient(
            base_url="https://org.example", api_version="v9.2", tokens=StaticToken("t"), gate=RateGate(2), http=http
        )
        await dv.who_am_i()
        await dv.who_am_i()
        assert len(http.cookies.jar) == 0

    asyncio.run(twice())
