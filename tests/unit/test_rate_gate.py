from __future__ import annotations

import asyncio
import time

from shared.adapters.rate_gate import RateGate, gate_for


def test_concurrency_never_exceeds_the_limit() -> None:
    gate = RateGate(3)
    peak = {"now": 0, "max": 0}

    async def one() -> None:
        async with gate.slot():
            peak["now"] += 1
            peak["max"] = max(peak["max"], peak["now"])
            await asyncio.sleep(0.01)
            peak["now"] -= 1

    async def many() -> None:
        await asyncio.gather(*(one() for _ in range(20)))

    asyncio.run(many())
    assert peak["max"] == 3


def test_pause_holds_every_sender() -> None:
    gate = RateGate(5)

    async def scenario() -> float:
        gate.pause(0.3)
        started = time.monotonic()
        async with gate.slot():
            return time.monotonic() - started

    assert asyncio.run(scenario()) >= 0.28


def test_pace_spaces_requests() -> None:
    gate = RateGate(10, requests_per_second=20)

    async def scenario() -> float:
        started = time.monotonic()
        for _ in range(5):
            async with gate.slot():
                pass
        return time.monotonic() - started

    assert asyncio.run(scenario()) >= 0.19


def test_one_gate_per_application_user() -> None:
    assert gate_for("user-a", 4) is gate_for("user-a", 8)
    assert gate_for("user-a", 4) is not gate_for("user-b", 4)
