"""The project attacks itself through the local host: arbitrary bytes, arbitrary and hostile JSON, header
combinations and sizes around each limit at the webhook; arbitrary paths, queries and bodies at the admin
API. Only 2xx/4xx with a JSON body may come back, nothing unsigned may be queued, the host stays healthy.

The module runs its own stack with the queue worker disabled, so the queue itself is the oracle: after the
attack it must hold exactly the events the webhook answered "queued" for, each one signed.
"""

from __future__ import annotations

import contextlib
import json
import string
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.stack import Stack, StackOptions
from shared.adapters.storage_queue import MAX_MESSAGE_TEXT_BYTES, decode_envelope
from shared.core.models import SyncCommand
from shared.pipeline.registry import ROUTES
from shared.pipeline.signature import SIGNATURE_HEADER, sign
from tests.conftest import example

pytestmark = pytest.mark.integration
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
MAX_BODY = 1_048_576  # WEBHOOK_MAX_BODY_BYTES' default


@pytest.fixture(scope="module")
def fuzz_stack() -> Iterator[Stack]:
    options = StackOptions(
        extra_env={"AzureWebJobs.process_event.Disabled": "true", "AzureWebJobs.record_dead_letter.Disabled": "true"}
    )
    with Stack(options) as running:
        yield running


@pytest.fixture(scope="module")
def host(fuzz_stack: Stack) -> Iterator[httpx.Client]:
    with fuzz_stack.client("host", timeout=60) as client:
        yield client


def queued_commands(stack: Stack) -> list[SyncCommand]:
    """Everything on the events queue (the worker is off): read, checked against the 64 KiB limit, removed."""
    client = QueueClient.from_connection_string(stack.env["AzureWebJobsStorage"], stack.env["SQUARE_EVENTS_QUEUE"])
    with contextlib.suppress(ResourceExistsError):
        client.create_queue()
    found = []
    while batch := list(client.receive_messages(messages_per_page=32, visibility_timeout=60)):
        for message in batch:
            assert len(str(message.content)) <= MAX_MESSAGE_TEXT_BYTES
            found.append(SyncCommand.model_validate_json(decode_envelope(str(message.content)).body))
            client.delete_message(message)
    return found


# ---- what a hostile client can send ----

texts = st.text(alphabet=st.characters(exclude_categories=()), max_size=24)  # lone surrogates and controls too
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**60, max_value=10**80),
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
)
json_values = st.recursive(
    leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4)
)
RAW_FRAGMENTS = st.one_of(
    st.integers(0, 3000).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(1, 6000).map(lambda digits: "9" * digits),
    st.sampled_from(['"\\ud800"', '"\\udfff\\ud800"', "NaN", "-Infinity", "1e999", '{"a":1,"a":2}', '"\\u0000"']),
)


@st.composite
def envelopes(draw: st.DrawFn) -> bytes:
    """A Square-shaped event with something hostile somewhere in it (so the body gets past the parser)."""
    event: dict[str, Any] = example("customer.updated.json")
    event["type"] = draw(st.sampled_from([*ROUTES, "unknown.event", ""]))
    event["event_id"] = "fuzz-" + draw(st.text(string.ascii_letters + string.digits, min_size=1, max_size=20))
    place = draw(st.sampled_from(["note", "id", "version", "data.id", "data.object", "merchant_id", "extra"]))
    customer = event["data"]["object"]["customer"]
    marker = "@@FUZZ@@"
    target = {"note": (customer, "note"), "id": (customer, "id"), "version": (customer, "version")}.get(place)
    if target is None:
        target = {"data.id": (event["data"], "id"), "data.object": (event["data"], "object")}.get(place, (event, place))
    target[0][target[1]] = marker
    text = json.dumps(event, ensure_ascii=draw(st.booleans()))
    fragment = draw(st.one_of(RAW_FRAGMENTS, json_values.map(json.dumps), st.sampled_from(['"plain"', "7", "null"])))
    return text.replace(f'"{marker}"', fragment).encode("utf-8", "surrogatepass")


