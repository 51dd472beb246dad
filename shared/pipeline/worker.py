"""The queue worker: route one message to its flow; terminal errors become failure records, transient
ones become a delayed retry copy (fresh message id), and after the attempt limit a failure record."""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from pydantic import ValidationError

from shared.core.errors import LostCommitError, TerminalError, TransientError
from shared.core.models import SyncCommand
from shared.core.ports import FailureRecord, Queue
from shared.core.times import parse_time
from shared.flows.context import FlowContext, Outcome
from shared.monitoring import otel, tracing
from shared.monitoring.tracing import AttemptTrace, TraceStore
from shared.pipeline.batch import BulkOptions, Inbound, handle_batch
from shared.pipeline.failing import record_terminal
from shared.pipeline.messages import outbound
from shared.pipeline.registry import QUEUE_FLOW, flow_of, handler_for, writer_key

if TYPE_CHECKING:
    from shared.pipeline.registry import Handler

log = logging.getLogger("tillbridge.worker")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_seconds: float = 5.0
    max_seconds: float = 900.0
    held_seconds: float = 30.0  # a held message (paused flow, invalid configuration file) is looked at again after

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter, never sooner than the server's Retry-After."""
        backoff = min(self.max_seconds, self.base_seconds * (2 ** (attempt - 1)))
        jittered = backoff * (0.5 + random.random() / 2)
        return float(max(jittered, retry_after or 0.0))


PAUSE_RECHECK_SECONDS = 5.0
WRITE_MARK_SECONDS = 5.0


