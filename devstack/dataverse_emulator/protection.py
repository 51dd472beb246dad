"""Service protection and server cost, per user (bearer token: identity.py), as "Service protection API limits"
describes them (reference/dataverse.md §5): over a sliding window of 300 s, 6,000 requests and 1,200 s of
combined execution time; at most 52 concurrent requests. The concurrency limit answers at once; the request and
time limits are evaluated on what already ran, so a burst can briefly exceed them (the doc says as much). A
$batch counts as one request ("A batch can contain up to 1000 operations and will avoid the number of requests
limit. However, you will need to be prepared for the execution time limit."), its operations' costs add up.

Cost model: each request is charged `request_cost_ms` of server execution time plus `record_cost_ms` for every
record it writes or every operation in a $batch — off by default (0), so tests and the demo are not slowed.
`Limits.realistic()` uses published figures: an UpsertMultiple of 100 records takes about a second
(reference/dataverse.md §12: ~200 records/s per application user at a parallelism of 5), a single write ~50 ms.
With `sleep_cost` on, the charged time is also spent on the wall clock, so throughput meets the same ceiling a
real environment has; off, it is only booked against the budget (big runs).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from devstack.dataverse_emulator.store import DataverseFault


@dataclass
class Limits:
    """Configurable through POST /_control/limits; benchmarks use real figures, tests small ones."""

    requests_per_window: int = 6000
    window_seconds: float = 300.0
    execution_seconds_per_window: float = 1200.0
    max_concurrency: int = 52
    retry_after_seconds: float = 5.0
    latency_ms: float = 0.0  # network-ish latency added to every request (not charged as execution time)
    jitter_ms: float = 0.0
    dop_hint: int = 50
    request_cost_ms: float = 0.0  # server execution time charged per request
    record_cost_ms: float = 0.0  # … plus this per record in a bulk message, per operation in a $batch
    sleep_cost: bool = True  # spend the charged time on the wall clock too

    @classmethod
    def realistic(cls) -> Limits:
        return cls(request_cost_ms=40.0, record_cost_ms=10.0)


@dataclass
class Budget:
    """One user's window: (finished at, execution seconds) per request, and what is in flight."""

    name: str
    window: deque[tuple[float, float]] = field(default_factory=deque)
    in_flight: int = 0
    throttled: int = 0
    spent: float = 0.0  # execution seconds inside the window

    def expire(self, now: float, window_seconds: float) -> None:
        while self.window and self.window[0][0] <= now - window_seconds:
            self.spent -= self.window.popleft()[1]
        if not self.window:
            self.spent = 0.0

    def execution_seconds(self) -> float:
        return max(0.0, self.spent)

    def clear(self) -> None:
        self.window.clear()
        self.spent = 0.0


def cost_seconds(limits: Limits, records: int) -> float:
    return (limits.request_cost_ms + limits.record_cost_ms * records) / 1000


def admit(budget: Budget, limits: Limits, now: float) -> DataverseFault | None:
    """None when the request may run now, else the 429 Dataverse answers (with Retry-After)."""
    budget.expire(now, limits.window_seconds)
    fault = _refusal(budget, limits, now)
    if fault is not None:
        budget.throttled += 1
    return fault


def _refusal(budget: Budget, limits: Limits, now: float) -> DataverseFault | None:
    if budget.in_flight >= limits.max_concurrency:
        return _throttle(
            "0x80072326",
            f"Number of concurrent requests exceeded the limit of {limits.max_concurrency}.",
            limits.retry_after_seconds,
        )
    if len(budget.window) >= limits.requests_per_window:
        wait = budget.window[0][0] + limits.window_seconds - now
        return _throttle(
            "0x80072322",
            f"Number of requests exceeded the limit of {limits.requests_per_window} over time window of "
            f"{int(limits.window_seconds)} seconds.",
            max(limits.retry_after_seconds, wait),
        )
    spent = budget.execution_seconds()
    if spent >= limits.execution_seconds_per_window:
        wait, freed = 0.0, 0.0
        for finished, cost in budget.window:  # until enough of the oldest cost leaves the window
            freed += cost
            wait = finished + limits.window_seconds - now
            if spent - freed < limits.execution_seconds_per_window:
                break
        return _throttle(
            "0x80072321",
            f"Combined execution time of incoming requests exceeded limit of "
            f"{limits.execution_seconds_per_window * 1000:,.0f} milliseconds over time window of "
            f"{int(limits.window_seconds)} seconds. Decrease number of concurrent requests or reduce the duration "
            "of requests and try again later.",
            max(limits.retry_after_seconds, wait),
        )
    return None


def _throttle(code: str, message: str, wait: float) -> DataverseFault:
    return DataverseFault(429, code, message, {"Retry-After": str(max(1, round(wait)))})


def record(budget: Budget, cost: float) -> None:
    budget.window.append((time.monotonic(), cost))
    budget.spent += cost


def remaining_headers(budget: Budget, limits: Limits) -> dict[str, str]:
    """The debug headers, in the formats a live environment sends (`5999`, `1,199.46` seconds)."""
    requests_left = max(0, limits.requests_per_window - len(budget.window))
    seconds_left = max(0.0, limits.execution_seconds_per_window - budget.execution_seconds())
    return {
        "x-ms-ratelimit-burst-remaining-xrm-requests": str(requests_left),
        "x-ms-ratelimit-time-remaining-xrm-requests": f"{seconds_left:,.2f}",
    }
