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
