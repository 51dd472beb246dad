"""One writer at a time per object inside a process.

Without Service Bus sessions (decision 0011f) two deliveries of one object can be processed side by side:
by two overlapping batches, or by a customer event and a CRM contact change of the same customer. The
version gate keeps every write idempotent and never lets an older version win the ledger, but two
writers of one object can still land their CRM writes in the other order than their ledger claims. Each
object's events in this process therefore go one after another; objects still go side by side.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class KeyedLocks(Generic[K]):
    """An asyncio lock per key, created on first use and dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[K, tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    @asynccontextmanager
    async def hold(self, key: K) -> AsyncIterator[None]:
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    @asynccontextmanager
    async def hold_all(self, keys: Iterable[K]) -> AsyncIterator[None]:
        """Every key's lock, taken in one stable order (sorted by `repr`) so two holders never deadlock."""
        async with AsyncExitStack() as stack:
            for key in sorted(set(keys), key=repr):
                await stack.enter_async_context(self.hold(key))
            yield
