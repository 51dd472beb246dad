"""The Dataverse budget across instances and application users: each instance's explicit share, the
dop hint divided across instances, the execution-time budget, and several users spreading the load
(a 429 pauses only the user it was for). Bulk request shapes of the client (key only in @odata.id)."""

from __future__ import annotations

import asyncio
import json
import time

import httpx

from shared.adapters.dataverse_auth import StaticToken, app_users
from shared.adapters.dataverse_http import AppUser, DataverseClient
from shared.adapters.rate_gate import Budget, RateGate
from shared.config.settings import load_settings
from shared.core.ports import BulkTarget


def test_each_instance_takes_an_explicit_share_of_one_users_budget() -> None:
    one = Budget()
    assert one.requests_per_second == 6000 * 0.9 / 300  # 18 requests a second
    assert one.execution_seconds_per_second == 1200 * 0.9 / 300  # 3.6 seconds of server time a second
    assert one.concurrency == 46
    forty = Budget(instances=40)
    assert forty.requests_per_second * 40 == one.requests_per_second
    assert forty.concurrency == 1
    # all instances together stay inside the documented limits, whatever how many run
    for instances in (1, 2, 7, 40, 100):
        share = Budget(instances=instances)
        assert share.requests_per_second * instances * 300 <= 6000
        assert share.execution_seconds_per_second * instances * 300 <= 1200
        assert share.concurrency * instances <= 52 or share.concurrency == 1  # one at a time is the floor


def test_the_dop_hint_is_divided_across_instances() -> None:
    gate = RateGate(52, budget=Budget(instances=4))
    gate.hint(50)
    assert gate.limit == 11  # the per-instance concurrency share (46 // 4) caps 50 // 4 = 12
    gate.hint(8)
    assert gate.limit == 2


def test_requests_that_spend_the_time_budget_hold_the_next_ones() -> None:
    # 0.2 s of server time per 1-second window: once a request has taken 0.25 s the next waits ~0.25 s
    budget = Budget(execution_seconds_per_window=0.2, window_seconds=1.0, headroom=1.0, requests_per_window=10**6)
    gate = RateGate(10, budget=budget)

    async def scenario() -> float:
        async with gate.slot():
            pass
        gate.charge(0.25)
        started = time.monotonic()
        async with gate.slot():
            return time.monotonic() - started

    assert asyncio.run(scenario()) >= 0.15


def test_a_quiet_gate_bursts_up_to_its_share_of_the_window_then_keeps_the_rate() -> None:
    # 20 requests per 10-second window: 20 go at once, the next ones at 2 a second
    budget = Budget(requests_per_window=20, window_seconds=10.0, headroom=1.0, execution_seconds_per_window=10**6)
    gate = RateGate(50, budget=budget)

    async def scenario() -> list[float]:
        started = time.monotonic()
        moments = []
        for _ in range(22):
            async with gate.slot():
                moments.append(time.monotonic() - started)
        return moments

    moments = asyncio.run(scenario())
    assert moments[19] < 0.2
    assert moments[21] >= 0.9


def test_several_application_users_are_read_from_the_settings() -> None:
    env = {
        "DATAVERSE_URL": "https://org.example",
        "DATAVERSE_AUTH": "static_token",
        "DATAVERSE_TOKEN": "tok-a,tok-b,tok-c",
        "SQUARE_ACCESS_TOKEN": "sq",
        "SQUARE_WEBHOOK_SIGNATURE_KEY": "k",
        "SQUARE_WEBHOOK_URL": "https://x.example/api/square/webhooks",
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "QUEUE_BACKEND": "storagequeue",
    }
    settings = load_settings(env).dataverse
    assert settings.user_count == 3
    users = app_users(settings)
    assert len({key for key, _ in users}) == 3
    assert [asyncio.run(tokens.token()) for _, tokens in users] == ["tok-a", "tok-b", "tok-c"]


