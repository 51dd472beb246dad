"""`tillbridge config preview <kind> <square id>` and GET /api/ops/preview/{kind}/{id}: run the real flow
for one Square object (fetched fresh) against read-through stand-ins that record every write instead of
sending it — so the preview shows exactly what the configuration would do: the Dataverse payloads, the
matched contact, each rule's outcome and each segment's, with the reason. Nothing is written anywhere.

The object is previewed as if Tillbridge had not seen it yet (its own ledger row and its count in the
buyer's aggregates are hidden); rule keys already acted on still show as "already acted on".
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from shared.core.errors import TillbridgeError
from shared.core.ports import (
    BatchOperation,
    BatchPartResult,
    BulkTarget,
    ChangePage,
    DataverseApi,
    FlowStatus,
    LedgerRow,
    StateStore,
    UpsertResult,
)
from shared.flows.commerce_support import STATS_DOC
from shared.flows.context import FlowContext
from shared.flows.purchase_stats import PurchaseStats
from shared.monitoring import tracing
from shared.monitoring.tracing import AttemptTrace
from shared.pipeline.messages import fresh_fetch_command
from shared.pipeline.registry import KINDS, flow_of, handler_for
from shared.rules.facts import Facts, aggregate_facts
from shared.rules.segments import membership

PREVIEW_KINDS = tuple(k for k in KINDS if k != "catalog")


@dataclass
class RecordingDataverse:
    """Reads go to Dataverse; writes are recorded and answered as if they had succeeded."""

    real: DataverseApi
    writes: list[dict[str, Any]] = field(default_factory=list)

    def _record(self, method: str, path: str, body: Mapping[str, Any] | None, **extra: Any) -> None:
        self.writes.append({"method": method, "path": path, "body": dict(body or {}), **extra})

    async def upsert_by_key(self, entity_set: str, key: Mapping[str, str], payload: Mapping[str, Any]) -> UpsertResult:
        self._record("PATCH", entity_set, payload, key=dict(key))
        return UpsertResult(f"preview-{uuid.uuid4()}")

    async def update(
        self, entity_set: str, entity_id: str, payload: Mapping[str, Any], *, must_exist: bool = True
    ) -> None:
        self._record("PATCH", f"{entity_set}({entity_id})", payload)

    async def update_by_key(self, entity_set: str, key: Mapping[str, str], payload: Mapping[str, Any]) -> str | None:
        self._record("PATCH", entity_set, payload, key=dict(key), headers={"If-Match": "*"})
        return None

    async def get_by_key(self, entity_set: str, key: Mapping[str, str], select: Sequence[str]) -> dict[str, Any] | None:
        return await self.real.get_by_key(entity_set, key, select)

    async def get(self, entity_set: str, entity_id: str, select: Sequence[str]) -> dict[str, Any] | None:
        return await self.real.get(entity_set, entity_id, select)

    async def query(
        self, entity_set: str, filter_expr: str, select: Sequence[str], top: int = 50
    ) -> list[dict[str, Any]]:
        return await self.real.query(entity_set, filter_expr, select, top)

    async def merge(self, entity: str, target_id: str, subordinate_id: str, update_content: Mapping[str, Any]) -> None:
        self._record("POST", "Merge", update_content, target=target_id, subordinate=subordinate_id)

    async def batch(self, operations: Sequence[BatchOperation]) -> list[BatchPartResult]:
        for op in operations:
            self._record(op.method, op.path, op.body, headers=dict(op.headers))
        return [BatchPartResult(204, {}, None) for _ in operations]

    async def who_am_i(self) -> dict[str, Any]:
        return await self.real.who_am_i()

    async def read_changes(
        self, entity_set: str, select: Sequence[str], link: str | None = None, page_size: int = 5000
    ) -> ChangePage:
        return await self.real.read_changes(entity_set, select, link, page_size)

    async def query_page(
        self, entity_set: str, filter_expr: str, select: Sequence[str], link: str | None = None, page_size: int = 5000
    ) -> tuple[list[dict[str, Any]], str | None]:
        return await self.real.query_page(entity_set, filter_expr, select, link, page_size)

    async def upsert_multiple(self, entity_set: str, entity: str, targets: Sequence[BulkTarget]) -> None:
        for target in targets:
            self._record("PATCH", entity_set, target.payload, key=dict(target.key), bulk="UpsertMultiple")

    async def create_multiple(self, entity_set: str, entity: str, payloads: Sequence[Mapping[str, Any]]) -> list[str]:
        for payload in payloads:
            self._record("POST", entity_set, payload, bulk="CreateMultiple")
        return [f"preview-{uuid.uuid4()}" for _ in payloads]

    async def query_many(
        self, entity_set: str, filters: Sequence[str], select: Sequence[str], top: int = 5000
    ) -> list[list[dict[str, Any]]]:
        return await self.real.query_many(entity_set, filters, select, top)

    def parallelism(self) -> int:
        return 1


@dataclass
class OverlayState:
    """Reads the real state; writes stay in this object. The previewed object looks unseen."""

    real: StateStore
    hide: tuple[str, str]  # (kind, square id) whose ledger row and aggregate count are hidden
    ledger: dict[tuple[str, str], LedgerRow] = field(default_factory=dict)
    docs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    async def get_ledger(self, kind: str, square_id: str) -> LedgerRow | None:
        if (kind, square_id) in self.ledger:
            return replace(self.ledger[(kind, square_id)])
        if (kind, square_id) == self.hide:
            return None
        return await self.real.get_ledger(kind, square_id)

    async def save_ledger(self, row: LedgerRow) -> LedgerRow:
        row.etag = "preview"
        self.ledger[(row.kind, row.square_id)] = replace(row)
        return row

    async def get_ledgers(self, kind: str, square_ids: Sequence[str]) -> dict[str, LedgerRow | None]:
        return {square_id: await self.get_ledger(kind, square_id) for square_id in square_ids}

    async def save_ledgers(self, rows: Sequence[LedgerRow]) -> list[LedgerRow | Exception]:
        return [await self.save_ledger(row) for row in rows]

    async def get_doc(self, kind: str, doc_id: str) -> tuple[dict[str, Any] | None, str | None]:
        if (kind, doc_id) in self.docs:
            return copy.deepcopy(self.docs[(kind, doc_id)]), "preview"
        document, etag = await self.real.get_doc(kind, doc_id)
        if document is not None and kind == STATS_DOC:
            counted = {f"p:{self.hide[1]}", f"r:{self.hide[1]}"}
            document["counted"] = [c for c in document.get("counted", []) if c not in counted]
        return document, etag

    async def put_doc(self, kind: str, doc_id: str, document: dict[str, Any], etag: str | None) -> str:
        self.docs[(kind, doc_id)] = copy.deepcopy(document)
        return "preview"

    async def record_failure(self, failure: Any) -> None:
        return None

    async def resolve_failure(self, flow: str, record_id: str, note: str, status: str = "resolved") -> None:
        return None

    async def get_failure(self, flow: str, record_id: str) -> Any:
        return await self.real.get_failure(flow, record_id)

    async def get_flow(self, flow: str) -> FlowStatus:
        return FlowStatus(flow)

    async def save_flow(self, status: FlowStatus) -> None:
        return None

    async def list_failures(self, flow: str | None = None) -> list[Any]:
        return []

    async def ledger_page(self, kind: str, after: str | None, limit: int) -> tuple[list[LedgerRow], str | None]:
        return await self.real.ledger_page(kind, after, limit)

    async def due_docs(self, kind: str, until: str, limit: int) -> list[tuple[str, dict[str, Any], str]]:
        return []

    async def get_cursor(self, name: str) -> str | None:
        return await self.real.get_cursor(name)

    async def set_cursor(self, name: str, value: str) -> None:
        return None


def _segments(ctx: FlowContext, state: OverlayState, stats_id: str | None) -> list[dict[str, Any]]:
    config = ctx.configuration
    if not stats_id or not config.segments:
        return []
    document = state.docs.get((STATS_DOC, stats_id))
    stats = PurchaseStats.from_document(document)
    now = ctx.clock.now()
    facts = Facts(event="segment", at=now, subject_id=stats_id, **aggregate_facts(stats, now))
    moved = membership(config.segments, facts, stats.segments)
    return [
        {
            "segment": s.id,
            "member": s.id in moved.members,
            "move": "enters" if s.id in moved.entered else ("leaves" if s.id in moved.left else "none"),
            "why": moved.reasons[s.id],
        }
        for s in config.segments
    ]


async def preview(ctx: FlowContext, kind: str, square_id: str) -> dict[str, Any]:
    """What syncing this Square object now would do, written nowhere."""
    handler = handler_for(kind)
    if handler is None or kind not in PREVIEW_KINDS:
        raise ValueError(f"cannot preview {kind!r} (one of {', '.join(PREVIEW_KINDS)})")
    dataverse = RecordingDataverse(ctx.dataverse)
    state = OverlayState(ctx.state, (kind, square_id))
    dry = replace(ctx, dataverse=dataverse, state=state, orders=None, reported_unmapped=set())
    command = fresh_fetch_command(kind, square_id, ctx.clock.now().isoformat(), purpose="preview")
    trace = AttemptTrace(flow_of(kind), square_id, command.event_id, command.event_type, 1, 1, "", clock=ctx.clock)
    token = tracing.begin(trace)
    outcome, error = None, None
    try:
        outcome = (await handler(command, dry)).value
    except TillbridgeError as failure:
        error = f"{type(failure).__name__}: {failure}"
    finally:
        tracing.end(token)
    steps = [{"stage": s.stage, **s.detail} for s in trace.steps]
    buyer = next((s for s in steps if s["stage"] in ("buyer", "matched")), {})
    return {
        "kind": kind,
        "square_id": square_id,
        "configuration": ctx.configuration.source,
        "outcome": outcome,
        "error": error,
        "square_object": trace.snapshots.get("square_object"),
        "matched_contact": buyer.get("contact") or buyer.get("contact_id"),
        "writes": dataverse.writes,
        "rules": [s for s in steps if s["stage"] == "rule"],
        "segments": _segments(dry, state, buyer.get("aggregates") or (square_id if kind == "customer" else None)),
        "steps": steps,
    }
