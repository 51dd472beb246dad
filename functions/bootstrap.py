"""The composition root: settings and clients are built here, lazily, on first use (never at import)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from shared.config import (
    IngressSettings,
    QueueSettings,
    Settings,
    StorageSettings,
    load_ingress_settings,
    load_settings,
)
from shared.errors import ConfigurationError
from shared.telemetry import LogMetrics, SystemClock, quiet_noisy_loggers

if TYPE_CHECKING:  # the heavy modules load on first use, keeping cold start short
    from shared.ingress import WebhookReply
    from shared.ops.api import Reply
    from shared.ops.service import OpsService
    from shared.ports import Queue
    from shared.reconcile import ReconcileReport
    from shared.worker import Worker

CLOCK = SystemClock()
METRICS = LogMetrics()
quiet_noisy_loggers()


def _build_queue(queue: QueueSettings, storage: StorageSettings | None) -> Queue:
    if queue.backend == "storagequeue":
        from shared.adapters.storage_queue import storage_queue

        if storage is None or not storage.connection_string:
            raise ConfigurationError(
                ["AzureWebJobsStorage: a connection string is needed for QUEUE_BACKEND=storagequeue"]
            )
        return storage_queue(storage.connection_string, queue.events_queue)
    from shared.adapters.servicebus_queue import ServiceBusQueue, servicebus_sender_factory

    return ServiceBusQueue(
        servicebus_sender_factory(
            queue.events_queue,
            connection=queue.servicebus_connection,
            namespace=queue.servicebus_namespace,
            client_id=queue.servicebus_client_id,
        )
    )


@dataclass
class _Ingress:
    settings: IngressSettings
    queue: Queue


@dataclass
class _Backend:
    settings: Settings
    worker: Worker


_ingress: _Ingress | None = None
_ops: OpsService | None = None
_backend: _Backend | None = None


def _observe() -> None:
    """Telemetry and the log redaction filter, once, when the first component is built."""
    from shared import observability, redaction

    redaction.install()
    observability.configure()


def _ingress_parts() -> _Ingress:
    global _ingress
    if _ingress is None:
        _observe()
        settings = load_ingress_settings(os.environ)
        _ingress = _Ingress(settings, _build_queue(settings.queue, settings.storage))
    return _ingress


def _backend_parts() -> _Backend:
    global _backend
    if _backend is None:
        _observe()
        from shared.wiring import build_worker
        from shared.worker import RetryPolicy

        settings = load_settings(os.environ)
        queue = _ingress.queue if _ingress is not None else _build_queue(settings.queue, settings.storage)
        policy = RetryPolicy(
            settings.queue.max_delivery_attempts, settings.queue.retry_base_seconds, settings.queue.retry_max_seconds
        )
        _backend = _Backend(settings, build_worker(settings, queue, policy, CLOCK, METRICS))
    return _backend


async def receive(body: bytes, signature: str | None) -> WebhookReply:
    from shared.ingress import WebhookReply, receive_webhook

    try:
        ingress = _ingress_parts()
    except ConfigurationError as error:
        return WebhookReply(500, {"error": {"code": "configuration_error", "message": str(error)}})
    return await receive_webhook(
        body, signature, settings=ingress.settings.webhook, queue=ingress.queue, clock=CLOCK, metrics=METRICS
    )


def worker() -> Worker:
    return _backend_parts().worker


async def reconcile() -> ReconcileReport:
    from shared.reconcile import reconcile_customers

    backend = _backend_parts()
    ctx = backend.worker.ctx
    sync = backend.settings.sync
    lag = timedelta(seconds=sync.reconcile_lag_seconds)
    lookback = timedelta(hours=sync.reconcile_first_lookback_hours)
    return await reconcile_customers(
        square=ctx.square,
        state=ctx.state,
        queue=backend.worker.retry_queue,
        now=CLOCK.now(),
        lag=lag,
        first_lookback=lookback,
    )


async def ops(method: str, path: str, query: dict[str, str], body: bytes) -> Reply:
    from shared.ops.api import handle

    return await handle(_ops_service(), method, path, query, body)


def _ops_service() -> OpsService:
    global _ops
    if _ops is None:
        from shared.ops.service import OpsService
        from shared.wiring import queue_stats

        backend = _backend_parts()
        worker = backend.worker
        assert worker.traces is not None
        _ops = OpsService(worker.ctx.state, worker.traces, worker.retry_queue, CLOCK, queue_stats(backend.settings))
    return _ops


async def purge_traces() -> int:
    backend = _backend_parts()
    assert backend.worker.traces is not None
    retention = timedelta(days=backend.settings.sync.trace_retention_days)
    return await backend.worker.traces.purge(CLOCK.now() - retention)


def reset() -> None:
    """Forget built parts (tests and the local host call this after changing settings)."""
    global _ingress, _backend, _ops
    _ingress = _backend = None
    _ops = None
