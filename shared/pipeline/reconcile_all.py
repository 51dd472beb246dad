"""Reconcile every kind: ask Square what changed since each kind's watermark (minus a lag), compare with
the ledger, and enqueue a sync for what the CRM is missing or holds at an older version; then check the
next slice of linked customers for deletes and merges that never arrived (sweep_for_missed_deletes).

Per-kind "updated since" queries, not the Events API (docs/decisions/0013f-reconcile-every-kind.md):
SearchEvents covers 28 days, only events fired while search was enabled, and takes only a personal access
token (developer.squareup.com/docs/events-api/overview; reference/square.md §6).

Each run leaves a report (examined, missing in the CRM, stale, repaired, failed per kind) in the state
store for the health page, the console and the CLI, and in the metrics."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.bulk.backfill import SquareHistory
from shared.core.models import SyncCommand
from shared.core.paging import paginate
from shared.core.ports import Metrics, Queue, SquareApi, StateStore
from shared.core.times import parse_time
from shared.pipeline.gate import Decision, decide
from shared.pipeline.messages import outbound, synthetic_command
from shared.pipeline.reconcile import reconcile_command, sweep_for_missed_deletes

log = logging.getLogger("tillbridge.reconcile")
REPORT_DOC = "reconcile"
KIND_OF = {"customers": "customer", "orders": "order", "payments": "payment", "refunds": "refund"}  # ledger kinds
REPORT_ID = "last"
Page = tuple[list[dict[str, Any]], str | None]


@dataclass
class KindReport:
    kind: str
    examined: int = 0
    missing: int = 0  # in Square, never reached the CRM
    stale: int = 0  # the CRM holds an older version
    repaired: int = 0  # a sync was enqueued
    failed: int = 0  # already failing at this version (an open failure record says why), or the check failed
    error: str | None = None


@dataclass
class ReconcileRun:
    started_at: str
    finished_at: str = ""
    kinds: list[KindReport] = field(default_factory=list)

    def as_document(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Reconciler:
    square: SquareApi
    history: SquareHistory
    state: StateStore
    queue: Queue
    now: datetime
    lag: timedelta
    first_lookback: timedelta
    sweep_batch: int = 1000

    async def since(self, kind: str) -> str:
        stored = parse_time(await self.state.get_cursor(f"reconcile:{kind}"))
        moment = (stored or self.now - self.first_lookback) - self.lag
        return moment.isoformat().replace("+00:00", "Z")

    async def check(
        self,
        report: KindReport,
        objects: AsyncIterator[list[dict[str, Any]]],
        command_for: Callable[[dict[str, Any]], SyncCommand],
    ) -> None:
        """Compare each object with the ledger; enqueue a sync for the missing and the stale."""
        kind = KIND_OF[report.kind]
        async for page in objects:
            for obj in page:
                report.examined += 1
                ledger = await self.state.get_ledger(kind, str(obj["id"]))
                version = obj.get("version") if isinstance(obj.get("version"), int) else None
                decision = decide(ledger, version=version, updated_at=obj.get("updated_at"), is_delete=False)
                if decision is not Decision.APPLY:
                    continue
                if ledger is not None and ledger.failure_open and str(ledger.failed_version) == str(version):
                    report.failed += 1
                    continue
                if ledger is None or (ledger.version is None and ledger.updated_at is None):
                    report.missing += 1
                else:
                    report.stale += 1
                await self.queue.send(outbound(command_for(obj)))
                report.repaired += 1


def _repair(
    kind: str, event_type: str, object_key: str | None, now: datetime
) -> Callable[[dict[str, Any]], SyncCommand]:
    """A synthetic event for the flow: the full object where the flow takes one, else a fresh fetch."""

    def command(obj: dict[str, Any]) -> SyncCommand:
        label = obj.get("version") if obj.get("version") is not None else obj.get("updated_at", "")
        event_id = f"reconcile-{kind}-{obj['id']}-{label}"
        return synthetic_command(
            event_id=event_id,
            event_type=event_type,
            kind=kind,
            entity_id=str(obj["id"]),
            received_at=now.isoformat(),
            data_object={object_key: obj} if object_key else None,
            source_version=obj.get("version") if isinstance(obj.get("version"), int) else None,
        )

    return command


def _pages(fetch: Callable[[str | None], Awaitable[Page]], what: str) -> AsyncIterator[list[dict[str, Any]]]:
    return paginate(fetch, what)


async def _customers(r: Reconciler, report: KindReport) -> None:
    since = await r.since("customers")

    async def page(cursor: str | None) -> Page:
        return await r.square.search_customers_updated_since(since, cursor)

    await r.check(report, _pages(page, "reconcile customers"), lambda c: reconcile_command(c, r.now))
    swept = await sweep_for_missed_deletes(
        square=r.square, state=r.state, queue=r.queue, now=r.now, batch_size=r.sweep_batch
    )
    report.examined += swept.checked
    report.stale += len(swept.deleted_ids) + len(swept.merged)  # active in the CRM, gone or merged in Square
    report.repaired += len(swept.deleted_ids) + len(swept.merged)


async def _orders(r: Reconciler, report: KindReport, location_ids: list[str]) -> None:
    since = await r.since("orders")
    for start in range(0, len(location_ids), 10):
        group = location_ids[start : start + 10]

        async def page(cursor: str | None, group: list[str] = group) -> Page:
            return await r.history.search_orders(group, "UPDATED_AT", since, cursor)

        await r.check(report, _pages(page, "reconcile orders"), _repair("order", "order.updated", None, r.now))


async def _payments(r: Reconciler, report: KindReport, location_ids: list[str]) -> None:
    since = await r.since("payments")
    for location_id in location_ids:

        async def page(cursor: str | None, location_id: str = location_id) -> Page:
            return await r.history.list_payments(location_id, None, since, cursor)

        await r.check(
            report, _pages(page, "reconcile payments"), _repair("payment", "payment.updated", "payment", r.now)
        )


async def _refunds(r: Reconciler, report: KindReport) -> None:
    since = await r.since("refunds")

    async def page(cursor: str | None) -> Page:
        return await r.history.list_refunds(None, since, cursor)

    await r.check(report, _pages(page, "reconcile refunds"), _repair("refund", "refund.updated", "refund", r.now))


async def _locations(r: Reconciler, report: KindReport, locations: list[dict[str, Any]]) -> None:
    """Locations carry no version or updated_at: a store the ledger has never seen is what is missing."""
    for location in locations:
        report.examined += 1
        if await r.state.get_ledger("location", str(location["id"])) is None:
            report.missing += 1
            await r.queue.send(outbound(_repair("location", "location.updated", None, r.now)(location)))
            report.repaired += 1


async def _catalog(r: Reconciler, report: KindReport) -> None:
    """Anything changed after the catalog version the cache holds means one catalog sync."""
    since = await r.state.get_cursor("catalog:version")
    objects, _, latest = await r.history.search_catalog_changed_since(since or None, None)
    report.examined = len(objects)
    if objects and latest != since:
        report.stale = 1
        command = synthetic_command(
            event_id=f"reconcile-catalog-{latest}",
            event_type="catalog.version.updated",
            kind="catalog",
            entity_id="catalog",
            received_at=r.now.isoformat(),
        )
        await r.queue.send(outbound(command))
        report.repaired = 1


async def reconcile_everything(r: Reconciler, metrics: Metrics) -> ReconcileRun:
    """Every kind, each on its own: one kind's trouble is reported, the others still run. Watermarks move
    to the run's start only for the kinds that completed."""
    run = ReconcileRun(started_at=r.now.isoformat())
    locations: list[dict[str, Any]] = []
    location_ids: list[str] = []

    async def load_locations(report: KindReport) -> None:
        nonlocal locations, location_ids
        locations = await r.history.list_locations()
        location_ids = sorted(str(location["id"]) for location in locations)
        await _locations(r, report, locations)

    steps: list[tuple[str, Callable[[KindReport], Awaitable[None]]]] = [
        ("customers", lambda rep: _customers(r, rep)),
        ("locations", load_locations),
        ("orders", lambda rep: _orders(r, rep, location_ids)),
        ("payments", lambda rep: _payments(r, rep, location_ids)),
        ("refunds", lambda rep: _refunds(r, rep)),
        ("catalog", lambda rep: _catalog(r, rep)),
    ]
    for name, step in steps:
        report = KindReport(name)
        try:
            await step(report)
            await r.state.set_cursor(f"reconcile:{name}", r.now.isoformat())
        except Exception as error:  # reported, and the watermark stays: next run asks again
            report.error = f"{type(error).__name__}: {str(error)[:300]}"
            report.failed += 1
            log.warning("reconcile %s failed: %s", name, report.error)
        run.kinds.append(report)
        for measure in ("examined", "missing", "stale", "repaired", "failed"):
            metrics.increment(f"reconcile_{measure}", float(getattr(report, measure)), kind=name)
    run.finished_at = datetime.now(r.now.tzinfo).isoformat()
    await save_report(r.state, run)
    return run


async def save_report(state: StateStore, run: ReconcileRun) -> None:
    _, etag = await state.get_doc(REPORT_DOC, REPORT_ID)
    await state.put_doc(REPORT_DOC, REPORT_ID, run.as_document(), etag)


async def last_report(state: StateStore) -> dict[str, Any] | None:
    document, _ = await state.get_doc(REPORT_DOC, REPORT_ID)
    return document
