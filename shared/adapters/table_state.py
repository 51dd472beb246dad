"""State in Azure Table Storage: the ledger (ETag-guarded) and failure records.

The sync SDK runs in worker threads (the async one would pull aiohttp into production).
Row keys are Square ids; Table Storage forbids / \\ # ? and control characters, so they are escaped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import fields
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, TableServiceClient, UpdateMode

from shared.adapters.blocking import run_blocking
from shared.adapters.table_ledger_bulk import TRANSACTION_SIZE, write_many
from shared.core.errors import ConcurrencyError
from shared.core.failures import merge_failure
from shared.core.ports import FailureRecord, FlowStatus, LedgerRow

T = TypeVar("T")
_FORBIDDEN = re.compile(r"[/\\#?\x00-\x1f\x7f]")
MAX_TEXT = 8000  # characters kept of a free-text property (a property holds 64 KiB of UTF-16)


def safe_key(value: str) -> str:
    return _FORBIDDEN.sub(lambda m: f"%{ord(m.group()):02X}", value)[:512]


def _ledger_entity(row: LedgerRow) -> dict[str, Any]:
    entity: dict[str, Any] = {"PartitionKey": row.kind, "RowKey": safe_key(row.square_id)}
    for field in fields(LedgerRow):
        if field.name in ("kind", "square_id", "etag"):
            continue
        value = getattr(row, field.name)
        if value is not None:
            entity[field.name] = str(value) if field.name.endswith("version") else value
    return entity


def _ledger_row(entity: dict[str, Any], square_id: str) -> LedgerRow:
    row = LedgerRow(kind=str(entity["PartitionKey"]), square_id=square_id)
    for field in fields(LedgerRow):
        if field.name in entity and field.name not in ("kind", "square_id", "etag"):
            value = entity[field.name]
            setattr(row, field.name, int(value) if field.name.endswith("version") else value)
    row.etag = entity.metadata.get("etag") if hasattr(entity, "metadata") else None
    return row


def _failure_entity(failure: FailureRecord) -> dict[str, Any]:
    return {
        "PartitionKey": failure.flow,
        "RowKey": safe_key(failure.record_id),
        "record_id": failure.record_id,
        "reason_code": failure.reason_code,
        "message": failure.message[:MAX_TEXT],
        "event_id": failure.event_id,
        "event_type": failure.event_type,
        "field": failure.field or "",
        "candidates": json.dumps(list(failure.candidates)),
        "attempts": failure.attempts,
        "first_seen": failure.first_seen,
        "last_seen": failure.last_seen,
        "status": failure.status,
        "source_version": failure.source_version,
    }


def _failure(entity: dict[str, Any]) -> FailureRecord:
    return FailureRecord(
        flow=str(entity["PartitionKey"]),
        record_id=str(entity.get("record_id", entity["RowKey"])),
        reason_code=str(entity.get("reason_code", "")),
        message=str(entity.get("message", "")),
        event_id=str(entity.get("event_id", "")),
        event_type=str(entity.get("event_type", "")),
        field=str(entity.get("field") or "") or None,
        candidates=tuple(json.loads(entity.get("candidates") or "[]")),
        attempts=int(entity.get("attempts", 1)),
        first_seen=str(entity.get("first_seen", "")),
        last_seen=str(entity.get("last_seen", "")),
        status=str(entity.get("status", "open")),
        source_version=str(entity.get("source_version", "")),
    )


class TableStateStore:
    def __init__(self, service: TableServiceClient, prefix: str) -> None:
        self._service = service
        self._names = {
            "docs": f"{prefix}docs",
            "ledger": f"{prefix}ledger",
            "failures": f"{prefix}failures",
            "cursors": f"{prefix}cursors",
            "flows": f"{prefix}flows",
        }
        self._clients: dict[str, TableClient] = {}

    def _table(self, name: str) -> TableClient:
        client = self._clients.get(name)
        if client is None:
            client = self._service.create_table_if_not_exists(self._names[name])
            self._clients[name] = client
        return client

    def _get_ledger(self, kind: str, square_id: str) -> LedgerRow | None:
        try:
            entity = self._table("ledger").get_entity(kind, safe_key(square_id))
        except ResourceNotFoundError:
            return None
        return _ledger_row(entity, square_id)

    def _save_ledger(self, row: LedgerRow) -> LedgerRow:
        table = self._table("ledger")
        entity = _ledger_entity(row)
        try:
            if row.etag is None:
                written = table.create_entity(entity)
            else:
                written = table.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=row.etag, match_condition=MatchConditions.IfNotModified
                )
        except ResourceExistsError as error:
            raise ConcurrencyError(f"ledger row {row.kind}/{row.square_id} was created concurrently") from error
        except HttpResponseError as error:
            if error.status_code in (409, 412):
                raise ConcurrencyError(f"ledger row {row.kind}/{row.square_id} changed concurrently") from error
            raise
        row.etag = written.get("etag")
        return row

    def _record_failure(self, failure: FailureRecord) -> None:
        table = self._table("failures")
        existing = self._get_failure(failure.flow, failure.record_id)
        table.upsert_entity(_failure_entity(merge_failure(existing, failure)), mode=UpdateMode.REPLACE)

    def _resolve_failure(self, flow: str, record_id: str, note: str, status: str) -> None:
        table = self._table("failures")
        entity = {"PartitionKey": flow, "RowKey": safe_key(record_id), "status": status, "note": note[:MAX_TEXT]}
        with contextlib.suppress(ResourceNotFoundError):
            table.update_entity(entity, mode=UpdateMode.MERGE)

    def _list_failures(self, flow: str | None) -> list[FailureRecord]:
        table = self._table("failures")
        entities = (
            table.query_entities("PartitionKey eq @flow", parameters={"flow": flow}) if flow else table.list_entities()
        )
        return [_failure(entity) for entity in entities]

    def _list_ledger(self, kind: str) -> list[LedgerRow]:
        entities = self._table("ledger").query_entities("PartitionKey eq @kind", parameters={"kind": kind})
        return [_ledger_row(entity, str(entity["RowKey"])) for entity in entities]

    def _ledger_page(self, kind: str, after: str | None, limit: int) -> tuple[list[LedgerRow], str | None]:
        query, parameters = "PartitionKey eq @kind", {"kind": kind}
        if after is not None:
            query, parameters = query + " and RowKey gt @after", {**parameters, "after": after}
        rows: list[LedgerRow] = []
        last_key: str | None = None
        for entity in self._table("ledger").query_entities(query, parameters=parameters, results_per_page=limit):
            if len(rows) == limit:
                return rows, last_key
            rows.append(_ledger_row(entity, str(entity["RowKey"])))
            last_key = str(entity["RowKey"])
        return rows, None

    async def ledger_page(self, kind: str, after: str | None, limit: int) -> tuple[list[LedgerRow], str | None]:
        return await run_blocking(self._ledger_page, kind, after, limit)

    def _get_cursor(self, name: str) -> str | None:
        try:
            return str(self._table("cursors").get_entity("cursor", safe_key(name))["value"])
        except ResourceNotFoundError:
            return None

    def _set_cursor(self, name: str, value: str) -> None:
        entity = {"PartitionKey": "cursor", "RowKey": safe_key(name), "value": value}
        self._table("cursors").upsert_entity(entity, mode=UpdateMode.REPLACE)

    async def get_cursor(self, name: str) -> str | None:
        return await run_blocking(self._get_cursor, name)

    async def set_cursor(self, name: str, value: str) -> None:
        await run_blocking(self._set_cursor, name, value)

    async def get_ledger(self, kind: str, square_id: str) -> LedgerRow | None:
        return await run_blocking(self._get_ledger, kind, square_id)

    async def get_ledgers(self, kind: str, square_ids: Sequence[str]) -> dict[str, LedgerRow | None]:
        """Point reads side by side: the one look-up Table Storage serves from its index (an `or` of RowKeys
        scans the partition, which holds every object of the kind)."""
        unique = list(dict.fromkeys(square_ids))
        rows = await _limited((run_blocking(self._get_ledger, kind, square_id) for square_id in unique), 16)
        return dict(zip(unique, rows, strict=True))

    async def save_ledgers(self, rows: Sequence[LedgerRow]) -> list[LedgerRow | Exception]:
        """Transactions of TRANSACTION_SIZE rows each, side by side; results in the order of the rows."""
        table = self._table("ledger")
        parts = await _limited(
            run_blocking(write_many, table, rows[start : start + TRANSACTION_SIZE], _ledger_entity, self._save_ledger)
            for start in range(0, len(rows), TRANSACTION_SIZE)
        )
        return [result for part in parts for result in part]

    async def save_ledger(self, row: LedgerRow) -> LedgerRow:
        return await run_blocking(self._save_ledger, row)

    async def record_failure(self, failure: FailureRecord) -> None:
        await run_blocking(self._record_failure, failure)

    async def resolve_failure(self, flow: str, record_id: str, note: str, status: str = "resolved") -> None:
        await run_blocking(self._resolve_failure, flow, record_id, note, status)

    def _get_failure(self, flow: str, record_id: str) -> FailureRecord | None:
        try:
            return _failure(self._table("failures").get_entity(flow, safe_key(record_id)))
        except ResourceNotFoundError:
            return None

    async def get_failure(self, flow: str, record_id: str) -> FailureRecord | None:
        return await run_blocking(self._get_failure, flow, record_id)

    def _get_doc(self, kind: str, doc_id: str) -> tuple[dict[str, Any] | None, str | None]:
        try:
            entity = self._table("docs").get_entity(kind, safe_key(doc_id))
        except ResourceNotFoundError:
            return None, None
        return json.loads(entity["doc"]), entity.metadata.get("etag")

    async def get_doc(self, kind: str, doc_id: str) -> tuple[dict[str, Any] | None, str | None]:
        return await run_blocking(self._get_doc, kind, doc_id)

    def _put_doc(self, kind: str, doc_id: str, document: dict[str, Any], etag: str | None) -> str:
        table = self._table("docs")
        text = json.dumps(document, default=str)
        if len(text) > 30_000:
            raise ValueError(f"document {kind}/{doc_id} is {len(text)} characters; the limit is 30,000")
        entity = {"PartitionKey": kind, "RowKey": safe_key(doc_id), "doc": text}
        try:
            if etag is None:
                written = table.create_entity(entity)
            else:
                written = table.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
                )
        except ResourceExistsError as error:
            raise ConcurrencyError(f"document {kind}/{doc_id} was created concurrently") from error
        except HttpResponseError as error:
            if error.status_code in (409, 412):
                raise ConcurrencyError(f"document {kind}/{doc_id} changed concurrently") from error
            raise
        return str(written.get("etag"))

    async def put_doc(self, kind: str, doc_id: str, document: dict[str, Any], etag: str | None) -> str:
        return await run_blocking(self._put_doc, kind, doc_id, document, etag)

    def _get_flow(self, flow: str) -> FlowStatus:
        try:
            row = self._table("flows").get_entity("flow", flow)
        except ResourceNotFoundError:
            return FlowStatus(flow)
        return FlowStatus(
            flow,
            bool(row.get("paused")),
            str(row.get("note", "")),
            str(row.get("changed_at", "")),
            str(row.get("last_written_at", "")),
        )

    async def get_flow(self, flow: str) -> FlowStatus:
        return await run_blocking(self._get_flow, flow)

    def _save_flow(self, status: FlowStatus) -> None:
        entity = {
            "PartitionKey": "flow",
            "RowKey": status.flow,
            "paused": status.paused,
            "note": status.note[:MAX_TEXT],
            "changed_at": status.changed_at,
            "last_written_at": status.last_written_at,
        }
        self._table("flows").upsert_entity(entity, mode=UpdateMode.REPLACE)

    async def save_flow(self, status: FlowStatus) -> None:
        await run_blocking(self._save_flow, status)

    async def list_failures(self, flow: str | None = None) -> list[FailureRecord]:
        return await run_blocking(self._list_failures, flow)

    async def list_ledger(self, kind: str) -> list[LedgerRow]:
        return await run_blocking(self._list_ledger, kind)


BULK_CALLS_IN_FLIGHT = 4  # queries or transactions of one bulk call side by side (more only queue at the server)


async def _limited(calls: Iterable[Awaitable[T]], limit: int = BULK_CALLS_IN_FLIGHT) -> list[T]:
    slots = asyncio.Semaphore(limit)

    async def one(call: Awaitable[T]) -> T:
        async with slots:
            return await call

    return list(await asyncio.gather(*(one(call) for call in calls)))


def table_state_store(connection_string: str, endpoint: str, client_id: str, prefix: str) -> TableStateStore:
    """Connection string (Azurite, or keys) or identity-based endpoint (managed identity in Azure)."""
    from shared.adapters.http_pool import pooled_transport

    if connection_string:
        service = TableServiceClient.from_connection_string(connection_string, transport=pooled_transport())
    else:
        from azure.identity import DefaultAzureCredential

        service = TableServiceClient(
            endpoint,
            credential=DefaultAzureCredential(managed_identity_client_id=client_id or None),
            transport=pooled_transport(),
        )
    return TableStateStore(service, prefix)
