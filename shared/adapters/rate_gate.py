"""One rate gate per Dataverse application user: this instance's share of the user's service-protection
budget (requests, execution time, concurrency per 5 minutes) and a shared pause.

The budget is per application user across every instance of the app (reference/dataverse.md §5), so each
instance takes an explicit share: the budget divided by the most instances that can run at once
(`DATAVERSE_MAX_INSTANCES`, the plan's maximum instance count), less some headroom for other callers —
no shared counter on the hot path (docs/decisions/0012f-dataverse-budget-across-instances.md). Every sender
in the process waits on the same gate; a 429's Retry-After pauses all of them, not just the one told.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

_GATES: dict[str, RateGate] = {}


@dataclass(frozen=True)
class Budget:
    """One application user's service-protection limits, and how many instances share them."""

    requests_per_window: int = 6000
    execution_seconds_per_window: float = 1200.0
    window_seconds: float = 300.0
    max_concurrency: int = 52
    instances: int = 1
    headroom: float = 0.9  # the share left for this app; the rest for people and other integrations

    @property
    def requests_per_second(self) -> float:
        return self.requests_per_window * self.headroom / self.window_seconds / self.instances

    @property
    def execution_seconds_per_second(self) -> float:
        return self.execution_seconds_per_window * self.headroom / self.window_seconds / self.instances

    @property
    def concurrency(self) -> int:
        return max(1, int(self.max_concurrency * self.headroom) // self.instances)


class _Bucket:
    """Tokens that refill at `rate` a second up to `capacity`; taking may overdraw (the taker then waits)."""

    def __init__(self, rate: float, capacity: float) -> None:
        self.rate, self.capacity = rate, max(capacity, 1e-9)
        self.tokens, self._at = self.capacity, time.monotonic()

    def refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self._at) * self.rate)
        self._at = now

    def take(self, amount: float) -> None:
        self.refill()
        self.tokens -= amount

    def wait_seconds(self) -> float:
        self.refill()
        return -self.tokens / self.rate if self.tokens < 0 else 0.0


class RateGate:
    """Concurrency (x-ms-dop-hint), and two buckets that mirror the 5-minute sliding window: one of requests,
    one of execution seconds, each holding this instance's share of the window and refilling at the
    sustained rate — so a quiet instance may burst up to its share and a busy one settles at the rate."""

    def __init__(self, max_concurrency: int, requests_per_second: float = 0.0, budget: Budget | None = None) -> None:
        self.budget = budget
        share = budget.concurrency if budget is not None else max_concurrency
        self.max_concurrency = max(1, min(max_concurrency, share))
        self.limit = self.max_concurrency
        self.instances = budget.instances if budget is not None else 1
        self._in_flight = 0
        self._condition: asyncio.Condition | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._paused_until = 0.0
        self._requests: _Bucket | None = None
        self._time: _Bucket | None = None
        if budget is not None:
            window = budget.window_seconds
            self._requests = _Bucket(budget.requests_per_second, budget.requests_per_second * window)
            self._time = _Bucket(budget.execution_seconds_per_second, budget.execution_seconds_per_second * window)
        elif requests_per_second > 0:
            self._requests = _Bucket(requests_per_second, 1.0)  # strict spacing, no burst

    def _cond(self) -> asyncio.Condition:
        loop = asyncio.get_running_loop()
        if self._condition is None or self._loop is not loop:  # asyncio primitives belong to one loop
            self._condition, self._loop, self._in_flight = asyncio.Condition(), loop, 0
        return self._condition

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def pause(self, seconds: float) -> None:
        """Stop every sender for `seconds` (a 429's Retry-After)."""
        self._paused_until = max(self._paused_until, time.monotonic() + max(0.0, seconds))

    def paused_for(self) -> float:
        return max(0.0, self._paused_until - time.monotonic())

    def hint(self, degree_of_parallelism: int) -> None:
        """Honour x-ms-dop-hint, divided across the instances that share the user (2 instances, hint 50 →
        25 each: reference/dataverse.md §5): never more in flight than this instance's part of it."""
        if degree_of_parallelism > 0:
            share = max(1, degree_of_parallelism // self.instances)
            self.limit = max(1, min(self.max_concurrency, share))

    def charge(self, seconds: float) -> None:
        """A request took `seconds` (the execution-time budget counts the server's time; the time seen by
        the client is its upper bound)."""
        if self._time is not None:
            self._time.take(seconds)

    async def _wait_budget(self) -> None:
        while (wait := self.paused_for()) > 0:
            await asyncio.sleep(wait)
        if self._time is not None:
            while (wait := self._time.wait_seconds()) > 0:
                await asyncio.sleep(wait)
        if self._requests is not None:
            self._requests.take(1.0)
            if (wait := self._requests.wait_seconds()) > 0:
                await asyncio.sleep(wait)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        condition = self._cond()
        async with condition:
            await condition.wait_for(lambda: self._in_flight < self.limit)
            self._in_flight += 1
        started = 0.0
        try:
            await self._wait_budget()
            started = time.monotonic()
            yield
        finally:
            if started:
                self.charge(time.monotonic() - started)
            async with condition:
                self._in_flight -= 1
                condition.notify()


def gate_for(
    user_key: str, max_concurrency: int, requests_per_second: float = 0.0, budget: Budget | None = None
) -> RateGate:
    """The process-wide gate for one application user (created on first use)."""
    gate = _GATES.get(user_key)
    if gate is None:
        gate = _GATES[user_key] = RateGate(max_concurrency, requests_per_second, budget)
    return gate
