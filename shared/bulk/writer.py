"""Bulk writes to one table: rows de-duplicated by address, sent as CreateMultiple (rows known new) or
UpsertMultiple in chunks, several chunks in flight (x-ms-dop-hint); a chunk Dataverse refuses is
retried row by row, so one bad row becomes one failure and the others land (reference/dataverse.md §4:
a bulk request on a standard table is all or nothing; Microsoft's pattern is to fall back to singles).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.core.errors import ConcurrencyError, TerminalError
from shared.core.keys import key_segment
from shared.core.ports import BulkTarget, DataverseApi


@dataclass(frozen=True)
class BulkRow:
    """A row to write and the Square records it carries (their failure records name them)."""

    refs: tuple[str, ...]
    target: BulkTarget
    create: bool = False  # known new: CreateMultiple (key columns in the body, nothing to address)


@dataclass
class WriteResult:
    ids: dict[str, str] = field(default_factory=dict)  # address → row id, where Dataverse told it
    failed: dict[str, TerminalError] = field(default_factory=dict)  # ref → why
    requests: int = 0
    fallbacks: int = 0  # chunks retried row by row


def address(row: BulkRow) -> str:
    """What identifies the row in Dataverse: its primary id, else its alternate key."""
    if row.target.entity_id is not None:
        return row.target.entity_id
    return key_segment(row.target.key)


def dedupe(rows: Sequence[BulkRow]) -> list[BulkRow]:
    """One row per address (UpsertMultiple refuses duplicate keys in one request): the columns merged
    in arrival order, later values winning, the refs of every merged row kept."""
    merged: dict[str, BulkRow] = {}
    for row in rows:
        where = address(row)
        earlier = merged.get(where)
        if earlier is None:
            merged[where] = row
            continue
        payload = {**earlier.target.payload, **row.target.payload}
        target = BulkTarget(payload=payload, key=row.target.key, entity_id=row.target.entity_id)
        refs = tuple(dict.fromkeys((*earlier.refs, *row.refs)))
        merged[where] = BulkRow(refs, target, create=earlier.create and row.create)
    return list(merged.values())


def chunks(rows: Sequence[BulkRow], size: int) -> list[list[BulkRow]]:
    return [list(rows[start : start + size]) for start in range(0, len(rows), max(1, size))]


class BulkWriter:
    def __init__(self, dataverse: DataverseApi, request_size: int) -> None:
        self._dataverse = dataverse
        self.request_size = max(1, request_size)

    async def write(self, entity_set: str, entity: str, rows: Sequence[BulkRow]) -> WriteResult:
        """Write every row; Terminal refusals are per row in the result, Transient errors propagate (the
        caller has not committed anything yet, so the whole chunk is simply tried again)."""
        result = WriteResult()
        unique = dedupe(rows)
        groups = chunks([r for r in unique if r.create], self.request_size)
        groups += chunks([r for r in unique if not r.create], self.request_size)
        slots = asyncio.Semaphore(max(1, self._dataverse.parallelism()))

        async def send(group: list[BulkRow]) -> None:
            async with slots:
                await self._send_chunk(entity_set, entity, group, result)

        await asyncio.gather(*(send(group) for group in groups))
        return result

    async def _send_chunk(self, entity_set: str, entity: str, group: list[BulkRow], result: WriteResult) -> None:
        result.requests += 1
        try:
            if group[0].create:
                payloads = [{**row.target.payload, **row.target.key} for row in group]
                ids = await self._dataverse.create_multiple(entity_set, entity, payloads)
                result.ids.update({address(row): row_id for row, row_id in zip(group, ids, strict=True)})
            else:
                await self._dataverse.upsert_multiple(entity_set, entity, [row.target for row in group])
                result.ids.update({address(row): row.target.entity_id for row in group if row.target.entity_id})
            return
        except TerminalError:
            pass  # all or nothing: nothing landed, so each row is tried on its own
        except ConcurrencyError:
            if not group[0].create:
                raise
            # a row "known new" exists by now (the live path created it meanwhile: 412 duplicate key,
            # reference/dataverse.md §12): upserts by key, row by row, update it instead
        result.fallbacks += 1
        for row in group:
            await self._send_one(entity_set, row, result)

    async def _send_one(self, entity_set: str, row: BulkRow, result: WriteResult) -> None:
        result.requests += 1
        target = row.target
        try:
            if target.entity_id is not None:
                await self._dataverse.update(entity_set, target.entity_id, dict(target.payload))
                result.ids[address(row)] = target.entity_id
            else:
                payload: dict[str, Any] = {k: v for k, v in target.payload.items() if k not in target.key}
                upserted = await self._dataverse.upsert_by_key(entity_set, target.key, payload)
                result.ids[address(row)] = upserted.entity_id
        except TerminalError as error:
            for ref in row.refs:
                result.failed[ref] = error