def test_requests_spread_over_users_and_a_429_pauses_only_its_user() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        token = request.headers["Authorization"].removeprefix("Bearer ")
        seen.append(token)
        if token == "a" and seen.count("a") == 1:
            return httpx.Response(429, headers={"Retry-After": "30"}, json={"error": {"code": "0x80072322"}})
        return httpx.Response(200, json={"value": []})

    users = [AppUser(StaticToken("a"), RateGate(2)), AppUser(StaticToken("b"), RateGate(2))]
    dataverse = DataverseClient(
        base_url="https://org.example",
        api_version="v9.2",
        users=users,
        http=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        max_inline_wait_seconds=60,
    )

    async def scenario() -> None:
        await asyncio.gather(*(dataverse.query("contacts", "statecode eq 0", ["contactid"]) for _ in range(6)))

    started = time.monotonic()
    asyncio.run(scenario())
    assert time.monotonic() - started < 5  # user b carried on while a was paused for 30 s
    assert users[0].gate.paused_for() > 20 and users[1].gate.paused_for() == 0
    assert seen.count("a") == 1 and seen.count("b") == 6
    assert dataverse.parallelism() == 4


def test_upsert_multiple_puts_the_key_in_odata_id_only_and_create_multiple_returns_ids() -> None:
    bodies: list[tuple[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append((request.url.path, json.loads(request.content)))
        if request.url.path.endswith("CreateMultiple"):
            return httpx.Response(200, json={"Ids": ["11111111-0000-0000-0000-000000000001"]})
        return httpx.Response(204)

    dataverse = DataverseClient(
        base_url="https://org.example",
        api_version="v9.2",
        tokens=StaticToken("t"),
        gate=RateGate(4),
        http=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
    )
    targets = [
        BulkTarget({"firstname": "A", "tb_squarecustomerid": "K1"}, key={"tb_squarecustomerid": "K1"}),
        BulkTarget({"firstname": "B", "tb_squarecustomerid": "K2"}, entity_id="22222222-0000-0000-0000-000000000002"),
    ]
    asyncio.run(dataverse.upsert_multiple("contacts", "contact", targets))
    ids = asyncio.run(
        dataverse.create_multiple("contacts", "contact", [{"firstname": "C", "tb_squarecustomerid": "K3"}])
    )
    (upsert_path, upsert), (create_path, create) = bodies
    assert upsert_path == "/api/data/v9.2/contacts/Microsoft.Dynamics.CRM.UpsertMultiple"
    assert upsert == {
        "Targets": [
            {
                "@odata.type": "Microsoft.Dynamics.CRM.contact",
                "@odata.id": "contacts(tb_squarecustomerid='K1')",
                "firstname": "A",
            },
            {
                "@odata.type": "Microsoft.Dynamics.CRM.contact",
                "@odata.id": "contacts(22222222-0000-0000-0000-000000000002)",
                "firstname": "B",
                "tb_squarecustomerid": "K2",
            },
        ]
    }
    assert create_path == "/api/data/v9.2/contacts/Microsoft.Dynamics.CRM.CreateMultiple"
    assert create == {
        "Targets": [{"@odata.type": "Microsoft.Dynamics.CRM.contact", "firstname": "C", "tb_squarecustomerid": "K3"}]
    }
    assert ids == ["11111111-0000-0000-0000-000000000001"]


def test_query_many_sends_one_batch_of_get_parts_and_returns_rows_per_filter() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        boundary = "batchresponse_1"
        parts = [
            "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 200 OK\r\n"
            f"Content-Type: application/json\r\n\r\n{json.dumps({'value': rows})}"
            for rows in ([{"contactid": "a"}], [])
        ]
        text = "".join(f"--{boundary}\r\n{part}\r\n" for part in parts) + f"--{boundary}--\r\n"
        return httpx.Response(
            200, content=text.encode(), headers={"Content-Type": f"multipart/mixed; boundary={boundary}"}
        )

    dataverse = DataverseClient(
        base_url="https://org.example",
        api_version="v9.2",
        tokens=StaticToken("t"),
        gate=RateGate(4),
        http=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
    )
    rows = asyncio.run(
        dataverse.query_many("contacts", ["emailaddress1 eq 'a@x.com'", "statecode eq 0"], ["contactid"])
    )
    assert rows == [[{"contactid": "a"}], []]
    (request,) = seen
    assert request.method == "POST" and request.url.path == "/api/data/v9.2/$batch"
    body = request.content.decode()
    assert body.count("GET https://org.example/api/data/v9.2/contacts?$select=contactid&$filter=") == 2
    assert "changeset" not in body  # reads may not sit in a changeset
    assert "emailaddress1%20eq%20%27a%40x.com%27" in body
