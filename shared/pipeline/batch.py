"""The worker's batch path: when the queue holds a backlog the trigger delivers many messages at once,
and customer events that carry their full object are written with one bulk request per chunk (the same
gate, matching, claim and commit as the single path, shared/bulk/customers.py). Everything else — deletes,
merges, thin events, other kinds — and small batches (low load: latency first) take the single path.
Version gate, failure records and traces stay per record."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.bulk.context import BulkContext
from shared.bulk.customers import Pair, bulk_customers
from shared.bulk.writer import BulkWriter
from shared.core.errors import TerminalError
from shared.core.models import SyncCommand
from shared.core.times import parse_time
from shared.flows import two_way
from shared.monitoring import otel, tracing
from shared.monitoring.tracing import AttemptTrace

if TYPE_CHECKING:
    from shared.pipeline.worker import Worker

log = logging.getLogger("tillbridge.worker.batch")
FLOW = "customers"
SINGLE_CONCURRENCY = 16  # single-path messages of one batch in flight at once
WRITTEN = {"written"}


@dataclass(frozen=True)
class Inbound:
    """One delivered message: its body and what the broker says about it."""

    body: bytes
    delivery_count: int = 1
    properties: Mapping[str, str] | None = None


@dataclass(frozen=True)
class BulkOptions:
    writer: BulkWriter
    threshold: int  # at least this many messages in a delivery → the bulk path


def bulk_customer_object(command: SyncCommand) -> dict[str, Any] | None:
    """The customer a message carries when it can go the bulk path: created/updated with the full object,
    not a fresh fetch, not part of a merge (those keep their own ordering rules in the single path)."""
    if command.entity_kind != "customer" or command.fetch or command.event_type == "customer.deleted":
        return None
    data_object = (command.event.get("data") or {}).get("object") or {}
    if not isinstance(data_object, dict) or (data_object.get("event_context") or {}).get("merge"):
        return None
    customer = data_object.get("customer")
    return customer if isinstance(customer, dict) and customer.get("id") == command.entity_id else None


async def handle_batch(worker: Worker, messages: Sequence[Inbound]) -> None:
    """Process a delivery; returns when every message may be completed (retries are queued copies)."""
    options = worker.bulk
    if options is None or len(messages) < options.threshold or two_way.active(worker.ctx):
        # two-way sync decides each customer against the CRM's current values: the single path does that
        await _singles(worker, messages)
        return
    bulk: list[tuple[Inbound, SyncCommand, dict[str, Any]]] = []
    singles: list[Inbound] = []
    parsed = [(message, await worker.parse_quietly(message.body)) for message in messages]
    # an object with any event that must go one by one (a delete, a merge, a fetch) has all its events of
    # this delivery go one by one, in order: a delete is never written beside a bulk write of its customer
    single_entities = {_entity(c) for _, c in parsed if c is not None and bulk_customer_object(c) is None}
    for message, command in parsed:
        customer = bulk_customer_object(command) if command is not None else None
        if command is None or customer is None or _entity(command) in single_entities:
            singles.append(message)
        else:
            bulk.append((message, command, customer))
    if bulk and await worker.flow_paused(FLOW):
        singles += [message for message, _, _ in bulk]  # the single path holds them
        bulk = []
    await asyncio.gather(_singles(worker, singles), _bulk(worker, options, bulk))


def _entity(command: SyncCommand) -> tuple[str, str]:
    return command.entity_kind, command.entity_id


async def _singles(worker: Worker, messages: Sequence[Inbound]) -> None:
    """One by one per object, in delivery order (what a session used to give within a delivery); objects
    side by side."""
    groups: dict[object, list[Inbound]] = {}
    for message in messages:
        command = await worker.parse_quietly(message.body)
        key: object = _entity(command) if command is not None else id(message)
        groups.setdefault(key, []).append(message)
    slots = asyncio.Semaphore(SINGLE_CONCURRENCY)

    async def in_order(group: list[Inbound]) -> None:
        async with slots:
            for message in group:
                await worker.handle(message.body, delivery_count=message.delivery_count, properties=message.properties)

    await asyncio.gather(*(in_order(group) for group in groups.values()))


async def _bulk(worker: Worker, options: BulkOptions, items: list[tuple[Inbound, SyncCommand, dict[str, Any]]]) -> None:
    if not items:
        return
    traces = [worker.open_trace(command, FLOW, message.delivery_count, message.body) for message, command, _ in items]
    bc = BulkContext(ctx=worker.ctx, writer=options.writer, queue=worker.retry_queue, source="batch")
    pairs: list[Pair] = [(customer, command) for _, command, customer in items]
    try:
        entities = [_entity(command) for _, command, _ in items]
        with otel.span("process_batch", items[0][1].event_id, parent=items[0][0].properties, flow=FLOW):
            async with worker.ctx.writers.hold_all(entities):
                counts = await bulk_customers(pairs, bc)
    except TerminalError as error:
        # a step of the whole chunk (the match query) was refused: each event goes the single path, where a
        # record that really cannot be written gets its own failure record (nothing committed was lost:
        # a claim left behind is re-applied by the same version)
        log.warning("bulk path refused (%s): %d events go one by one", error.reason_code, len(items))
        await _singles(worker, [message for message, _, _ in items])
        return
    except Exception as error:  # transient: nothing was committed; each event retries like a single one
        for trace, (_, command, _) in zip(traces, items, strict=True):
            await _in_trace(trace, worker.retry_later(command, FLOW, error))
        await asyncio.gather(*(worker.save_trace(trace) for trace in traces))
        return
    for trace, (_, command, _) in zip(traces, items, strict=True):
        await _finish(
            worker,
            trace,
            command,
            bc.outcomes.get(command.event_id, "unchanged"),
            size=len(items),
            requests=counts.requests,
        )
    await asyncio.gather(*(worker.save_trace(trace) for trace in traces))


async def _in_trace(trace: AttemptTrace, call: Any) -> None:
    token = tracing.begin(trace)
    try:
        await call
    finally:
        tracing.end(token)


async def _finish(
    worker: Worker, trace: AttemptTrace, command: SyncCommand, outcome: str, *, size: int, requests: int
) -> None:
    """Each record's trace and metrics, as the single path writes them."""
    what, _, reason = outcome.partition(":")
    trace.step("bulk", batch_size=size, dataverse_requests=requests)
    if what == "failed":
        trace.outcome = "failed"
        trace.step("failed", reason_code=reason)
        worker.ctx.metrics.increment("failures", flow=FLOW, reason=reason)
        return
    trace.outcome = what
    trace.step(what)
    worker.ctx.metrics.increment("events_processed", flow=FLOW, outcome=what)
    if what in WRITTEN:
        await worker.mark_write(FLOW)
        received = parse_time(command.received_at)
        if received is not None:
            otel.record("e2e_lag_seconds", (worker.ctx.clock.now() - received).total_seconds(), flow=FLOW)