bodies = st.one_of(
    envelopes(),
    envelopes(),
    st.binary(max_size=2000),
    json_values.map(lambda value: json.dumps(value).encode("utf-8", "surrogatepass")),
    RAW_FRAGMENTS.map(str.encode),
    envelopes(),
)
SIGNATURES = st.sampled_from(
    ["valid", "absent", "empty", "wrong", "other_body", "valid_then_wrong", "wrong_then_valid"]
)
CONTENT_TYPES = st.sampled_from(
    ["application/json", "text/plain", "application/x-www-form-urlencoded", None, b"\xe9/\xe9; charset=\xff"]
)
ENCODINGS = st.sampled_from([None, None, "gzip", "deflate", "br", "identity", "x-unknown"])


def signature_headers(stack: Stack, body: bytes, mode: str) -> list[tuple[str, str | bytes]]:
    def signed(content: bytes) -> str:
        key, url = stack.env["SQUARE_WEBHOOK_SIGNATURE_KEY"], stack.env["SQUARE_WEBHOOK_URL"]
        return sign(content, signature_key=key, notification_url=url)

    return {
        "valid": [(SIGNATURE_HEADER, signed(body))],
        "absent": [],
        "empty": [(SIGNATURE_HEADER, "")],
        "wrong": [(SIGNATURE_HEADER, "bm90IGEgc2lnbmF0dXJl")],
        "other_body": [(SIGNATURE_HEADER, signed(body + b" "))],
        "valid_then_wrong": [(SIGNATURE_HEADER, signed(body)), (SIGNATURE_HEADER, "x")],
        "wrong_then_valid": [(SIGNATURE_HEADER, "x"), (SIGNATURE_HEADER, signed(body))],
    }[mode]


def assert_clear_answer(response: httpx.Response) -> Any:
    """2xx with a JSON document, or 4xx with a JSON error naming what is wrong; never 5xx, never no body."""
    assert 200 <= response.status_code < 300 or 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), (response.headers, response.text[:300])
    document = response.json()
    if response.status_code >= 400:
        assert document["error"]["code"] and document["error"]["message"], document
    return document


# ---- the webhook ----


def test_the_webhook_answers_every_request_clearly_and_queues_only_signed_events(
    fuzz_stack: Stack, host: httpx.Client
) -> None:
    queued_commands(fuzz_stack)  # start from an empty queue
    accepted: Counter[str] = Counter()

    @FUZZ
    @given(body=bodies, mode=SIGNATURES, content_type=CONTENT_TYPES, encoding=ENCODINGS)
    def attack(body: bytes, mode: str, content_type: str | bytes | None, encoding: str | None) -> None:
        headers = signature_headers(fuzz_stack, body, mode)
        if content_type:
            headers.append(("Content-Type", content_type))
        if encoding:
            headers.append(("Content-Encoding", encoding))
        response = host.post("/api/square/webhooks", content=body, headers=headers)
        document = assert_clear_answer(response)
        assert "status" in document or "error" in document
        if mode in ("absent", "empty", "wrong", "other_body"):
            assert response.status_code == 401
        if document.get("status") == "queued":
            accepted[document["event_id"]] += 1

    attack()
    queued = Counter(command.event_id for command in queued_commands(fuzz_stack))
    assert queued == accepted  # every "queued" answer was queued, and nothing else was
    assert accepted, "no attack got through to the queue: the generator no longer reaches the deep paths"


