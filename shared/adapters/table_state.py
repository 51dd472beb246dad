"""State in Azure Table Storage: the ledger (ETag-guarded) and failure records.

The sync SDK runs in worker threads (the async one would pull aiohttp into production).
Row keys are Square ids, written with one injective key scheme (`table_key`, docs/decisions/0010c-…).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
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
MAX_TEXT = 8000  # characters kept of a free-text property (a property holds 64 KiB of UTF-16)

# Table Storage refuses / \ # ? and the control characters U+0000–U+001F and U+007F–U+009F in a
# PartitionKey or RowKey ("Understanding the Table service data model"), and point reads and deletes of
# keys holding % or ' are unreliable (Microsoft's 2012 note on "%"; Azurite #1377). Those, the escape "~"
# and the part separator "|" are written as "~" and two hex digits, a lone surrogate as "~u" and four:
# injective and decodable, and an id made of any other characters (every Square id) is its own key.
ESCAPE, SEPARATOR = "~", "|"
_ESCAPED = frozenset("/\\#?%'") | {ESCAPE, SEPARATOR}
MAX_KEY_UNITS = 512  # a key holds 1 KiB: 512 UTF-16 code units
_HASHED = ESCAPE + "h"  # never made by escaping ("h" is no hex digit): marks a key too long to keep whole
_KEPT_UNITS = MAX_KEY_UNITS - 2 - 64 - 6


def _escaped(char: str) -> str:
    code = ord(char)
    if char in _ESCAPED or code < 0x20 or 0x7F <= code <= 0x9F:
        return f"{ESCAPE}{code:02X}"
    if 0xD800 <= code <= 0xDFFF:
        return f"{ESCAPE}u{code:04X}"
    return char


def _units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def table_key(*parts: str) -> str:
    """The key of a row identified by one or more values (e.g. flow and record id), for any values.

    Over 512 UTF-16 units the key is its first part and a SHA-256 of the whole (the row keeps the values
    themselves as properties), so no two values share a key and none is cut to collide with another.
    """
    key = SEPARATOR.join("".join(_escaped(char) for char in part) for part in parts)
    if _units(key) <= MAX_KEY_UNITS:
        return key
    kept = key[:_KEPT_UNITS]
    while _units(kept) > _KEPT_UNITS:
        kept = kept[:-1]
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()  # of the escaped key: injective, no surrogates left
    return f"{kept}{_HASHED}{digest}"


def _unescape(part: str) -> str:
    pieces, index = [], 0
    while index < len(part):
        char = part[index]
        if char != ESCAPE:
            pieces.append(char)
            index += 1
        elif part[index + 1] == "u":
            pieces.append(chr(int(part[index + 2 : index + 6], 16)))
            index += 6
        else:
            pieces.append(chr(int(part[index + 1 : index + 3], 16)))
            index += 3
    return "".join(pieces)


def decode_key(key: str) -> tuple[str, ...] | None:
    """The values a key was made from; None for a hashed key (its row holds the values)."""
    if _HASHED in key:
        return None
    return tuple(_unescape(part) for part in key.split(SEPARATOR))


# The ledger spreads each kind over a few partitions by a hash of the id: Table Storage serves about 2,000
# entities/s per partition (reference/azure.md §4), and Azurite scans a whole partition for every point
# look-up (LokiJS narrows by PartitionKey first), so one partition per kind made a 100,000-customer
# backfill O(n²) locally (bench/RESULTS.md, "Issue 10"). Point reads still name their partition exactly.
LEDGER_BUCKETS = "0123456789abcdef"


def ledger_bucket(square_id: str) -> str:
    return hashlib.sha256(square_id.encode("utf-8", "surrogatepass")).hexdigest()[0]


def ledger_partition(kind: str, bucket: str) -> str:
    return table_key(kind, bucket)


def ledger_keys(kind: str, square_id: str) -> tuple[str, str]:
    return ledger_partition(kind, ledger_bucket(square_id)), table_key(square_id)


def _page_cursor(bucket: str, row_key: str) -> str:
    return f"{bucket}:{row_key}"


def _page_start(after: str | None) -> tuple[int, str | None]:
    """Where a page starts: the bucket's position and the row key to continue after (a cursor written
    before the ledger had buckets starts over, which a sweep may always do)."""
    if after is None or len(after) < 2 or after[1] != ":" or after[0] not in LEDGER_BUCKETS:
        return 0, None
    return LEDGER_BUCKETS.index(after[0]), after[2:]


def failure_keys(flow: str, record_id: str) -> tuple[str, str]:
    return table_key(flow), table_key(record_id)


def doc_keys(kind: str, doc_id: str) -> tuple[str, str]:
    return table_key(kind), table_key(doc_id)


def cursor_keys(name: str) -> tuple[str, str]:
    return "cursor", table_key(name)


def flow_keys(flow: str) -> tuple[str, str]:
    return "flow", table_key(flow)


def _ledger_entity(row: LedgerRow) -> dict[str, Any]:
    partition, row_key = ledger_keys(row.kind, row.square_id)
    entity: dict[str, Any] = {"PartitionKey": partition, "RowKey": row_key, "square_id": row.square_id}
    for field in fields(LedgerRow):
        if field.name in ("kind", "square_id", "etag"):
            continue
        value = getattr(row, field.name)
        if value is not None:
            entity[field.name] = str(value) if field.name.endswith("version") else value
    return entity


def _square_id(entity: dict[str, Any]) -> str:
    return str(entity.get("square_id") or _decoded(entity["RowKey"]))


def _ledger_row(entity: dict[str, Any], kind: str, square_id: str) -> LedgerRow:
    row = LedgerRow(kind=kind, square_id=square_id)
    for field in fields(LedgerRow):
        if field.name in entity and field.name not in ("kind", "square_id", "etag"):
            value = entity[field.name]
            setattr(row, field.name, int(value) if field.name.endswith("version") else value)
    row.etag = entity.metadata.get("etag") if hasattr(entity, "metadata") else None
    return row


def _failure_entity(failure: FailureRecord) -> dict[str, Any]:
    partition, row_key = failure_keys(failure.flow, failure.record_id)
    return {
        "PartitionKey": partition,
        "RowKey": row_key,
        "flow": failure.flow,
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


def _decoded(key: str) -> str:
    """The id a row key was made from (rows written before the scheme keep their key as it was)."""
    try:
        values = decode_key(key)
    except (ValueError, IndexError):  # an old-scheme key holding a bare "~"
        return key
    return values[0] if values else key


def _failure(entity: dict[str, Any]) -> FailureRecord:
    return FailureRecord(
        flow=str(entity.get("flow") or _decoded(entity["PartitionKey"])),
        record_id=str(entity.get("record_id") or _decoded(entity["RowKey"])),
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
            entity = self._table("ledger").get_entity(*ledger_keys(kind, square_id))
        except ResourceNotFoundError:
            return None
        return _ledger_row(entity, kind, square_id)

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
        partition, row_key = failure_keys(flow, record_id)
        entity = {"PartitionKey": partition, "RowKey": row_key, "status": status, "note": note[:MAX_TEXT]}
        with contextlib.suppress(ResourceNotFoundError):
            table.update_entity(entity, mode=UpdateMode.MERGE)

    def _list_failures(self, flow: str | None) -> list[FailureRecord]:
        table = self._table("failures")
        entities = (
            table.query_entities("PartitionKey eq @flow", parameters={"flow": table_key(flow)})
            if flow
            else table.list_entities()
        )
        return [_failure(entity) for entity in entities]

    def _list_ledger(self, kind: str) -> list[LedgerRow]:
        rows: list[LedgerRow] = []
        for bucket in LEDGER_BUCKETS:
            entities = self._table("ledger").query_entities(
                "PartitionKey eq @partition", parameters={"partition": ledger_partition(kind, bucket)}
            )
            rows += [_ledger_row(entity, kind, _square_id(entity)) for entity in entities]
        return rows

    def _ledger_page(self, kind: str, after: str | None, limit: int) -> tuple[list[LedgerRow], str | None]:
        """Rows bucket by bucket, each in RowKey order; the cursor (opaque to callers) names the last row."""
        first, after_key = _page_start(after)
        rows: list[LedgerRow] = []
        last: str | None = None
        for bucket in LEDGER_BUCKETS[first:]:
            query, parameters = "PartitionKey eq @partition", {"partition": ledger_partition(kind, bucket)}
            if after_key is not None and bucket == LEDGER_BUCKETS[first]:
                query, parameters = query + " and RowKey gt @after", {**parameters, "after": after_key}
            for entity in self._table("ledger").query_entities(query, parameters=parameters, results_per_page=limit):
                if len(rows) == limit:
                    return rows, last
                rows.append(_ledger_row(entity, kind, _square_id(entity)))
                last = _page_cursor(bucket, str(entity["RowKey"]))
        return rows, None

    async def ledger_page(self, kind: str, after: str | None, limit: int) -> tuple[list[LedgerRow], str | None]:
        return await run_blocking(self._ledger_page, kind, after, limit)

    def _get_cursor(self, name: str) -> str | None:
        try:
            return str(self._table("cursors").get_entity(*cursor_keys(name))["value"])
        except ResourceNotFoundError:
            return None

    def _set_cursor(self, name: str, value: str) -> None:
        partition, row_key = cursor_keys(name)
        entity = {"PartitionKey": partition, "RowKey": row_key, "value": value}
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
        """Transactions of up to TRANSACTION_SIZE rows of one partition each, side by side; results in the
        order of the rows."""
        table = self._table("ledger")
        by_partition: dict[str, list[int]] = {}
        for index, row in enumerate(rows):
            by_partition.setdefault(ledger_keys(row.kind, row.square_id)[0], []).append(index)
        groups = [
            indexes[start : start + TRANSACTION_SIZE]
            for indexes in by_partition.values()
            for start in range(0, len(indexes), TRANSACTION_SIZE)
        ]
        parts = await _limited(
            run_blocking(write_many, table, [rows[i] for i in group], _ledger_entity, self._save_ledger)
            for group in groups
        )
        answered = {
            index: result
            for group, part in zip(groups, parts, strict=True)
            for index, result in zip(group, part, strict=True)
        }
        return [answered[index] for index in range(len(rows))]

    async def save_ledger(self, row: LedgerRow) -> LedgerRow:
        return await run_blocking(self._save_ledger, row)

    async def record_failure(self, failure: FailureRecord) -> None:
        await run_blocking(self._record_failure, failure)

    async def resolve_failure(self, flow: str, record_id: str, note: str, status: str = "resolved") -> None:
        await run_blocking(self._resolve_failure, flow, record_id, note, status)

    def _get_failure(self, flow: str, record_id: str) -> FailureRecord | None:
        try:
            return _failure(self._table("failures").get_entity(*failure_keys(flow, record_id)))
        except ResourceNotFoundError:
            return None

    async def get_failure(self, flow: str, record_id: str) -> FailureRecord | None:
        return await run_blocking(self._get_failure, flow, record_id)

    def _get_doc(self, kind: str, doc_id: str) -> tuple[dict[str, Any] | None, str | None]:
        try:
            entity = self._table("docs").get_entity(*doc_keys(kind, doc_id))
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
        partition, row_key = doc_keys(kind, doc_id)
        entity: dict[str, Any] = {"PartitionKey": partition, "RowKey": row_key, "doc": text, "doc_id": doc_id}
        if document.get("due_at"):  # queryable: the segments timer's work list (due_docs)
            entity["due_at"] = str(document["due_at"])
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

    def _due_docs(self, kind: str, until: str, limit: int) -> list[tuple[str, dict[str, Any], str]]:
        query = "PartitionKey eq @kind and due_at le @until"
        found: list[tuple[str, dict[str, Any], str]] = []
        table = self._table("docs")
        parameters = {"kind": table_key(kind), "until": until}
        for entity in table.query_entities(query, parameters=parameters, results_per_page=limit):
            found.append(
                (
                    str(entity.get("doc_id") or _decoded(entity["RowKey"])),
                    json.loads(entity["doc"]),
                    str(entity.metadata.get("etag")),
                )
            )
            if len(found) >= limit:
                break
        return found

    async def due_docs(self, kind: str, until: str, limit: int) -> list[tuple[str, dict[str, Any], str]]:
        return await run_blocking(self._due_docs, kind, until, limit)

    def _get_flow(self, flow: str) -> FlowStatus:
        try:
            row = self._table("flows").get_entity(*flow_keys(flow))
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
        partition, row_key = flow_keys(status.flow)
        entity = {
            "PartitionKey": partition,
            "RowKey": row_key,
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
