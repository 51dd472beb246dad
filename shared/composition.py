"""The one composition root: settings, clients, stores and services are built here, lazily, on first use
(never at import: the webhook's cold start loads only what it needs). Triggers and the CLI call the entry
points at the bottom; tests call `reset()` after changing settings.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from shared.config.settings import (
    IngressSettings,
    QueueSettings,
    Settings,
    StorageSettings,
    load_ingress_settings,
    load_settings,
)
from shared.core.errors import ConfigurationError
from shared.monitoring.metrics import LogMetrics, SystemClock, quiet_noisy_loggers

if TYPE_CHECKING:  # the heavy modules load on first use, keeping cold start short
    from shared.adapters.dataverse_http import DataverseClient
    from shared.adapters.square_http import SquareClient
    from shared.adapters.table_state import TableStateStore
    from shared.bulk.backfill import Backfill, Progress
    from shared.config.file import TillbridgeConfig
    from shared.core.ports import Queue
    from shared.flows.context import FlowContext
    from shared.flows.segments import SegmentReport
    from shared.monitoring.tracing import TraceStore
    from shared.ops.api import Reply
    from shared.ops.service import OpsService, QueueStats
    from shared.pipeline.crm_changes import Poller, PollReport
    from shared.pipeline.ingress import WebhookReply
    from shared.pipeline.reconcile_all import ReconcileRun
    from shared.pipeline.worker import Worker

log = logging.getLogger("tillbridge.config")
CLOCK = SystemClock()
METRICS = LogMetrics()
quiet_noisy_loggers()


def build_queue(queue: QueueSettings, storage: StorageSettings | None, name: str | None = None) -> Queue:
    """The queue named `name` (default: the Square events queue) on the configured backend."""
    name = name or queue.events_queue
    if queue.backend == "storagequeue":
        from shared.adapters.storage_queue import storage_queue

        if storage is None or not storage.connection_string:
            raise ConfigurationError(
                ["AzureWebJobsStorage: a connection string is needed for QUEUE_BACKEND=storagequeue"]
            )
        return storage_queue(storage.connection_string, name)
    from shared.adapters.servicebus_queue import ServiceBusQueue, servicebus_sender_factory

    return ServiceBusQueue(
        servicebus_sender_factory(
            name,
            connection=queue.servicebus_connection,
            namespace=queue.servicebus_namespace,
            client_id=queue.servicebus_client_id,
        ),
        queue.servicebus_max_message_bytes,
    )


def _observe() -> None:
    """Telemetry and the log redaction, once, when the first component is built."""
    from shared.monitoring import otel, redaction

    redaction.install()
    otel.configure()


class Ingress:
    """What the webhook needs: its settings and the queue (it keeps working while the CRM side is broken)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        _observe()
        self.settings: IngressSettings = load_ingress_settings(env)
        self.queue: Queue = build_queue(self.settings.queue, self.settings.storage)


