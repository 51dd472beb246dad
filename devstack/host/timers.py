"""Timer triggers on six-field NCRONTAB schedules (seconds first), as the Functions host runs them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from azure.functions.timer import TimerRequest
from croniter import croniter

log = logging.getLogger("devstack.host.timers")
Invoke = Callable[[Any, dict[str, Any]], Awaitable[Any]]


def next_fire(schedule: str, after: datetime) -> datetime:
    fields = schedule.split()
    if len(fields) != 6:
        raise ValueError(f"NCRONTAB needs six fields (seconds first), got {schedule!r}")
    result: datetime = croniter(schedule, after, second_at_beginning=True).get_next(datetime)
    return result


class TimerRunner:
    def __init__(self, function: Any, schedule: str, invoke: Invoke, run_on_startup: bool = False) -> None:
        self.function = function
        self.schedule = schedule
        self.invoke = invoke
        self.arg_name = function.get_trigger().name
        self.run_on_startup = run_on_startup
        self.stopping = False
        self.runs = 0

    async def run(self) -> None:
        if self.run_on_startup:
            await self._fire(past_due=False)
        while not self.stopping:
            now = datetime.now(UTC)
            due = next_fire(self.schedule, now)
            await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()))
            if not self.stopping:
                late = (datetime.now(UTC) - due).total_seconds() > 60
                await self._fire(past_due=late)

    async def _fire(self, past_due: bool) -> None:
        self.runs += 1
        try:
            await self.invoke(self.function, {self.arg_name: TimerRequest(past_due=past_due)})
        except Exception:
            log.exception("timer function %s failed", self.function.get_function_name())
