"""The admin API router and its OpenAPI document, over in-memory fakes."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from shared.core.ports import FailureRecord
from shared.ops.api import OPENAPI_FILE, ROUTES, handle
from shared.ops.service import OpsService
from tests.fakes import FakeQueue, FakeState, FixedClock, NoTraces


def service(failures: int = 0) -> tuple[OpsService, FakeState, FakeQueue]:
    state, queue = FakeState(), FakeQueue()
    for index in range(failures):
        state.failures[("customers", f"C{index}")] = FailureRecord(
            "customers",
            f"C{index}",
            "invalid_data",
            "m",
            f"e{index}",
            "customer.created",
            field="email_address",
            first_seen=f"2026-11-22T10:00:0{index}+00:00",
            last_seen=f"2026-11-22T10:00:0{index}+00:00",
        )
    return OpsService(state, NoTraces(), queue, FixedClock()), state, queue  # type: ignore[arg-type]


def call(
    svc: OpsService, method: str, path: str, query: dict[str, str] | None = None, body: dict[str, Any] | None = None
) -> Any:
    return asyncio.run(handle(svc, method, path, query or {}, json.dumps(body).encode() if body is not None else b""))


def test_every_route_is_documented_and_every_documented_path_is_routed() -> None:
    documented = {
        (method.upper(), path.strip("/"))
        for path, operations in json.loads(OPENAPI_FILE.read_text(encoding="utf-8"))["paths"].items()
        for method in operations
    }
    routed = {(method, template) for method, template, _ in ROUTES}
    assert documented == routed


def test_paging_walks_every_failure_once() -> None:
    svc, _, _ = service(failures=5)
    seen, token = [], None
    while True:
        reply = call(svc, "GET", "failures", {"page_size": "2", **({"continuation": token} if token else {})})
        seen += [item["record_id"] for item in reply.body["items"]]
        token = reply.body.get("continuation")
        if not token:
            break
    assert sorted(seen) == [f"C{i}" for i in range(5)] and reply.body["total"] == 5
    assert seen[0] == "C4"  # most recent first


def test_time_filters_and_bad_input() -> None:
    svc, _, _ = service(failures=5)
    since = call(svc, "GET", "failures", {"from": "2026-11-22T10:00:03+00:00"})
    assert {i["record_id"] for i in since.body["items"]} == {"C3", "C4"}
    assert call(svc, "GET", "failures", {"from": "yesterday"}).status == 400
    assert call(svc, "GET", "failures", {"continuation": "garbage"}).status == 400
    assert call(svc, "GET", "failures", {"page_size": "0"}).status == 400
    invalid = asyncio.run(handle(svc, "POST", "replay", {}, b"{not json"))
    assert invalid.status == 400 and invalid.body["error"]["code"] == "invalid_json"


def test_unknown_routes_and_methods() -> None:
    svc, _, _ = service()
    assert call(svc, "GET", "nothing/here").status == 404
    wrong = call(svc, "DELETE", "health")
    assert wrong.status == 405 and "GET" in wrong.body["error"]["message"]
    assert call(svc, "POST", "flows/orders/pause").status == 404  # unknown flow


def test_retry_enqueues_a_fresh_fetch_with_a_new_id() -> None:
    svc, state, queue = service(failures=1)
    reply = call(svc, "POST", "failures/customers/C0/retry")
    assert reply.status == 200
    (message,) = queue.sent
    body = json.loads(message.body)
    assert (
        body["fetch"] is True and body["entity_id"] == "C0" and re.match(r"retry-C0-[0-9a-f]{12}$", message.message_id)
    )
    assert state.failures[("customers", "C0")].status == "retrying"
    assert call(svc, "POST", "failures/customers/NOPE/retry").status == 404


def test_health_shows_the_crm_change_poll_and_the_age_of_its_delta_link() -> None:
    svc, state, _ = service()
    state.cursors["crm:contacts:status"] = json.dumps(
        {
            "mode": "delta",
            "started_at": "2026-11-22T11:59:00+00:00",
            "read": 3,
            "queued": 3,
            "delta_link_at": "2026-11-22T11:59:00+00:00",
            "last_full_pass_at": "",
            "last_full_pass_mode": "",
        }
    )
    flows = {f["flow"]: f for f in call(svc, "GET", "health").body["flows"]}
    tracking = flows["crm-contacts"]["change_tracking"]
    assert tracking["mode"] == "delta" and tracking["delta_link_age_seconds"] == 60.0  # the clock reads 12:00
    assert "change_tracking" not in flows["customers"]
    assert call(svc, "GET", "flows").body["flows"][-1]["flow"] == "crm-contacts"
    assert call(svc, "POST", "flows/crm-contacts/pause", body={"note": "n"}).body["paused"] is True