@pytest.mark.parametrize(("extra_bytes", "status"), [(-1, 200), (0, 200), (1, 413)])
def test_bodies_around_the_size_limit(fuzz_stack: Stack, host: httpx.Client, extra_bytes: int, status: int) -> None:
    event = example("customer.updated.json")
    event["event_id"] = f"fuzz-size-{extra_bytes}"
    event["data"]["object"]["customer"]["note"] = ""
    room = MAX_BODY + extra_bytes - len(json.dumps(event).encode())
    event["data"]["object"]["customer"]["note"] = "n" * room
    body = json.dumps(event).encode()
    assert len(body) == MAX_BODY + extra_bytes
    response = host.post("/api/square/webhooks", content=body, headers=signature_headers(fuzz_stack, body, "valid"))
    assert response.status_code == status and assert_clear_answer(response)
    commands = queued_commands(fuzz_stack)
    assert [c.fetch for c in commands] == ([True] if status == 200 else [])  # thinned: the worker fetches it


def test_events_around_the_queue_limit_are_queued_whole_or_thinned(fuzz_stack: Stack, host: httpx.Client) -> None:
    """Azurite takes what Tillbridge decides fits (64 KiB of Base64 text); one byte more is thinned, not lost."""
    queued_commands(fuzz_stack)
    results = {}
    for note_length in range(44_000, 50_000, 250):
        event = example("customer.updated.json")
        event["event_id"] = f"fuzz-queue-{note_length}"
        event["data"]["object"]["customer"]["note"] = "q" * note_length
        body = json.dumps(event).encode()
        response = host.post("/api/square/webhooks", content=body, headers=signature_headers(fuzz_stack, body, "valid"))
        assert response.status_code == 200, response.text
        results[event["event_id"]] = note_length
    commands = queued_commands(fuzz_stack)
    assert {c.event_id for c in commands} == set(results)
    whole = sorted(results[c.event_id] for c in commands if not c.fetch)
    thinned = sorted(results[c.event_id] for c in commands if c.fetch)
    assert whole and thinned and max(whole) < min(thinned)  # one threshold, below Azurite's own limit


def test_an_event_too_large_for_the_queue_even_thinned_is_a_413(fuzz_stack: Stack, host: httpx.Client) -> None:
    event = {**example("customer.updated.json"), "merchant_id": "M" * 60_000, "event_id": "fuzz-too-large"}
    body = json.dumps(event).encode()
    response = host.post("/api/square/webhooks", content=body, headers=signature_headers(fuzz_stack, body, "valid"))
    assert response.status_code == 413 and assert_clear_answer(response)["error"]["code"] == "event_too_large"
    assert queued_commands(fuzz_stack) == []


# ---- the admin API ----

HOSTILE_IDS = ["RT O'BAD ID", "../customers/X", "RTCOL/1", "RTCOL%2F1", "X/retry", "ends/", "a\x00b", "é☃\U0001f600"]


def store(stack: Stack) -> Any:
    from shared.adapters.table_state import table_state_store

    return table_state_store(stack.env["AzureWebJobsStorage"], "", "", "tillbridge")


def seed_failures(stack: Stack, flow: str, record_ids: list[str]) -> None:
    import asyncio

    from shared.core.ports import FailureRecord

    state = store(stack)
    for record_id in record_ids:
        failure = FailureRecord(
            flow,
            record_id,
            "invalid_key",
            "seeded",
            f"evt-{len(record_id)}",
            "customer.updated" if flow != "queue" else "",
            first_seen="2026-11-22T10:00:00+00:00",
            last_seen="2026-11-22T10:00:00+00:00",
        )
        asyncio.run(state.record_failure(failure))


def admin(stack: Stack) -> httpx.Client:
    headers = {"x-functions-key": stack.env["LOCAL_FUNCTION_KEY"]}
    return httpx.Client(base_url=f"{stack.urls['host']}/api/ops/", headers=headers, timeout=60)