@dataclass
class Worker:
    ctx: FlowContext
    retry_queue: Queue
    policy: RetryPolicy
    traces: TraceStore | None = None
    blocked: str | None = None  # why nothing may be processed (an invalid configuration file): messages are held
    bulk: BulkOptions | None = None  # the batch path's writer and threshold (None: every message single)
    _paused: dict[str, tuple[float, bool]] = field(default_factory=dict)
    _write_marks: dict[str, float] = field(default_factory=dict)

    async def handle(
        self, body: bytes, *, delivery_count: int = 1, properties: Mapping[str, str] | None = None
    ) -> Outcome | None:
        """Process one message. Returns normally when the message may be completed; raises to redeliver."""
        command = await self._parse(body)
        if command is None:
            return None
        flow, handler = flow_of(command.entity_kind), handler_for(command.entity_kind)
        trace = self._open_trace(command, flow, delivery_count, body)
        token = tracing.begin(trace)
        try:
            with otel.span("process_event", command.event_id, parent=properties, flow=flow, attempt=command.attempt):
                async with self.ctx.writers.hold(writer_key(command)):
                    return await self._run(command, flow, handler, trace)
        finally:
            tracing.end(token)
            await self._save_trace(trace)

    async def handle_batch(self, messages: Sequence[Inbound]) -> None:
        """Process a delivery of many messages: in bulk under a backlog, one by one at low load
        (shared/pipeline/batch.py). Returns when every message may be completed."""
        await handle_batch(self, messages)

    # what the batch path shares with the single path
    async def parse_quietly(self, body: bytes) -> SyncCommand | None:
        try:
            return SyncCommand.model_validate(json.loads(body))
        except (ValueError, ValidationError):
            return None  # the single path records it as malformed

    async def flow_paused(self, flow: str) -> bool:
        return await self._is_paused(flow)

    def open_trace(self, command: SyncCommand, flow: str, delivery_count: int, body: bytes) -> AttemptTrace:
        return self._open_trace(command, flow, delivery_count, body)

    async def save_trace(self, trace: AttemptTrace) -> None:
        await self._save_trace(trace)

    async def retry_later(self, command: SyncCommand, flow: str, error: Exception) -> None:
        await self._retry_later(command, flow, error)

    async def mark_write(self, flow: str) -> None:
        await self._mark_write(flow)

    async def _run(
        self, command: SyncCommand, flow: str, handler: Handler | None, trace: AttemptTrace
    ) -> Outcome | None:
        if handler is None:
            await self._fail(
                command, flow, TerminalError(f"no flow handles {command.entity_kind!r}", reason_code="unroutable")
            )
            return None
        if self.blocked is not None:
            await self._hold(command, flow, trace, stage="held_invalid_configuration", why=self.blocked)
            return None
        if await self._is_paused(flow):
            await self._hold(command, flow, trace)
            return None
        if not self.ctx.configuration.flow_enabled(flow):
            trace.outcome = Outcome.IGNORED.value
            trace.step("disabled", why=f"the {flow} flow is off in the configuration file")
            self.ctx.metrics.increment("events_processed", flow=flow, outcome=Outcome.IGNORED.value)
            return Outcome.IGNORED
        try:
            outcome = await handler(command, self.ctx)
        except TerminalError as error:
            await self._fail(command, flow, error)
            return None
        except Exception as error:  # unknown errors are transient: retried later, then recorded
            await self._retry_later(command, flow, error)
            return None
        trace.outcome = outcome.value
        trace.step(outcome.value)
        self.ctx.metrics.increment("events_processed", flow=flow, outcome=outcome.value)
        if outcome in (Outcome.WRITTEN, Outcome.DEACTIVATED, Outcome.MERGED):
            await self._mark_write(flow)
            received = parse_time(command.received_at)
            if received is not None:
                otel.record("e2e_lag_seconds", (self.ctx.clock.now() - received).total_seconds(), flow=flow)
        log.info("event %s → %s", command.event_id, outcome.value, extra={"correlation_id": command.event_id})
        return outcome

    def _open_trace(self, command: SyncCommand, flow: str, delivery_count: int, body: bytes) -> AttemptTrace:
        trace = AttemptTrace(
            flow=flow,
            record_id=command.entity_id,
            event_id=command.event_id,
            event_type=command.event_type,
            attempt=command.attempt,
            delivery_count=delivery_count,
            started_at=self.ctx.clock.now().isoformat(),
            command_json=body.decode("utf-8", "replace"),
            clock=self.ctx.clock,
        )
        trace.step(
            "received",
            event_type=command.event_type,
            delivery_count=delivery_count,
            attempt=command.attempt,
            received_at=command.received_at,
            message_id=command.message_id,
        )
        return trace

    async def _save_trace(self, trace: AttemptTrace) -> None:
        if self.traces is None:
            return
        try:
            await self.traces.save(trace)
        except Exception as error:  # a lost trace must never fail the record itself
            log.warning("trace for event %s not saved: %s", trace.event_id, type(error).__name__)

    async def _is_paused(self, flow: str) -> bool:
        now = time.monotonic()
        checked = self._paused.get(flow)
        if checked is None or now - checked[0] > PAUSE_RECHECK_SECONDS:
            checked = (now, (await self.ctx.state.get_flow(flow)).paused)
            self._paused[flow] = checked
        return checked[1]

    async def _hold(
        self, command: SyncCommand, flow: str, trace: AttemptTrace, stage: str = "paused", why: str | None = None
    ) -> None:
        """A paused flow (or an invalid configuration file) keeps its messages: each is put back on the queue
        for later, not counted as an attempt."""
        held = command.model_copy(update={"message_id": f"{command.event_id}:held:{uuid.uuid4().hex[:12]}"})
        await self.retry_queue.send(replace(outbound(held), delay_seconds=self.policy.held_seconds))
        trace.outcome = stage
        trace.step(stage, redelivery_seconds=self.policy.held_seconds, why=why)
        self.ctx.metrics.increment("events_held", flow=flow)

    async def _mark_write(self, flow: str) -> None:
        """When the flow last wrote to the CRM (for the lag on the health page), at most every few seconds."""
        now = time.monotonic()
        if now - self._write_marks.get(flow, 0.0) < WRITE_MARK_SECONDS:
            return
        self._write_marks[flow] = now
        status = await self.ctx.state.get_flow(flow)
        status.last_written_at = self.ctx.clock.now().isoformat()
        await self.ctx.state.save_flow(status)

    async def _parse(self, body: bytes) -> SyncCommand | None:
        try:
            return SyncCommand.model_validate(json.loads(body))
        except (ValueError, ValidationError) as error:
            now = self.ctx.clock.now().isoformat()
            record_id = f"malformed-{abs(hash(body)) % 10**12}"
            await self.ctx.state.record_failure(
                FailureRecord(
                    flow=QUEUE_FLOW,
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
        update: dict[str, object] = {
            "attempt": command.attempt + 1,
            "message_id": f"{command.event_id}:retry:{command.attempt + 1}",
        }
        if isinstance(error, LostCommitError):  # Square's current copy, written even at the ledger's version
            update.update(fetch=True, repair=True)
        copy = command.model_copy(update=update)
        self.ctx.metrics.increment("retries_scheduled", flow=flow, reason=type(error).__name__)
        tracing.step(
            "retry_scheduled",
            error=f"{type(error).__name__}: {error}"[:500],
            delay_seconds=round(delay, 1),
            next_attempt=command.attempt + 1,
        )
        trace = tracing.current()
        if trace is not None:
            trace.outcome = "retry_scheduled"
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
        failed_field = await record_terminal(self.ctx.state, self.ctx.clock, command, flow, error)
        tracing.step("failed", reason_code=error.reason_code, field=failed_field, message=str(error)[:500])
        trace = tracing.current()
        if trace is not None:
            trace.outcome = "failed"
        self.ctx.metrics.increment("failures", flow=flow, reason=error.reason_code)
        log.warning(
            "event %s failed: %s", command.event_id, error.reason_code, extra={"correlation_id": command.event_id}
        )

    async def dead_letter(self, body: bytes, reason: str) -> None:
        """A message the broker gave up on (max delivery count): record it, nothing is dropped silently."""
        command = await self._parse(body)
        if command is None:
            return
        flow = flow_of(command.entity_kind)
        await self._fail(command, flow, TerminalError(f"dead-lettered: {reason}", reason_code="dead_lettered"))
