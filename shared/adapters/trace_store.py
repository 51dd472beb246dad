"""Traces in Table Storage (one row per attempt, holding the queue message for replay) with the
snapshots of each attempt in Blob Storage; expired rows and blobs are purged by a timer."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, TableServiceClient, UpdateMode
from azure.storage.blob import BlobServiceClient, ContainerClient

from shared.adapters.blocking import run_blocking
from shared.adapters.table_state import MAX_TEXT, table_key
from shared.monitoring.tracing import AttemptTrace, TraceSummary

MAX_INLINE_COMMAND = 30_000  # characters of a queue message kept in the events row (a property holds 32K)


def trace_partition(flow: str, record_id: str) -> str:
    """One partition per record: its attempts are read together for the timeline."""
    return table_key(flow, record_id)


def trace_row(started_at: str, event_id: str, attempt: int) -> str:
    return table_key(started_at, event_id, f"{attempt:03d}")


def _blob_segment(value: str) -> str:
    """A value as one segment of a blob name: a key, and never "." or ".." (a URL would climb out of it)."""
    key = table_key(value)
    return key if key.strip(".") else key.replace(".", "~2E")


def snapshot_name(started_at: str, flow: str, record_id: str, event_id: str, attempt: int) -> str:
    started = datetime.fromisoformat(started_at)
    return f"{started:%Y/%m/%d}/{_blob_segment(flow)}/{_blob_segment(record_id)}/{table_key(event_id)}-{attempt}.json"


class TableBlobTraceStore:
    def __init__(
        self, tables: TableServiceClient, blobs: BlobServiceClient, prefix: str, snapshot_mode: str = "all"
    ) -> None:
        self._tables, self._blobs = tables, blobs
        self._snapshot_mode = snapshot_mode
        self._names = {"traces": f"{prefix}traces"}
        self._container_name = f"{prefix}-snapshots"
        self._clients: dict[str, TableClient] = {}
        self._container: ContainerClient | None = None

    def _table(self, name: str) -> TableClient:
        if name not in self._clients:
            self._clients[name] = self._tables.create_table_if_not_exists(self._names[name])
        return self._clients[name]

    def _snapshots(self) -> ContainerClient:
        if self._container is None:
            container = self._blobs.get_container_client(self._container_name)
            with contextlib.suppress(ResourceExistsError):
                container.create_container()
            self._container = container
        return self._container

    @staticmethod
    def _ref(trace: AttemptTrace) -> str:
        return snapshot_name(trace.started_at, trace.flow, trace.record_id, trace.event_id, trace.attempt)

    def _upload(self, trace: AttemptTrace) -> None:
        if self._snapshot_mode == "failures" and trace.outcome not in ("failed", "retry_scheduled"):
            return
        document = {
            "snapshots": trace.snapshots,
            "exchanges": trace.exchanges,
            "command": json.loads(trace.command_json),
        }
        self._snapshots().upload_blob(self._ref(trace), json.dumps(document, default=str), overwrite=True)

    def _row(self, trace: AttemptTrace) -> None:
        steps = json.dumps([asdict(s) for s in trace.steps], default=str)
        command = trace.command_json if len(trace.command_json) <= MAX_INLINE_COMMAND else ""
        self._table("traces").upsert_entity(
            {
                "PartitionKey": trace_partition(trace.flow, trace.record_id),
                "RowKey": trace_row(trace.started_at, trace.event_id, trace.attempt),
                "flow": trace.flow,
                "record_id": trace.record_id,
                "event_id": trace.event_id,
                "event_type": trace.event_type,
                "attempt": trace.attempt,
                "delivery_count": trace.delivery_count,
                "started_at": trace.started_at,
                "outcome": trace.outcome,
                "steps": steps[: MAX_TEXT * 3],
                "snapshot_ref": self._ref(trace),
                "command": command,
            },
            mode=UpdateMode.REPLACE,
        )

    async def save(self, trace: AttemptTrace) -> None:
        """The row and the snapshot are written side by side (one round trip of latency, not two)."""
        await asyncio.gather(run_blocking(self._row, trace), run_blocking(self._upload, trace))

    def _timeline(self, flow: str, record_id: str) -> list[TraceSummary]:
        rows = self._table("traces").query_entities(
            "PartitionKey eq @pk", parameters={"pk": trace_partition(flow, record_id)}
        )
        summaries = [
            TraceSummary(
                flow=str(r["flow"]),
                record_id=str(r["record_id"]),
                event_id=str(r["event_id"]),
                event_type=str(r["event_type"]),
                attempt=int(r["attempt"]),
                delivery_count=int(r.get("delivery_count", 1)),
                started_at=str(r["started_at"]),
                outcome=str(r["outcome"]),
                steps=json.loads(r.get("steps") or "[]"),
                snapshot_ref=str(r["snapshot_ref"]),
            )
            for r in rows
        ]
        return sorted(summaries, key=lambda s: (s.started_at, s.attempt))

    async def timeline(self, flow: str, record_id: str) -> list[TraceSummary]:
        return await run_blocking(self._timeline, flow, record_id)

    def _snapshot(self, ref: str) -> dict[str, Any] | None:
        try:
            document: dict[str, Any] = json.loads(self._snapshots().download_blob(ref).readall())
        except ResourceNotFoundError:
            return None
        return document

    async def snapshot(self, ref: str) -> dict[str, Any] | None:
        return await run_blocking(self._snapshot, ref)

    def _received_between(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """First attempts started in [start, end): a filtered scan, acceptable for a rare admin action."""
        query = "attempt eq 1 and started_at ge @start and started_at lt @end"
        bounds = {"start": start.astimezone(UTC).isoformat(), "end": end.astimezone(UTC).isoformat()}
        found: list[dict[str, Any]] = []
        for row in self._table("traces").query_entities(query, parameters=bounds):
            command = row.get("command") or json.dumps(
                (self._snapshot(str(row["snapshot_ref"])) or {}).get("command", {})
            )
            found.append(json.loads(command))
        return sorted(found, key=lambda c: str(c.get("received_at", "")))

    async def received_between(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        return await run_blocking(self._received_between, start, end)

    def _purge(self, before: datetime) -> int:
        removed = 0
        traces = self._table("traces")
        stamp = before.astimezone(UTC).isoformat()
        for row in list(traces.query_entities("started_at lt @before", parameters={"before": stamp})):
            with contextlib.suppress(ResourceNotFoundError):
                self._snapshots().delete_blob(str(row["snapshot_ref"]))
            traces.delete_entity(row["PartitionKey"], row["RowKey"])
            removed += 1
        return removed

    async def purge(self, before: datetime) -> int:
        return await run_blocking(self._purge, before)


def trace_store(
    connection_string: str,
    table_endpoint: str,
    blob_endpoint: str,
    client_id: str,
    prefix: str,
    *,
    snapshot_mode: str = "all",
) -> TableBlobTraceStore:
    from shared.adapters.http_pool import pooled_transport

    if connection_string:
        tables = TableServiceClient.from_connection_string(connection_string, transport=pooled_transport())
        blobs = BlobServiceClient.from_connection_string(connection_string, transport=pooled_transport())
    else:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential(managed_identity_client_id=client_id or None)
        tables = TableServiceClient(table_endpoint, credential=credential, transport=pooled_transport())
        blobs = BlobServiceClient(blob_endpoint, credential=credential, transport=pooled_transport())
    return TableBlobTraceStore(tables, blobs, prefix, snapshot_mode)
