"""One writer per object inside a process; objects side by side; no lock left behind."""

from __future__ import annotations

import asyncio

from shared.core.keyed_lock import KeyedLocks


def test_one_key_goes_one_at_a_time_and_other_keys_go_side_by_side() -> None:
    locks: KeyedLocks[str] = KeyedLocks()
    inside: dict[str, int] = {}
    most: dict[str, int] = {}

    async def work(key: str) -> None:
        async with locks.hold(key):
            inside[key] = inside.get(key, 0) + 1
            most[key] = max(most.get(key, 0), inside[key])
            most["all"] = max(most.get("all", 0), sum(inside.values()))
            await asyncio.sleep(0.01)
            inside[key] -= 1

    async def main() -> None:
        await asyncio.gather(*(work(key) for key in ["a", "a", "a", "b", "b", "c"]))

    asyncio.run(main())
    assert most["a"] == most["b"] == 1
    assert most["all"] == 3  # a, b and c at once
    assert len(locks) == 0


def test_holding_many_keys_in_opposite_orders_does_not_deadlock() -> None:
    locks: KeyedLocks[str] = KeyedLocks()
    done: list[str] = []

    async def hold(keys: list[str], name: str) -> None:
        async with locks.hold_all(keys):
            await asyncio.sleep(0.01)
            done.append(name)

    async def main() -> None:
        await asyncio.wait_for(
            asyncio.gather(hold(["x", "y", "z"], "first"), hold(["z", "y", "x"], "second"), hold(["y"], "single")),
            timeout=2,
        )

    asyncio.run(main())
    assert sorted(done) == ["first", "second", "single"]
    assert len(locks) == 0
