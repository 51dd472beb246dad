"""Ids go into Square URLs as one encoded path segment; an id no Square id could be is a terminal failure at
once (never a request to another object, never 8 transient retries)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from shared.adapters.square_http import SquareClient
from shared.core.errors import TerminalError, TransientError
from shared.pipeline.messages import synthetic_command
from shared.pipeline.worker import RetryPolicy, Worker
from tests.conftest import example
from tests.fakes import FakeQueue, FakeState, flow_context


def client(seen: list[httpx.Request], answer: httpx.Response | None = None) -> SquareClient:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer or httpx.Response(404, json=example("api.error.not_found.json"))

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return SquareClient(base_url="https://connect.squareup.com", access_token="t", api_version="2025-08-20", http=http)


def getters(square: SquareClient) -> list[Callable[[str], Awaitable[Any]]]:
    return [
        square.retrieve_customer,
        square.retrieve_order,
        square.get_payment,
        square.get_refund,
        square.retrieve_location,
    ]


@pytest.mark.parametrize(
    "bad_id",
    ["../customers/X", "..", ".", "", "a\x00b", "a/b", "a\\b", "a?b", "a#b", "a%2Fb", "RT O'BAD ID", "é", "C" * 256],
)
def test_an_id_no_square_id_could_be_is_refused_before_any_request(bad_id: str) -> None:
    seen: list[httpx.Request] = []
    for get in getters(client(seen)):
        with pytest.raises(TerminalError) as raised:
            asyncio.run(get(bad_id))
        assert raised.value.reason_code == "invalid_id"
    assert seen == []


@pytest.mark.parametrize(
    "odd_id", ["ccof:CA4SEHsQ", "KkAkhdMsgzn59SM8A89WgKwekxLZY_ptNBVqnbBX6WgVnzj0xIMgD5vW", "a'b", "a+b", "a@b"]
)
def test_every_plausible_id_stays_one_encoded_segment(odd_id: str) -> None:
    seen: list[httpx.Request] = []
    for get in getters(client(seen)):
        assert asyncio.run(get(odd_id)) is None  # Square's 404
    for request in seen:
        *_, collection, last = request.url.raw_path.decode().split("/")
        assert collection in ("customers", "orders", "payments", "refunds", "locations")
        assert httpx.URL(f"https://x/{last}").path.strip("/") == odd_id


def test_a_200_without_the_object_is_terminal_not_transient() -> None:
    seen: list[httpx.Request] = []
    for answer in (httpx.Response(200, json={}), httpx.Response(200, text="<html>"), httpx.Response(200, json=[1])):
        for get in getters(client(seen, answer)):
            with pytest.raises(TerminalError):
                asyncio.run(get("C1"))


@pytest.mark.parametrize("body", [[], ["x"], {"errors": {"a": 1}}, {"errors": [1]}, "text"])
def test_errors_without_a_square_body_are_classified_by_status(body: Any) -> None:
    seen: list[httpx.Request] = []
    for status, kind in ((400, TerminalError), (503, TransientError)):
        with pytest.raises(kind):
            asyncio.run(client(seen, httpx.Response(status, json=body)).retrieve_customer("C1"))


def test_a_location_event_with_a_hostile_id_is_one_failure_record_at_once() -> None:
    seen: list[httpx.Request] = []
    state, queue = FakeState(), FakeQueue()
    worker = Worker(
        ctx=flow_context(state=state, square=client(seen)),  # type: ignore[arg-type]
        retry_queue=queue,
        policy=RetryPolicy(8, 1.0, 5.0),
    )
    for hostile in ("../customers/JDKYHBWT1D4F8MFH63DBMEN8Y4", "L1\x00"):
        command = synthetic_command(
            event_id=f"evt-{len(hostile)}",
            event_type="location.updated",
            kind="location",
            entity_id=hostile,
            received_at="2026-01-01T00:00:00Z",
        )
        assert asyncio.run(worker.handle(command.model_dump_json().encode())) is None
        failure = state.failures[("locations", hostile)]
        assert failure.reason_code == "invalid_id" and failure.attempts == 1
    assert seen == [] and queue.sent == []  # no request anywhere, no retry scheduled
