from __future__ import annotations

import asyncio

from shared.core.coalesce import Coalescer
from shared.core.errors import TransientError


def test_concurrent_loads_become_one_batch_and_duplicates_share_it() -> None:
    calls: list[list[str]] = []

    async def batch(keys: list[str]) -> dict[str, str]:
        calls.append(keys)
        return {k: k.lower() for k in keys if k != "MISSING"}

    async def scenario() -> list[str | None]:
        loader = Coalescer(batch)
        return await asyncio.gather(*(loader.load(k) for k in ["A", "B", "A", "MISSING", "C"]))

    assert asyncio.run(scenario()) == ["a", "b", "a", None, "c"]
    assert calls == [["A", "B", "MISSING", "C"]]


def test_batches_are_capped() -> None:
    sizes: list[int] = []

    async def batch(keys: list[int]) -> dict[int, int]:
        sizes.append(len(keys))
        return {k: k for k in keys}

    async def scenario() -> None:
        loader = Coalescer(batch, max_batch=3)
        assert await asyncio.gather(*(loader.load(i) for i in range(7))) == list(range(7))

    asyncio.run(scenario())
    assert sizes == [3, 3, 1]


def test_a_failed_batch_fails_every_waiter() -> None:
    async def batch(keys: list[str]) -> dict[str, str]:
        raise TransientError("Square 503")

    async def scenario() -> None:
        loader = Coalescer(batch)
        results = await asyncio.gather(loader.load("A"), loader.load("B"), return_exceptions=True)
        assert all(isinstance(r, TransientError) for r in results)

    asyncio.run(scenario())


def test_sequential_loads_are_separate_batches() -> None:
    async def batch(keys: list[str]) -> dict[str, str]:
        return {k: k for k in keys}

    async def scenario() -> int:
        loader = Coalescer(batch, window_seconds=0.001)
        await loader.load("A")
        await loader.load("B")
        return loader.batches_sent

    assert asyncio.run(scenario()) == 2
