"""Service protection on the emulator, per application user (bearer token), against "Service protection API
limits" (api-limits.md; reference/dataverse.md §5): requests and execution time over a sliding window,
concurrency at once, each with Retry-After and its documented code; the x-ms-ratelimit-* debug headers."""

from __future__ import annotations

import threading
import time

import httpx

from tests.contract.conftest import DATAVERSE_TOKEN

API = "/api/data/v9.2/"
SECOND_TOKEN = "second-application-user"


def _code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


def test_execution_time_limit_answers_429_with_retry_after(dataverse: httpx.Client) -> None:
    """Combined execution time over the window → 429 0x80072321 with Retry-After (until enough of the spent
    time leaves the window); limits are evaluated on what already ran, so the last admitted request may exceed."""
    limits = {"execution_seconds_per_window": 0.25, "window_seconds": 60, "request_cost_ms": 100, "sleep_cost": False}
    dataverse.post("/_control/limits", json=limits)
    statuses = [dataverse.get(API + "WhoAmI").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    throttled = dataverse.get(API + "WhoAmI")
    assert _code(throttled) == "0x80072321"
    assert 50 <= int(throttled.headers["Retry-After"]) <= 60
    assert "1,200,000" not in throttled.json()["error"]["message"]


def test_request_limit_headers_count_down(dataverse: httpx.Client) -> None:
    """x-ms-ratelimit-burst-remaining-xrm-requests counts the requests left; -time-remaining the execution seconds
    left, formatted as a live environment does (`1,199.46`)."""
    dataverse.post("/_control/limits", json={"request_cost_ms": 500, "sleep_cost": False})
    first = dataverse.get(API + "WhoAmI")
    second = dataverse.get(API + "WhoAmI")
    assert first.headers["x-ms-ratelimit-burst-remaining-xrm-requests"] == "5999"
    assert second.headers["x-ms-ratelimit-burst-remaining-xrm-requests"] == "5998"
    assert second.headers["x-ms-ratelimit-time-remaining-xrm-requests"] == "1,199.00"


def test_each_application_user_has_its_own_budget(dataverse: httpx.Client) -> None:
    """Limits are per user: a second application user is not throttled by the first one's use (api-limits.md
    "evaluated per user"; issue 10: scale out across application users)."""
    dataverse.post("/_control/users", json={"token": SECOND_TOKEN, "name": "second"})
    dataverse.post("/_control/limits", json={"requests_per_window": 2, "window_seconds": 60})
    other = {"Authorization": f"Bearer {SECOND_TOKEN}", "OData-Version": "4.0", "Accept": "application/json"}
    assert [dataverse.get(API + "WhoAmI").status_code for _ in range(3)] == [200, 200, 429]
    second = httpx.get(f"{dataverse.base_url}{API}WhoAmI", headers=other)
    assert second.status_code == 200
    assert second.json()["UserId"] != dataverse.get("/_control/users").json()[0]["systemuserid"]
    stats = dataverse.get("/_control/stats").json()
    assert (stats["user app1 throttled"], stats["user second throttled"]) == (1, 0)
    assert httpx.get(f"{dataverse.base_url}{API}WhoAmI", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_cost_is_spent_on_the_wall_clock_when_asked(dataverse: httpx.Client) -> None:
    """With sleep_cost on, a request takes its charged execution time (benchmarks meet the real ceiling); off,
    the time is only booked against the budget."""
    dataverse.post("/_control/limits", json={"request_cost_ms": 300, "sleep_cost": True})
    started = time.monotonic()
    dataverse.get(API + "WhoAmI")
    assert time.monotonic() - started >= 0.3
    dataverse.post("/_control/limits", json={"request_cost_ms": 300, "sleep_cost": False})
    started = time.monotonic()
    dataverse.get(API + "WhoAmI")
    assert time.monotonic() - started < 0.3


def test_concurrency_limit_is_per_user_and_immediate(dataverse: httpx.Client) -> None:
    """The concurrency limit triggers at once: 429 0x80072326 with Retry-After, for that user only."""
    dataverse.post("/_control/users", json={"token": SECOND_TOKEN})
    dataverse.post("/_control/limits", json={"max_concurrency": 1, "latency_ms": 400})
    results: list[tuple[str, int]] = []

    def call(token: str) -> None:
        response = httpx.get(f"{dataverse.base_url}{API}WhoAmI", headers={"Authorization": f"Bearer {token}"})
        results.append((token, response.status_code))

    threads = [threading.Thread(target=call, args=(token,)) for token in (DATAVERSE_TOKEN, DATAVERSE_TOKEN)]
    threads.append(threading.Thread(target=call, args=(SECOND_TOKEN,)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(status for token, status in results if token == DATAVERSE_TOKEN) == [200, 429]
    assert [status for token, status in results if token == SECOND_TOKEN] == [200]


def test_unknown_limit_settings_are_refused(dataverse: httpx.Client) -> None:
    assert dataverse.post("/_control/limits", json={"requests_per_windw": 1}).status_code == 400
    realistic = dataverse.post("/_control/limits", json={"profile": "realistic"}).json()
    assert realistic["request_cost_ms"] > 0 and realistic["record_cost_ms"] > 0
    assert dataverse.post("/_control/limits", json={"profile": "default"}).json()["request_cost_ms"] == 0
