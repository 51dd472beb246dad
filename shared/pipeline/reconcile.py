"""Reconcile customers: ask Square what changed since the watermark (minus a lag), and enqueue a sync
for every customer the ledger has not caught up with (missed or dropped webhooks).

The watermark advances only after a complete pass, and only to the run's start: a customer updated
during the run is seen again next time (the overlap is de-duplicated by the version gate).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.core.models import SyncCommand
from shared.core.paging import paginate
from shared.core.ports import Queue, SquareApi, StateStore
from shared.core.times import parse_time
from shared.pipeline.gate import Decision, decide
from shared.pipeline.messages import outbound, synthetic_command

log = logging.getLogger("tillbridge.reconcile")
CURSOR = "reconcile:customers"


@dataclass(frozen=True)
class ReconcileReport:
    since: str
    examined: int
    enqueued_ids: tuple[str, ...]
    watermark: str

    @property
    def enqueued(self) -> int:
        return len(self.enqueued_ids)


def reconcile_command(customer: dict[str, object], now: datetime) -> SyncCommand:
    customer_id = str(customer["id"])
    version = customer.get("version")
    event_id = f"reconcile-{customer_id}-{version if version is not None else customer.get('updated_at')}"
    return synthetic_command(
        event_id=event_id,
        event_type="customer.updated",
        kind="customer",
        entity_id=customer_id,
        received_at=now.isoformat(),
        data_object={"customer": customer},
        source_version=version if isinstance(version, int) else None,
    )


async def reconcile_customers(
    *, square: SquareApi, state: StateStore, queue: Queue, now: datetime, lag: timedelta, first_lookback: timedelta
) -> ReconcileReport:
    stored = parse_time(await state.get_cursor(CURSOR))
    since = (stored or now - first_lookback) - lag
    since_text = since.isoformat().replace("+00:00", "Z")
    examined = 0
    enqueued: list[str] = []

    async def page(cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        return await square.search_customers_updated_since(since_text, cursor)

    async for customers in paginate(page, "reconcile (SearchCustomers)"):
        for customer in customers:
            examined += 1
            ledger = await state.get_ledger("customer", str(customer["id"]))
            version = customer.get("version")
            decision = decide(
                ledger,
                version=version if isinstance(version, int) else None,
                updated_at=str(customer.get("updated_at") or "") or None,
                is_delete=False,
            )
            already_failed = ledger is not None and ledger.failure_open and ledger.failed_version == version
            if decision is Decision.APPLY and not already_failed:
                await queue.send(outbound(reconcile_command(customer, now)))
                enqueued.append(str(customer["id"]))
    watermark = now.isoformat()
    await state.set_cursor(CURSOR, watermark)
    log.info("reconcile examined %d customers, enqueued %d", examined, len(enqueued))
    return ReconcileReport(since=since_text, examined=examined, enqueued_ids=tuple(enqueued), watermark=watermark)


SWEEP_CURSOR = "reconcile:customers:sweep"


@dataclass(frozen=True)
class SweepReport:
    """Customers the CRM holds as active that Square no longer has: their delete or merge never arrived."""

    checked: int
    deleted_ids: tuple[str, ...]
    merged: tuple[tuple[str, str], ...]  # (merged-away id, survivor id)
    wrapped: bool  # this pass reached the end of the ledger and starts over next time


def missed_delete_command(customer_id: str, now: datetime) -> SyncCommand:
    """Repair a delete that never arrived: the flow fetches the customer, finds it gone, deactivates."""
    return synthetic_command(
        event_id=f"reconcile-deleted-{customer_id}-{now.strftime('%Y%m%d%H%M')}",
        event_type="customer.deleted",
        kind="customer",
        entity_id=customer_id,
        received_at=now.isoformat(),
    )


def missed_merge_command(customer_id: str, survivor_id: str, now: datetime) -> SyncCommand:
    """Repair a merge that never arrived, in the shape of Square's own customer.deleted for a merge."""
    return synthetic_command(
        event_id=f"reconcile-merged-{customer_id}-{survivor_id}",
        event_type="customer.deleted",
        kind="customer",
        entity_id=customer_id,
        received_at=now.isoformat(),
        data_object={"event_context": {"merge": {"from_customer_ids": [customer_id], "to_customer_id": survivor_id}}},
    )


async def sweep_for_missed_deletes(
    *, square: SquareApi, state: StateStore, queue: Queue, now: datetime, batch_size: int
) -> SweepReport:
    """Check the next `batch_size` linked customers against Square (BulkRetrieveCustomers, 100 a call) and
    repair each one Square no longer has. A rolling cursor covers the whole ledger over successive runs."""
    if batch_size <= 0:
        return SweepReport(0, (), (), False)
    after = await state.get_cursor(SWEEP_CURSOR) or None
    rows, next_cursor = await state.ledger_page("customer", after, batch_size)
    linked = [row.square_id for row in rows if row.status == "active" and row.dataverse_id]
    found = await square.bulk_retrieve_customers(linked) if linked else {}
    deleted, merged = [], []
    for customer_id in linked:
        current = found.get(customer_id)  # absent: Square answered NOT_FOUND (any other error raises)
        if current is None:
            deleted.append(customer_id)
            await queue.send(outbound(missed_delete_command(customer_id, now)))
        elif str(current.get("id")) != customer_id:
            merged.append((customer_id, str(current["id"])))
            await queue.send(outbound(missed_merge_command(customer_id, str(current["id"]), now)))
    await state.set_cursor(SWEEP_CURSOR, next_cursor or "")
    if deleted or merged:
        log.warning(
            "reconcile sweep: %d deleted and %d merged in Square but active in the CRM", len(deleted), len(merged)
        )
    return SweepReport(len(linked), tuple(deleted), tuple(merged), next_cursor is None)