class Backend:
    """Everything behind the queue: clients, state, traces, the worker and the operations service."""

    def __init__(self, env: Mapping[str, str], ingress_queue: Queue | None) -> None:
        _observe()
        self.settings: Settings = load_settings(env)
        self._ingress_queue = ingress_queue
        # The configuration file: an invalid one stops processing (the worker holds every message) but
        # not the admin API and console, which say what is wrong; never half-applied.
        from shared.config.file import load_for_app

        self.config: TillbridgeConfig | None
        self.config, self.config_status = load_for_app(
            env, prefix=self.settings.sync.prefix, legacy_owners=self.settings.sales.location_owners
        )
        if self.config is None:
            log.error(
                "configuration file is invalid; no event is processed until it is fixed:\n%s",
                "\n".join(self.config_status.problems),
            )

    @cached_property
    def queue(self) -> Queue:
        return self._ingress_queue or build_queue(self.settings.queue, self.settings.storage)

    @cached_property
    def crm_queue(self) -> Queue:
        """CRM contact changes for the crm-contacts flow (two-way sync), separate from Square's events."""
        return build_queue(self.settings.queue, self.settings.storage, self.settings.queue.crm_events_queue)

    @cached_property
    def dataverse(self) -> DataverseClient:
        from shared.adapters.dataverse_auth import app_users
        from shared.adapters.dataverse_http import AppUser, DataverseClient, make_http_client
        from shared.adapters.rate_gate import Budget, gate_for

        dv = self.settings.dataverse
        budget = Budget(
            requests_per_window=dv.requests_per_window,
            execution_seconds_per_window=dv.execution_seconds_per_window,
            instances=dv.max_instances,
        )
        users = [AppUser(tokens, gate_for(key, dv.max_concurrency, budget=budget)) for key, tokens in app_users(dv)]
        return DataverseClient(
            base_url=dv.url,
            api_version=dv.api_version,
            users=users,
            http=make_http_client(dv.timeout_seconds),
            max_inline_wait_seconds=dv.max_inline_wait_seconds,
        )

    @cached_property
    def square(self) -> SquareClient:
        from shared.adapters.dataverse_http import make_http_client
        from shared.adapters.square_http import SquareClient

        sq = self.settings.square
        return SquareClient(
            base_url=sq.base_url,
            access_token=sq.access_token,
            api_version=sq.api_version,
            http=make_http_client(sq.timeout_seconds),
        )

    def backfill(self, *, dry_run: bool, progress: Progress | None = None, source: str = "backfill") -> Backfill:
        from shared.bulk.backfill import Backfill
        from shared.bulk.context import BulkContext
        from shared.bulk.writer import BulkWriter

        bulk = self.settings.bulk
        bc = BulkContext(
            ctx=self.flow_context,
            writer=BulkWriter(self.dataverse, bulk.request_size),
            queue=self.queue,
            dry_run=dry_run,
            source=source,
        )
        from shared.bulk.history import SquareHistory

        history = SquareHistory(self.square)
        return Backfill(bc, history, chunk_size=bulk.backfill_chunk, progress=progress)

    @cached_property
    def state(self) -> TableStateStore:
        from shared.adapters.table_state import table_state_store

        st = self.settings.storage
        return table_state_store(st.connection_string, st.table_endpoint, st.client_id, st.table_prefix)

    @cached_property
    def traces(self) -> TraceStore:
        from shared.adapters.trace_store import trace_store

        st = self.settings.storage
        return trace_store(
            st.connection_string,
            st.table_endpoint,
            st.blob_endpoint,
            st.client_id,
            st.table_prefix,
            snapshot_mode=self.settings.sync.trace_snapshots,
        )

    @cached_property
    def flow_context(self) -> FlowContext:
        from shared.flows.context import FlowContext, SalesOptions
        from shared.flows.customer_mapping import ContactColumns
        from shared.flows.ownership import ConflictRule, CrmDeletes, TwoWayOptions

        sync, sales, two_way = self.settings.sync, self.settings.sales, self.settings.two_way
        owners = self.config.locations if self.config is not None else sales.location_owners
        return FlowContext(
            dataverse=self.dataverse,
            square=self.square,
            state=self.state,
            clock=CLOCK,
            metrics=METRICS,
            columns=ContactColumns(sync.prefix),
            phone_region=sync.default_phone_region,
            sales=SalesOptions(sales.guest_checkout, owners, sales.refund_case_threshold),
            config=self.config,
            two_way=TwoWayOptions(
                conflicts=ConflictRule(two_way.conflicts),
                crm_deletes=CrmDeletes(two_way.crm_deletes),
                create_in_square=two_way.create_in_square,
                push_queue=self.crm_queue,
            ),
        )

    @cached_property
    def worker(self) -> Worker:
        from shared.pipeline.worker import RetryPolicy, Worker

        q = self.settings.queue
        policy = RetryPolicy(
            q.max_delivery_attempts, q.retry_base_seconds, q.retry_max_seconds, q.held_redelivery_seconds
        )
        from shared.bulk.writer import BulkWriter
        from shared.pipeline.batch import BulkOptions

        bulk = BulkOptions(
            BulkWriter(self.dataverse, self.settings.bulk.request_size), self.settings.bulk.worker_batch_threshold
        )
        blocked = None if self.config is not None else f"the configuration file {self.config_status.file} is invalid"
        return Worker(
            ctx=self.flow_context, retry_queue=self.queue, policy=policy, traces=self.traces, blocked=blocked, bulk=bulk
        )

    @cached_property
    def crm_worker(self) -> Worker:
        """The worker of the crm-events queue: the same routing, its retries and held messages on its queue."""
        from shared.pipeline.worker import Worker

        worker = self.worker
        return Worker(
            ctx=worker.ctx, retry_queue=self.crm_queue, policy=worker.policy, traces=self.traces, blocked=worker.blocked
        )

    @cached_property
    def poller(self) -> Poller:
        from shared.flows.crm_contacts import contact_select
        from shared.flows.two_way import contact_fields, owners
        from shared.pipeline.crm_changes import Poller, PollSettings

        ctx = self.flow_context
        two_way = self.settings.two_way
        settings = PollSettings(
            select=contact_select(contact_fields(ctx), ctx.columns),
            key_column=ctx.columns.square_id,
            page_size=two_way.page_size,
            catch_up_lag=timedelta(seconds=two_way.catch_up_lag_seconds),
        )
        from shared.pipeline.registry import CRM_CONTACTS_FLOW

        enabled = ctx.configuration.flow_enabled(CRM_CONTACTS_FLOW)  # `flows: {crm-contacts: false}` stops the poll
        return Poller(self.dataverse, self.state, self.crm_queue, METRICS, ctx.two_way, owners(ctx), settings, enabled)

    @cached_property
    def queue_stats(self) -> QueueStats:
        queue = self.settings.queue
        if queue.backend == "storagequeue":
            from shared.adapters.storage_queue import StorageQueueStats

            return StorageQueueStats(self.settings.storage.connection_string, queue.events_queue)
        from shared.adapters.servicebus_queue import ServiceBusQueueStats

        return ServiceBusQueueStats(
            queue.events_queue,
            connection=queue.servicebus_connection,
            namespace=queue.servicebus_namespace,
            client_id=queue.servicebus_client_id,
        )

    @cached_property
    def ops(self) -> OpsService:
        from shared.bulk.jobs import BackfillJobs
        from shared.ops.service import OpsService
        from shared.pipeline.registry import CRM_CONTACTS_FLOW

        previewer = None
        if self.config is not None:
            from shared.flows.preview import preview

            async def previewer(kind: str, square_id: str) -> dict[str, Any]:
                return await preview(self.flow_context, kind, square_id)

        service = OpsService(
            self.state,
            self.traces,
            self.queue,
            CLOCK,
            self.queue_stats,
            config_status=self.config_status,
            previewer=previewer,
            flow_queues={CRM_CONTACTS_FLOW: self.crm_queue},
        )
        service.jobs = BackfillJobs(
            self.state, CLOCK, lambda dry_run, progress: self.backfill(dry_run=dry_run, progress=progress)
        )
        return service