def test_every_listed_failure_is_reachable_through_the_host(fuzz_stack: Stack) -> None:
    seed_failures(fuzz_stack, "customers", HOSTILE_IDS)
    seed_failures(fuzz_stack, "queue", ["malformed-424242"])
    with admin(fuzz_stack) as ops:
        listed = ops.get("failures", params={"status": "any", "page_size": "500"}).json()["items"]
        assert {(f["flow"], f["record_id"]) for f in listed} >= {("customers", i) for i in HOSTILE_IDS}
        for failure in listed:
            path = f"failures/{quote(failure['flow'], safe='')}/{quote(failure['record_id'], safe='')}"
            opened = ops.get(path)
            assert opened.status_code == 200 and opened.json()["record_id"] == failure["record_id"], path
            assert ops.get(f"records/{path.removeprefix('failures/')}").status_code == 200
            retried = ops.post(f"{path}/retry", json={})
            assert retried.status_code == (409 if failure["flow"] == "queue" else 200), retried.text
            resolved = ops.post(f"{path}/resolve", json={"status": "resolved", "note": "fuzz"})
            assert resolved.status_code == 200 and ops.get(path).json()["status"] == "resolved"
    queued_commands(fuzz_stack)  # the retries' fresh fetches


ADMIN_PATHS = st.sampled_from(
    [
        "health",
        "failures",
        "failures/retry",
        "failures/{f}/{r}",
        "failures/{f}/{r}/retry",
        "failures/{f}/{r}/resolve",
        "records/{f}/{r}",
        "replay",
        "flows",
        "flows/{f}/pause",
        "flows/{f}/resume",
        "openapi.json",
        "{r}",
        "",
    ]
)
segments = st.one_of(
    st.sampled_from(["customers", "queue", "sales", "nope", *HOSTILE_IDS]),
    st.text(alphabet=st.characters(exclude_categories=("Cs",)), min_size=1, max_size=40),
)
query_values = st.one_of(
    st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=30),
    st.sampled_from(["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "eyJvIjoxZTk5OX0=", "-1", "9" * 2400]),
)
admin_bodies = st.one_of(
    st.none(),
    st.binary(max_size=500),
    json_values.map(lambda value: json.dumps(value).encode("utf-8", "surrogatepass")),
    st.dictionaries(
        st.sampled_from(["from", "to", "flow", "status", "note", "reason"]), json_values | query_values, max_size=4
    ).map(lambda value: json.dumps(value).encode("utf-8", "surrogatepass")),
    RAW_FRAGMENTS.map(str.encode),
)


def test_a_request_line_over_the_servers_limit_is_refused_before_any_function(fuzz_stack: Stack) -> None:
    """Like the Functions host's own server (Kestrel: 414 over its request-line limit), the local host's HTTP
    server refuses a request line over 8 KiB itself, with a 4xx — never a 5xx, and no function runs. The fuzz
    above keeps its URLs under that limit (three query values of 2,400 characters at most)."""
    with admin(fuzz_stack) as ops:
        response = ops.get("health", params={"continuation": "9" * 9000})
    assert 400 <= response.status_code < 500


def test_the_admin_api_answers_every_request_clearly(fuzz_stack: Stack) -> None:
    seed_failures(fuzz_stack, "customers", HOSTILE_IDS)
    with admin(fuzz_stack) as ops:

        @FUZZ
        @given(
            template=ADMIN_PATHS,
            flow=segments,
            record_id=segments,
            raw=st.booleans(),
            method=st.sampled_from(["GET", "POST", "GET", "POST", "PUT", "DELETE"]),
            query=st.dictionaries(
                st.sampled_from(["continuation", "page_size", "from", "to", "status", "flow", "reason"]),
                query_values,
                max_size=3,
            ),
            body=admin_bodies,
            headers=st.sampled_from(
                [{}, {"Content-Encoding": "gzip"}, {"Content-Encoding": "deflate"}, {"Content-Type": "text/plain"}]
            ),
        )
        def attack(
            template: str,
            flow: str,
            record_id: str,
            raw: bool,
            method: str,
            query: dict[str, str],
            body: bytes | None,
            headers: dict[str, str],
        ) -> None:
            encode = (
                (lambda part: part)
                if raw and all(c in string.ascii_letters + string.digits + "-_." for c in flow + record_id)
                else (lambda part: quote(part, safe=""))
            )
            path = template.format(f=encode(flow), r=encode(record_id))
            response = ops.request(method, path, params=query, content=body, headers=headers)
            assert_clear_answer(response)

        attack()
    queued_commands(fuzz_stack)


def test_the_host_status_needs_the_key(fuzz_stack: Stack) -> None:
    status_url = f"{fuzz_stack.urls['host']}/admin/host/status"
    assert httpx.get(status_url).status_code == 401
    assert httpx.get(status_url, headers={"x-functions-key": "wrong"}).status_code == 401
    healthy = httpx.get(status_url, headers={"x-functions-key": fuzz_stack.env["LOCAL_FUNCTION_KEY"]})
    assert healthy.status_code == 200 and healthy.json()["state"] == "Running"  # and still up after the attacks


# ---- state keys on Azurite: no id touches another record ----


def test_ids_that_collided_get_their_own_rows_on_azurite(fuzz_stack: Stack) -> None:
    import asyncio

    from shared.core.ports import LedgerRow

    state = store(fuzz_stack)
    ids = ["RTCOL/1", "RTCOL%2F1", "RTCOL~2F1", "RT O'BAD ID", "x" * 600 + "1", "x" * 600 + "2", "..", "a\x7fb"]

    async def scenario() -> None:
        for index, square_id in enumerate(ids):
            await state.save_ledger(LedgerRow("customer", square_id, version=index, dataverse_id=f"dv-{index}"))
        for index, square_id in enumerate(ids):
            row = await state.get_ledger("customer", square_id)
            assert row is not None and row.version == index and row.dataverse_id == f"dv-{index}", square_id
        listed = {row.square_id: row.version for row in await state.list_ledger("customer")}
        assert {i: listed.get(i) for i in ids} == {i: n for n, i in enumerate(ids)}
        await state.set_cursor("reconcile:customers", "a")
        await state.set_cursor("reconcile%3Acustomers", "b")
        assert await state.get_cursor("reconcile:customers") == "a"

    asyncio.run(scenario())


def test_the_console_opens_and_resolves_failures_whatever_their_id(fuzz_stack: Stack) -> None:
    """Real headless Chromium (as test_console_ui.py): the console percent-encodes ids and lists every flow."""
    import shutil

    from playwright.sync_api import expect, sync_playwright

    from tests.integration.test_console_ui import CHROMIUM_FLAGS

    hostile = ["../customers/CONSOLE1", "RT O'BAD ID?#1", "CONSOLE%2F2"]
    seed_failures(fuzz_stack, "customers", hostile)
    seed_failures(fuzz_stack, "queue", ["malformed-777"])
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is needed (.ci/run installs it: apt-get install chromium)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS, headless=True)
        page = browser.new_page()
        page.goto(f"{fuzz_stack.urls['host']}/api/console/")
        page.fill("#key", fuzz_stack.env["LOCAL_FUNCTION_KEY"])
        page.keyboard.press("Enter")
        expect(page.locator("#filters select[name=flow] option[value=queue]")).to_have_count(1)
        for flow, record_id in [*(("customers", i) for i in hostile), ("queue", "malformed-777")]:
            page.select_option("#filters select[name=flow]", flow)
            page.select_option("#filters select[name=status]", "open")
            page.locator("#filters button[type=submit]").click()
            page.get_by_role("button", name=f"Open {flow} record {record_id}", exact=True).click()
            expect(page.locator("#record-title")).to_have_text(f"Record {flow}/{record_id}")
            expect(page.locator("#record-facts")).to_contain_text("invalid_key")
            page.get_by_role("button", name="Mark resolved", exact=True).click()
            expect(page.locator("#message")).to_have_text("Marked resolved")
        browser.close()
    with admin(fuzz_stack) as ops:
        states = {
            (f["flow"], f["record_id"]): f["status"]
            for f in ops.get("failures", params={"status": "any", "page_size": "500"}).json()["items"]
        }
    assert (
        all(states[("customers", i)] == "resolved" for i in hostile)
        and states[("queue", "malformed-777")] == "resolved"
    )
