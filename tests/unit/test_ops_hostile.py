"""Every listed failure is reachable (open, retry, resolve) whatever its id or flow; bad admin input is a 400
whose JSON error names the field, never a 500."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from shared.core.ports import FailureRecord
from shared.ops.api import OPENAPI_FILE, handle
from shared.pipeline.registry import FLOWS, OPERATED_FLOWS
from tests.unit.test_ops_api import call, service

HOSTILE_IDS = [
    "RT O'BAD ID",
    "../customers/X",
    "RTCOL/1",
    "RTCOL%2F1",
    "X/retry",
    "X/resolve/retry",
    "ends/",
    "/starts",
    "a\x00b",
    "é☃\U0001f600",
    "?#&=",
    "Z" * 2000,
]


def failure(flow: str, record_id: str, event_type: str = "customer.updated") -> FailureRecord:
    return FailureRecord(
        flow,
        record_id,
        "invalid_key",
        "m",
        "e1",
        event_type,
        first_seen="2026-11-22T10:00:00+00:00",
        last_seen="2026-11-22T10:00:00+00:00",
    )


@pytest.mark.parametrize("record_id", HOSTILE_IDS)
def test_every_listed_failure_can_be_opened_retried_and_resolved(record_id: str) -> None:
    svc, state, queue = service()
    state.failures[("customers", record_id)] = failure("customers", record_id)
    state.failures[("customers", "neighbour")] = failure("customers", "neighbour")
    (listed,) = [f for f in call(svc, "GET", "failures").body["items"] if f["record_id"] == record_id]
    path = f"failures/customers/{listed['record_id']}"  # as the host hands it over: decoded once
    opened = call(svc, "GET", path)
    assert opened.status == 200 and opened.body["record_id"] == record_id
    assert call(svc, "GET", f"records/customers/{record_id}").body["failure"]["record_id"] == record_id
    retried = call(svc, "POST", f"{path}/retry")
    assert retried.status == 200 and retried.body["record_id"] == record_id
    assert json.loads(queue.sent[-1].body)["entity_id"] == record_id
    resolved = call(svc, "POST", f"{path}/resolve", body={"status": "ignored", "note": "n"})
    assert resolved.status == 200 and state.failures[("customers", record_id)].status == "ignored"
    assert state.failures[("customers", "neighbour")].status == "open"  # nothing else was touched


def test_failures_of_the_queue_flow_are_reachable() -> None:
    svc, state, queue = service()
    state.failures[("queue", "malformed-123")] = failure("queue", "malformed-123", event_type="")
    (listed,) = call(svc, "GET", "failures", {"flow": "queue"}).body["items"]
    assert call(svc, "GET", f"failures/queue/{listed['record_id']}").status == 200
    not_retryable = call(svc, "POST", "failures/queue/malformed-123/retry")
    assert not_retryable.status == 409 and not_retryable.body["error"]["code"] == "not_retryable"
    assert call(svc, "POST", "failures/queue/malformed-123/resolve", body={"status": "resolved"}).status == 200
    assert state.failures[("queue", "malformed-123")].status == "resolved" and queue.sent == []


def token(document: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode()


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "field"),
    [
        ("GET", "failures", {"continuation": base64.urlsafe_b64encode(b'{"o":1e999}').decode()}, None, "continuation"),
        ("GET", "failures", {"continuation": token({"o": -5})}, None, "continuation"),
        ("GET", "failures", {"continuation": token({"o": True})}, None, "continuation"),
        ("GET", "failures", {"continuation": token({"o": "3"})}, None, "continuation"),
        ("GET", "failures", {"continuation": token([[[[1]]]])}, None, "continuation"),
        ("GET", "failures", {"continuation": base64.urlsafe_b64encode(b"[" * 5000).decode()}, None, "continuation"),
        ("GET", "failures", {"continuation": "é"}, None, "continuation"),
        ("GET", "failures", {"page_size": "9" * 5000}, None, "page_size"),
        ("GET", "failures", {"from": "9999-12-31T23:59:59-01:00"}, None, "from"),
        ("POST", "replay", {}, {"from": 1, "to": 2}, "from"),
        ("POST", "replay", {}, {"from": "2026-01-01T00:00:00Z", "to": ["x"]}, "to"),
        ("POST", "replay", {}, {"from": "0001-01-01T00:00:00+01:00", "to": "2026-01-01T00:00:00Z"}, "from"),
        (
            "POST",
            "replay",
            {},
            {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z", "flow": {"a": 1}},
            "flow",
        ),
        ("POST", "replay", {}, {"from": "2026-01-01T00:00:00Z"}, "to"),
        ("POST", "failures/retry", {}, {"from": 123}, "from"),
        ("POST", "failures/retry", {}, {"flow": 7}, "flow"),
        ("POST", "failures/retry", {}, {"status": False}, "status"),
        ("POST", "failures/customers/C0/resolve", {}, {"status": {"a": 1}}, "status"),
        ("POST", "failures/customers/C0/resolve", {}, {"note": 5}, "note"),
        ("POST", "flows/customers/pause", {}, {"note": [1]}, "note"),
    ],
)
def test_bad_admin_input_is_a_400_naming_the_field(
    method: str, path: str, query: dict[str, str], body: dict[str, Any] | None, field: str
) -> None:
    svc, _, _ = service(failures=1)
    reply = call(svc, method, path, query, body)
    assert reply.status == 400, reply.body
    assert reply.body["error"]["field"] == field and field in reply.body["error"]["message"]


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 5000 + b"]" * 5000,
        b'{"a":' * 5000 + b"1" + b"}" * 5000,
        b'{"note":"\\ud800"}',
        b'{"x":NaN}',
        b"\xff",
        b"[1]",
    ],
)
def test_bodies_that_are_no_acceptable_json_object_are_a_400(raw: bytes) -> None:
    svc, _, _ = service(failures=1)
    for method, path in (("POST", "replay"), ("POST", "failures/retry"), ("POST", "failures/customers/C0/resolve")):
        reply = asyncio.run(handle(svc, method, path, {}, raw))
        assert reply.status == 400 and reply.body["error"] == {
            **reply.body["error"],
            "code": "invalid_json",
            "field": "body",
        }


def test_unknown_flows_and_paths_stay_404_and_405() -> None:
    svc, _, _ = service(failures=1)
    assert call(svc, "GET", "failures/nope/C0").status == 404
    assert call(svc, "GET", "failures/customers/C0/retry").status == 404  # a GET names the record "C0/retry"
    assert call(svc, "DELETE", "failures/customers/C0").status == 405
    assert call(svc, "GET", "health/").status == 200


def test_the_documented_flows_are_the_registry_s() -> None:
    """The console fills its flow filter from this document: every flow a failure is filed under, "queue" too."""
    document = json.loads(OPENAPI_FILE.read_text(encoding="utf-8"))
    for path, operations in document["paths"].items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "flow" and parameter["in"] == "path":
                    expected = FLOWS if path.startswith("/flows/") else OPERATED_FLOWS
                    assert tuple(parameter["schema"]["enum"]) == tuple(expected), path
