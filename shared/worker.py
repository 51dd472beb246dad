"""The queue worker: route one message to its flow; terminal errors become failure records, transient
ones become a delayed retry copy (fresh message id), and after the attempt limit a failure record."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from pydantic import ValidationError

from shared.errors import InvalidDataError, NeedsReviewError, TerminalError, TransientError
from shared.flows.context import FlowContext, Outcome
from shared.flows.customers import sync_customer
from shared.ingress import outbound
from shared.models import SyncCommand
from shared.ports import FailureRecord, LedgerRow, Queue

log = logging.getLogger("tillbridge.worker")
Handler = Callable[[SyncCommand, FlowContext], Awaitable[Outcome]]
HANDLERS: dict[str, tuple[str, Handler]] = {"customer": ("customers", sync_customer)}


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_seconds: float = 5.0
    max_seconds: float = 900.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter, never sooner than the server's Retry-After."""
        backoff = min(self.max_seconds, self.base_seconds * (2 ** (attempt - 1)))
        jittered = backoff * (0.5 + random.random() / 2)
        return float(max(jittered, retry_after or 0.0))


@dataclass
class Worker:
    ctx: FlowContext
    retry_queue: Queue
    policy: RetryPolicy

    async def handle(self, body: bytes, *, delivery_count: int = 1) -> Outcome | None:
        """Process one message. Returns normally when the message may be completed; raises to redeliver."""
        command = await self._parse(body)
        if command is None:
            return None
        flow, handler = HANDLERS.get(command.entity_kind, ("unknown", None))
        if handler is None:
            await self._fail(
                command, flow, TerminalError(f"no flow handles {command.entity_kind!r}", reason_code="unroutable")
            )
            return None
        try:
            outcome = await handler(command, self.ctx)
        except TerminalError as error:
            await self._fail(command, flow, error)
            return None
        except Exception as error:  # unknown errors are transient: retried later, then recorded
            await self._retry_later(command, flow, error)
            return None
        self.ctx.metrics.increment("events_processed", flow=flow, outcome=outcome.value)
        log.info("event %s → %s", command.event_id, outcome.value, extra={"correlation_id": command.event_id})
        return outcome

    async def _parse(self, body: bytes) -> SyncCommand | None:
        try:
            return SyncCommand.model_validate(json.loads(body))
        except (ValueError, ValidationError) as error:
            now = self.ctx.clock.now().isoformat()
            record_id = f"malformed-{abs(hash(body)) % 10**12}"
            await self.ctx.state.record_failure(
                FailureRecord(
                    flow="queue",
                    record_id=record_id,
                    reason_code="malformed_message",
                    message=f"the queue message is not a SyncCommand ({type(error).__name__})",
                    event_id="",
                    event_type="",
                    first_seen=now,
                    last_seen=now,
                )
            )
            return None

    async def _retry_later(self, command: SyncCommand, flow: str, error: Exception) -> None:
        retry_after = error.retry_after if isinstance(error, TransientError) else None
        if command.attempt >= self.policy.max_attempts:
            message = f"gave up after {command.attempt} attempts: {type(error).__name__}: {error}"
            await self._fail(command, flow, TerminalError(message, reason_code="retries_exhausted"))
            return
        delay = self.policy.delay(command.attempt, retry_after)
        copy = command.model_copy(
            update={"attempt": command.attempt + 1, "message_id": f"{command.event_id}:retry:{command.attempt + 1}"}
        )
        self.ctx.metrics.increment("retries_scheduled", flow=flow, reason=type(error).__name__)
        log.warning(
            "event %s attempt %d failed (%s); retry in %.1fs",
            command.event_id,
            command.attempt,
            type(error).__name__,
            delay,
            extra={"correlation_id": command.event_id},
        )
        await self.retry_queue.send(replace(outbound(copy), delay_seconds=delay))

    async def _fail(self, command: SyncCommand, flow: str, error: TerminalError) -> None:
        now = self.ctx.clock.now().isoformat()
        field = None
        if isinstance(error, InvalidDataError):
            field = ",".join(problem.field for problem in error.problems)
        candidates = error.candidates if isinstance(error, NeedsReviewError) else ()
        await self.ctx.state.record_failure(
            FailureRecord(
                flow=flow,
                record_id=command.entity_id,
                reason_code=error.reason_code,
                message=str(error),
                event_id=command.event_id,
                event_type=command.event_type,
                field=field,
                candidates=candidates,
                first_seen=now,
                last_seen=now,
            )
        )
        await self._flag_ledger(command)
        self.ctx.metrics.increment("failures", flow=flow, reason=error.reason_code)
        log.warning(
            "event %s failed: %s", command.event_id, error.reason_code, extra={"correlation_id": command.event_id}
        )

    async def _flag_ledger(self, command: SyncCommand) -> None:
        """Mark the object as having an open failure, so its next success resolves it."""
        row = await self.ctx.state.get_ledger(command.entity_kind, command.entity_id)
        row = row if row is not None else LedgerRow(kind=command.entity_kind, square_id=command.entity_id)
        if row.failure_open and row.pending_version is None and row.failed_version == command.source_version:
            return
        row.failure_open = True
        row.failed_version = command.source_version
        row.pending_version = row.pending_updated_at = row.pending_event_id = None
        await self.ctx.state.save_ledger(row)

    async def dead_letter(self, body: bytes, reason: str) -> None:
        """A message the broker gave up on (max delivery count): record it, nothing is dropped silently."""
        command = await self._parse(body)
        if command is None:
            return
        flow = HANDLERS.get(command.entity_kind, ("unknown", None))[0]
        await self._fail(command, flow, TerminalError(f"dead-lettered: {reason}", reason_code="dead_lettered"))
