"""Builds the worker's real adapters from settings (called by the composition root, once)."""

from __future__ import annotations

from shared.adapters.dataverse_auth import token_provider, user_key
from shared.adapters.dataverse_http import DataverseClient, make_http_client
from shared.adapters.rate_gate import gate_for
from shared.adapters.square_http import SquareClient
from shared.adapters.table_state import table_state_store
from shared.adapters.trace_store import trace_store
from shared.config import Settings
from shared.flows.context import FlowContext, SalesOptions
from shared.flows.customer_mapping import ContactColumns
from shared.ops.service import QueueStats
from shared.ports import Clock, Metrics, Queue
from shared.worker import RetryPolicy, Worker


def build_worker(settings: Settings, queue: Queue, policy: RetryPolicy, clock: Clock, metrics: Metrics) -> Worker:
    dv = settings.dataverse
    dataverse = DataverseClient(
        base_url=dv.url,
        api_version=dv.api_version,
        tokens=token_provider(dv),
        gate=gate_for(user_key(dv), dv.max_concurrency),
        http=make_http_client(dv.timeout_seconds),
        max_inline_wait_seconds=dv.max_inline_wait_seconds,
    )
    sq = settings.square
    square = SquareClient(
        base_url=sq.base_url,
        access_token=sq.access_token,
        api_version=sq.api_version,
        http=make_http_client(sq.timeout_seconds),
    )
    st = settings.storage
    state = table_state_store(st.connection_string, st.table_endpoint, st.client_id, st.table_prefix)
    ctx = FlowContext(
        dataverse=dataverse,
        square=square,
        state=state,
        clock=clock,
        metrics=metrics,
        columns=ContactColumns(settings.sync.prefix),
        phone_region=settings.sync.default_phone_region,
        sales=SalesOptions(
            settings.sales.guest_checkout, settings.sales.location_owners, settings.sales.refund_case_threshold
        ),
    )
    traces = trace_store(
        st.connection_string,
        st.table_endpoint,
        st.blob_endpoint,
        st.client_id,
        st.table_prefix,
        snapshot_mode=settings.sync.trace_snapshots,
    )
    return Worker(ctx=ctx, retry_queue=queue, policy=policy, traces=traces)


def queue_stats(settings: Settings) -> QueueStats:
    queue = settings.queue
    if queue.backend == "storagequeue":
        from shared.adapters.storage_queue import StorageQueueStats

        return StorageQueueStats(settings.storage.connection_string, queue.events_queue)
    from shared.adapters.servicebus_queue import ServiceBusQueueStats

    return ServiceBusQueueStats(
        queue.events_queue,
        connection=queue.servicebus_connection,
        namespace=queue.servicebus_namespace,
        client_id=queue.servicebus_client_id,
    )
