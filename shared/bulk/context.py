"""What every bulk step needs: the flow context (ports and mapping settings), the bulk writer, the queue
(re-syncs of records the live path was writing at the same moment) and whether anything is written."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from shared.bulk.writer import BulkWriter
from shared.core.errors import TerminalError
from shared.core.models import SyncCommand
from shared.core.ports import LedgerRow, Queue
from shared.flows.context import FlowContext
from shared.pipeline.failing import record_terminal
from shared.pipeline.messages import fresh_fetch_command, outbound, synthetic_command
from shared.pipeline.registry import KINDS

T = TypeVar("T")
STATE_CONCURRENCY = 32  # Table Storage calls in flight per chunk


@dataclass
class BulkContext:
    ctx: FlowContext
    writer: BulkWriter
    queue: Queue
    dry_run: bool = False
    source: str = "backfill"  # names the synthetic events: backfill-<id>-<version>
    outcomes: dict[str, str] = field(default_factory=dict)  # event id → what became of it (the worker's traces)
    busy: list[tuple[str, str, float]] = field(default_factory=list)  # (kind, id, seconds) to re-sync once free

    def outcome(self, command: SyncCommand, what: str) -> None:
        self.outcomes[command.event_id] = what

    async def record_failure(self, command: SyncCommand, error: TerminalError) -> None:
        self.outcome(command, f"failed:{error.reason_code}")
        await record_terminal(self.ctx.state, self.ctx.clock, command, KINDS[command.entity_kind].flow, error)

    async def resync(self, kind: str, square_id: str, *, delay_seconds: float = 0.0, repair: bool = False) -> None:
        """The live path claimed this object while the bulk write was in flight: sync it again from Square's
        current copy (after `delay_seconds`), so whichever version is newest ends up in the CRM."""
        command = fresh_fetch_command(
            kind, square_id, self.ctx.clock.now().isoformat(), purpose=self.source, repair=repair
        )
        await self.queue.send(replace(outbound(command), delay_seconds=delay_seconds))

    def wait_for(self, kind: str, square_id: str, delay_seconds: float) -> None:
        """Another writer's claim on this object is still within its lease: re-sync it when it has run out."""
        self.busy.append((kind, square_id, delay_seconds))

    async def requeue_busy(self) -> None:
        if not self.dry_run:
            for kind, square_id, delay_seconds in self.busy:
                await self.resync(kind, square_id, delay_seconds=delay_seconds)
        self.busy.clear()

    def command(self, kind: str, obj: dict[str, Any], object_key: str) -> SyncCommand:
        """The synthetic event a bulk-written object is recorded under (ledger, failures, retries)."""
        version = obj.get("version")
        label = version if version is not None else obj.get("updated_at", "")
        event_id = f"{self.source}-{obj.get('id')}-{label}"
        return synthetic_command(
            event_id=event_id,
            event_type=KINDS[kind].retry_event_type,
            kind=kind,
            entity_id=str(obj.get("id")),
            received_at=self.ctx.clock.now().isoformat(),
            data_object={object_key: obj},
            source_version=version if isinstance(version, int) else None,
        )

    async def ledgers(self, kind: str, ids: Iterable[str]) -> dict[str, LedgerRow | None]:
        unique = list(dict.fromkeys(ids))
        return await self.ctx.state.get_ledgers(kind, unique) if unique else {}


async def gather_limited(calls: Iterable[Awaitable[T]], limit: int = STATE_CONCURRENCY) -> list[T]:
    """Await every call, at most `limit` at a time, results in order."""
    slots = asyncio.Semaphore(limit)

    async def one(call: Awaitable[T]) -> T:
        async with slots:
            return await call

    return list(await asyncio.gather(*(one(call) for call in calls)))
