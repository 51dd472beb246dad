"""One cursor loop for every paged API: yields each page, stops at the last, refuses a repeated cursor
(a service that hands back a cursor it already gave would otherwise loop forever)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from shared.core.errors import TransientError

T = TypeVar("T")
PageFetch = Callable[[str | None], Awaitable[tuple[list[T], str | None]]]


async def paginate(fetch: PageFetch[T], what: str) -> AsyncIterator[list[T]]:
    """Pages of `fetch(cursor)` from the first (cursor None) to the one that returns no cursor."""
    cursor: str | None = None
    seen: set[str] = set()
    while True:
        page, cursor = await fetch(cursor)
        yield page
        if not cursor:
            return
        if cursor in seen:
            raise TransientError(f"{what}: the service repeated a page cursor; stopped without advancing")
        seen.add(cursor)
