"""One rate gate per Dataverse application user: a concurrency limit, a request pace, and a shared pause.

Dataverse's service protection counts per user, so every sender in the process waits on the same gate;
a 429's Retry-After pauses all of them, not just the one that was told.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

_GATES: dict[str, RateGate] = {}


class RateGate:
    def __init__(self, max_concurrency: int, requests_per_second: float = 0.0) -> None:
        self.max_concurrency = max_concurrency
        self.limit = max_concurrency
        self._in_flight = 0
        self._condition: asyncio.Condition | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._paused_until = 0.0
        self._interval = 1.0 / requests_per_second if requests_per_second > 0 else 0.0
        self._next_slot = 0.0

    def _cond(self) -> asyncio.Condition:
        loop = asyncio.get_running_loop()
        if self._condition is None or self._loop is not loop:  # asyncio primitives belong to one loop
            self._condition, self._loop, self._in_flight = asyncio.Condition(), loop, 0
        return self._condition

    def pause(self, seconds: float) -> None:
        """Stop every sender for `seconds` (a 429's Retry-After)."""
        self._paused_until = max(self._paused_until, time.monotonic() + max(0.0, seconds))

    def paused_for(self) -> float:
        return max(0.0, self._paused_until - time.monotonic())

    def hint(self, degree_of_parallelism: int) -> None:
        """Honour x-ms-dop-hint: never more in flight than the server recommends."""
        if degree_of_parallelism > 0:
            self.limit = max(1, min(self.max_concurrency, degree_of_parallelism))

    async def _wait_pace(self) -> None:
        while (wait := self.paused_for()) > 0:
            await asyncio.sleep(wait)
        if self._interval:
            now = time.monotonic()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self._interval
            if slot > now:
                await asyncio.sleep(slot - now)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        condition = self._cond()
        async with condition:
            await condition.wait_for(lambda: self._in_flight < self.limit)
            self._in_flight += 1
        try:
            await self._wait_pace()
            yield
        finally:
            async with condition:
                self._in_flight -= 1
                condition.notify()


def gate_for(user_key: str, max_concurrency: int, requests_per_second: float = 0.0) -> RateGate:
    """The process-wide gate for one application user (created on first use)."""
    gate = _GATES.get(user_key)
    if gate is None:
        gate = _GATES[user_key] = RateGate(max_concurrency, requests_per_second)
    return gate
