"""Coalesce concurrent look-ups into one batch request (the DataLoader pattern).

Messages for several sales are processed at once; each needs its order. Loads that arrive within a
short window go to Square as one BatchRetrieveOrders call (≤ 100 ids), so Square requests per sale
fall below one when the queue holds several.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Coalescer(Generic[K, V]):
    def __init__(
        self, batch: Callable[[list[K]], Awaitable[dict[K, V]]], *, window_seconds: float = 0.05, max_batch: int = 100
    ) -> None:
        self._batch, self._window, self._max = batch, window_seconds, max_batch
        self._pending: dict[K, list[asyncio.Future[V | None]]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self.batches_sent = 0

    async def load(self, key: K) -> V | None:
        """The value for `key`, or None when the batch answer does not contain it."""
        future: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(key, []).append(future)
        if len(self._pending) >= self._max:
            self._flush_now()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._window, self._flush_now)
        return await future

    def _flush_now(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiting, self._pending = self._pending, {}
        if waiting:
            self.batches_sent += 1
            asyncio.get_running_loop().create_task(self._resolve(waiting))

    async def _resolve(self, waiting: dict[K, list[asyncio.Future[V | None]]]) -> None:
        try:
            found = await self._batch(list(waiting))
        except Exception as error:  # every waiter gets the batch's error
            for futures in waiting.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(error)
            return
        for key, futures in waiting.items():
            for future in futures:
                if not future.done():
                    future.set_result(found.get(key))