_ingress: Ingress | None = None
_backend: Backend | None = None


def ingress() -> Ingress:
    global _ingress
    if _ingress is None:
        _ingress = Ingress(os.environ)
    return _ingress


def backend() -> Backend:
    global _backend
    if _backend is None:
        _backend = Backend(os.environ, _ingress.queue if _ingress is not None else None)
    return _backend


def reset() -> None:
    """Forget built parts (tests and the local host call this after changing settings)."""
    global _ingress, _backend
    _ingress = _backend = None


# ---- entry points (one call per trigger) ----


async def receive(body: bytes, signature: str | None) -> WebhookReply:
    from shared.pipeline.ingress import WebhookReply, receive_webhook

    try:
        parts = ingress()
    except ConfigurationError as error:
        return WebhookReply(500, {"error": {"code": "configuration_error", "message": str(error)}})
    return await receive_webhook(
        body, signature, settings=parts.settings.webhook, queue=parts.queue, clock=CLOCK, metrics=METRICS
    )


def worker() -> Worker:
    return backend().worker


def crm_worker() -> Worker:
    return backend().crm_worker


async def poll_crm_changes() -> PollReport:
    """Contact edits read from Dataverse change tracking, queued for the crm-contacts flow."""
    parts = backend()
    if parts.config is None:  # an invalid configuration file: no owners to go by, nothing is read
        from shared.pipeline.crm_changes import PollReport

        return PollReport("off", CLOCK.now().isoformat(), reason="the configuration file is invalid")
    return await parts.poller.poll(CLOCK.now())


async def reconcile() -> ReconcileRun:
    """Every kind changed in Square since its watermark, then the next slice of linked customers checked
    for deletes and merges whose webhooks never arrived; the run's report is kept for health and console."""
    from shared.bulk.history import SquareHistory
    from shared.pipeline.reconcile_all import Reconciler, reconcile_everything

    parts = backend()
    sync = parts.settings.sync
    reconciler = Reconciler(
        square=parts.square,
        history=SquareHistory(parts.square),
        state=parts.state,
        queue=parts.queue,
        now=CLOCK.now(),
        lag=timedelta(seconds=sync.reconcile_lag_seconds),
        first_lookback=timedelta(hours=sync.reconcile_first_lookback_hours),
        sweep_batch=sync.reconcile_sweep_batch,
    )
    return await reconcile_everything(reconciler, METRICS)


async def segments() -> SegmentReport:
    """Segment lists in step with the aggregates that changed, and the inactivity rules; nothing while the
    configuration file is invalid."""
    from shared.flows.segments import SegmentReport, run_segments

    parts = backend()
    if parts.config is None:
        log.error("segments: not run, the configuration file %s is invalid", parts.config_status.file)
        return SegmentReport(run_at=CLOCK.now().isoformat(), skipped="invalid configuration file")
    return await run_segments(parts.flow_context, parts.traces)


async def ops(method: str, path: str, query: dict[str, str], body: bytes) -> Reply:
    from shared.ops.api import handle

    return await handle(backend().ops, method, path, query, body)


async def purge_traces() -> int:
    parts = backend()
    retention = timedelta(days=parts.settings.sync.trace_retention_days)
    return await parts.traces.purge(CLOCK.now() - retention)
