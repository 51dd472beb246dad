"""A dedicated thread pool for the blocking Azure SDK calls (tables, storage queues).

asyncio's default executor has min(32, cores + 4) threads (6 on a 2-core worker) and is shared with
everything else; table and queue round trips are short but many, so they get their own pool.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
_executor: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        text = os.environ.get("TILLBRIDGE_IO_THREADS", "32")
        workers = int(text) if text.isdigit() and 0 < int(text) <= 256 else 32
        _executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tillbridge-io")
    return _executor


async def run_blocking(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool(), functools.partial(function, *args, **kwargs))
