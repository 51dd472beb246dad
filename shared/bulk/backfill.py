"""The backfill: stream Square's history oldest first, a chunk at a time, through the bulk path, storing
a resume point after each committed chunk (so memory stays flat and a killed run resumes with no gap).

The resume point is the creation time of the newest object of the last committed chunk — not Square's
page cursor, which expires within minutes. A resumed stream asks again from that time (inclusive): the
objects already written come back equal to the ledger and are skipped by the version gate (no duplicate);
everything after it is asked for (no gap). A stream that finished is marked done and skipped when the same
command resumes; when every stream of the command is done their marks are cleared, so the next run starts
over (cheaply: unchanged objects cost no Dataverse request)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from shared.bulk.context import BulkContext
from shared.bulk.counts import Counts
from shared.bulk.customers import backfill_customers
from shared.bulk.sales import backfill_orders, backfill_payments, backfill_refunds
from shared.bulk.stores import backfill_catalog_page, backfill_locations
from shared.core.errors import TerminalError, TransientError
from shared.core.paging import paginate

log = logging.getLogger("tillbridge.backfill")
CHUNK_ATTEMPTS = 8  # waits 2, 4, 8, 16, 32, 60, 60 s: rides out a storage or network blip of about three minutes
Page = tuple[list[dict[str, Any]], str | None]
DONE = "done"
WHAT = ("customers", "locations", "catalog", "sales", "all")
CATALOG_CURSOR = "catalog:version"  # the live catalog flow's cursor (shared/flows/catalog.py)


class SquareHistory(Protocol):
    async def search_customers_by_creation(
        self, created_from: str | None, updated_since: str | None, cursor: str | None = None
    ) -> Page: ...

    async def list_locations(self) -> list[dict[str, Any]]: ...

    async def search_orders(
        self, location_ids: list[str], time_field: str, start_at: str | None, cursor: str | None = None
    ) -> Page: ...

    async def list_payments(
        self, location_id: str, begin_time: str | None, updated_since: str | None, cursor: str | None = None
    ) -> Page: ...

    async def list_refunds(
        self, begin_time: str | None, updated_since: str | None, cursor: str | None = None
    ) -> Page: ...

    async def search_catalog_changed_since(
        self, begin_time: str | None, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None, str | None]: ...


Handler = Callable[[list[dict[str, Any]], BulkContext], Awaitable[Counts]]
Fetch = Callable[[str | None, str | None], Awaitable[Page]]  # (resume point, page cursor) → page
# after each chunk: the stream's kind, that chunk's counts, and how far the stream has come (the creation
# time of its newest object: streams run oldest first, so this moves from the first object to now)
Progress = Callable[[str, Counts, str | None], None]


@dataclass(frozen=True)
class Stream:
    name: str  # cursor name part, unique within a command (e.g. "orders:L1,L2")
    kind: str  # what the progress and summary call it
    fetch: Fetch
    handle: Handler


class Backfill:
    def __init__(
        self,
        bc: BulkContext,
        history: SquareHistory,
        *,
        chunk_size: int,
        progress: Progress | None = None,
        chunk_attempts: int = CHUNK_ATTEMPTS,
        retry_base_seconds: float = 2.0,
    ) -> None:
        self.chunk_attempts = max(1, chunk_attempts)
        self.retry_base_seconds = retry_base_seconds
        self.bc = bc
        self.history = history
        self.chunk_size = max(1, chunk_size)
        self.progress = progress or (lambda kind, counts, position: None)

    async def run(self, what: str, since: str | None) -> dict[str, Counts]:
        """Backfill `what` (customers, locations, catalog, sales or all) created/changed since `since`."""
        if what not in WHAT:
            raise ValueError(f"backfill what? one of {', '.join(WHAT)}")
        totals: dict[str, Counts] = {}
        streams: list[Stream] = []
        if what in ("locations", "sales", "all"):
            totals["locations"] = await self._locations()
        if what in ("catalog", "all"):
            totals["catalog"] = await self._catalog()
        if what in ("customers", "all"):
            streams.append(self._customer_stream(since))
        if what in ("sales", "all"):
            streams += await self._sales_streams(since)
        for stream in streams:
            totals.setdefault(stream.kind, Counts()).add(await self._run_stream(stream, what, since))
        if not self.bc.dry_run:
            for stream in streams:
                await self.bc.ctx.state.set_cursor(self._cursor(stream, what, since), "")
        return totals

    def _cursor(self, stream: Stream, what: str, since: str | None) -> str:
        return f"backfill:{what}:{since or 'all'}:{stream.name}"

    async def _run_stream(self, stream: Stream, what: str, since: str | None) -> Counts:
        state = self.bc.ctx.state
        cursor_name = self._cursor(stream, what, since)
        stored = await state.get_cursor(cursor_name) or None
        if stored == DONE:
            log.info("backfill %s: already done in this run", stream.name)
            return Counts()
        total = Counts()
        chunk: list[dict[str, Any]] = []

        async def flush() -> None:
            nonlocal chunk
            if not chunk:
                return
            counts = await self._with_retries(stream, chunk)
            resume = max(str(o.get("created_at") or "") for o in chunk)
            if not self.bc.dry_run and resume:
                await state.set_cursor(cursor_name, resume)
            total.add(counts)
            self.progress(stream.kind, counts, resume or None)
            chunk = []

        async def page(cursor: str | None) -> Page:
            return await stream.fetch(stored, cursor)

        async for found in paginate(page, f"backfill {stream.name}"):
            chunk += found
            if len(chunk) >= self.chunk_size:
                await flush()
        await flush()
        if not self.bc.dry_run:
            await state.set_cursor(cursor_name, DONE)
        return total

    async def _with_retries(self, stream: Stream, chunk: list[dict[str, Any]]) -> Counts:
        """A chunk is idempotent (gate, claims and upserts may all be repeated), so a blip — a 429 past the
        inline wait, a dropped connection — is waited out and the chunk tried again; after the last attempt
        the error ends the run, which resumes from the last committed chunk when started again."""
        for attempt in range(1, self.chunk_attempts + 1):
            try:
                counts = await stream.handle(chunk, self.bc)
                self.bc.outcomes.clear()  # kept per event for the worker's traces; a backfill has none to keep
                return counts
            except TerminalError:
                raise
            except Exception as error:  # unknown errors count as transient
                if attempt == self.chunk_attempts:
                    raise
                retry_after = error.retry_after if isinstance(error, TransientError) else None
                delay = max(retry_after or 0.0, min(60.0, self.retry_base_seconds * 2 ** (attempt - 1)))
                log.warning("backfill %s: chunk failed (%s), again in %.0f s", stream.name, type(error).__name__, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def _customer_stream(self, since: str | None) -> Stream:
        async def fetch(resume: str | None, cursor: str | None) -> Page:
            return await self.history.search_customers_by_creation(resume, since, cursor)

        return Stream("customers", "customers", fetch, backfill_customers)

    async def _sales_streams(self, since: str | None) -> list[Stream]:
        location_ids = sorted(str(location["id"]) for location in await self.history.list_locations())
        streams = []
        for start in range(0, len(location_ids), 10):  # SearchOrders takes at most 10 locations
            group = location_ids[start : start + 10]
            streams.append(Stream(f"orders:{start // 10}", "orders", self._orders_fetch(group, since), backfill_orders))
        for location_id in location_ids:  # ListPayments answers for one location at a time
            streams.append(
                Stream(
                    f"payments:{location_id}", "payments", self._payments_fetch(location_id, since), backfill_payments
                )
            )

        async def refunds(resume: str | None, cursor: str | None) -> Page:
            return await self.history.list_refunds(resume or since, None, cursor)

        streams.append(Stream("refunds", "refunds", refunds, backfill_refunds))
        return streams

    def _orders_fetch(self, group: list[str], since: str | None) -> Fetch:
        async def fetch(resume: str | None, cursor: str | None) -> Page:
            return await self.history.search_orders(group, "CREATED_AT", resume or since, cursor)

        return fetch

    def _payments_fetch(self, location_id: str, since: str | None) -> Fetch:
        async def fetch(resume: str | None, cursor: str | None) -> Page:
            return await self.history.list_payments(location_id, resume or since, None, cursor)

        return fetch

    async def _locations(self) -> Counts:
        counts = await backfill_locations(await self.history.list_locations(), self.bc)
        self.progress("locations", counts, None)
        return counts

    async def _catalog(self) -> Counts:
        """The whole catalog into the cache; afterwards the live flow goes on from the newest version seen."""
        total = Counts()
        latest: str | None = None

        async def page(cursor: str | None) -> Page:
            nonlocal latest
            objects, next_cursor, page_latest = await self.history.search_catalog_changed_since(None, cursor)
            latest = page_latest or latest
            return objects, next_cursor

        async for objects in paginate(page, "backfill catalog"):
            counts = await backfill_catalog_page(objects, self.bc)
            total.add(counts)
            self.progress("catalog", counts, None)
        state = self.bc.ctx.state
        if latest and not self.bc.dry_run and (await state.get_cursor(CATALOG_CURSOR) or "") < latest:
            await state.set_cursor(CATALOG_CURSOR, latest)
        return total
