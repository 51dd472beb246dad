"""In-memory fakes of the ports (they satisfy the Protocols without inheriting) for unit tests."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from devstack.dataverse_emulator.odata_filter import parse_filter
from shared.core.errors import ConcurrencyError, TerminalError, TransientError
from shared.core.failures import merge_failure
from shared.core.ports import (
    BatchOperation,
    BatchPartResult,
    FailureRecord,
    FlowStatus,
    LedgerRow,
    OutboundMessage,
    UpsertResult,
)
from shared.flows.context import FlowContext
from shared.flows.customer_mapping import ContactColumns
from shared.monitoring.metrics import LogMetrics

Page = tuple[list[dict[str, Any]], str | None]


@dataclass
class FixedClock:
    moment: datetime = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


@dataclass
class FakeQueue:
    sent: list[OutboundMessage] = field(default_factory=list)
    fail_with: Exception | None = None
    max_body_bytes: int = 256 * 1024

    async def send(self, message: OutboundMessage) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        if not self.fits(message):
            raise TransientError(f"message of {len(message.body.encode())} bytes refused")  # as a broker would
        self.sent.append(message)

    def fits(self, message: OutboundMessage) -> bool:
        return len(message.body.encode("utf-8", "surrogatepass")) <= self.max_body_bytes


@dataclass
class FakeDataverse:
    """Contacts keyed by GUID, with the alternate key unique, like the emulator and Dataverse."""

    key_column: str = "tb_squarecustomerid"
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    fail_next: list[Exception] = field(default_factory=list)
    batches: list[list[BatchOperation]] = field(default_factory=list)

    def _maybe_fail(self, call: str) -> None:
        self.calls.append(call)
        if self.fail_next:
            raise self.fail_next.pop(0)

    def _by_key(self, key: Mapping[str, str]) -> dict[str, Any] | None:
        for row in self.rows.values():
            if all(row.get(c) == v for c, v in key.items()):
                return row
        return None

    def _check_unique(self, row_id: str, values: Mapping[str, Any]) -> None:
        value = values.get(self.key_column)
        if value is None:
            return
        for other_id, other in self.rows.items():
            if other_id != row_id and other.get(self.key_column) == value:
                raise TerminalError("duplicate key", reason_code="crm_rejected")

    def seed(self, **values: Any) -> str:
        row_id = str(uuid.uuid4())
        self.rows[row_id] = {"contactid": row_id, "statecode": 0, **values}
        return row_id

    async def upsert_by_key(self, entity_set: str, key: Mapping[str, str], payload: Mapping[str, Any]) -> UpsertResult:
        self._maybe_fail("upsert_by_key")
        if self._refused(payload):
            raise TerminalError("Dataverse refused the row", reason_code="crm_rejected")
        row = self._by_key(key)
        if row is None:
            row_id = self.seed(**key)
            row = self.rows[row_id]
        self._check_unique(row["contactid"], payload)
        row.update(payload)
        return UpsertResult(row["contactid"])

    async def update(
        self, entity_set: str, entity_id: str, payload: Mapping[str, Any], *, must_exist: bool = True
    ) -> None:
        self._maybe_fail("update")
        if self._refused(payload):
            raise TerminalError("Dataverse refused the row", reason_code="crm_rejected")
        row = self.rows.get(entity_id)
        if row is None:
            raise TerminalError("no such row", reason_code="crm_not_found")
        self._check_unique(entity_id, payload)
        row.update(payload)

    async def update_by_key(self, entity_set: str, key: Mapping[str, str], payload: Mapping[str, Any]) -> str | None:
        self._maybe_fail("update_by_key")
        row = self._by_key(key)
        if row is None:
            return None
        row.update(payload)
        return str(row["contactid"])

    async def get_by_key(self, entity_set: str, key: Mapping[str, str], select: Sequence[str]) -> dict[str, Any] | None:
        self._maybe_fail("get_by_key")
        row = self._by_key(key)
        return dict(row) if row else None

    async def get(self, entity_set: str, entity_id: str, select: Sequence[str]) -> dict[str, Any] | None:
        self._maybe_fail("get")
        row = self.rows.get(entity_id)
        return dict(row) if row else None

    async def query(
        self, entity_set: str, filter_expr: str, select: Sequence[str], top: int = 50
    ) -> list[dict[str, Any]]:
        self._maybe_fail("query")
        predicate = parse_filter(filter_expr)
        return [dict(row) for row in self.rows.values() if predicate(row)][:top]

    async def merge(self, entity: str, target_id: str, subordinate_id: str, update_content: Mapping[str, Any]) -> None:
        self._maybe_fail("merge")
        subordinate = self.rows[subordinate_id]
        if subordinate["statecode"] != 0:
            raise TerminalError("inactive subordinate", reason_code="crm_rejected")
        self.rows[target_id].update(update_content)
        subordinate.update({"statecode": 1, "statuscode": 2, "merged": True, "_masterid_value": target_id})

    async def batch(self, operations: Sequence[BatchOperation]) -> list[BatchPartResult]:
        self._maybe_fail("batch")
        self.batches.append(list(operations))
        return [BatchPartResult(204, {}, None) for _ in operations]

    # ---- bulk messages, with the documented rules (reference/dataverse.md §4): all or nothing, a duplicate
    # address in one request refused; `reject` marks rows Dataverse would refuse (a chunk holding one fails whole)
    reject: Any = None
    tables: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # other sets: address → row
    dop: int = 4

    def parallelism(self) -> int:
        return self.dop

    async def query_many(
        self, entity_set: str, filters: Sequence[str], select: Sequence[str], top: int = 5000
    ) -> list[list[dict[str, Any]]]:
        self._maybe_fail(f"query_many:{len(filters)}")
        found = []
        for filter_expr in filters:
            predicate = parse_filter(filter_expr)
            found.append([dict(row) for row in self.rows.values() if predicate(row)][:top])
        return found

    def _refused(self, payload: Mapping[str, Any]) -> bool:
        return self.reject is not None and bool(self.reject(payload))

    async def upsert_multiple(self, entity_set: str, entity: str, targets: Sequence[Any]) -> None:
        self._maybe_fail(f"upsert_multiple:{entity_set}:{len(targets)}")
        addresses = [t.entity_id or json.dumps(dict(t.key), sort_keys=True) for t in targets]
        if len(set(addresses)) != len(addresses):
            raise TerminalError("UpsertMultiple: duplicate key in one request", reason_code="crm_rejected")
        for target in targets:
            if self._refused(target.payload) or any(k in target.payload for k in target.key):
                raise TerminalError("UpsertMultiple refused a row", reason_code="crm_rejected")
        for target, where in zip(targets, addresses, strict=True):
            self._apply_target(entity_set, target, where)

    def _apply_target(self, entity_set: str, target: Any, where: str) -> str:
        if entity_set != "contacts":
            row = self.tables.setdefault(entity_set, {}).setdefault(where, dict(target.key))
            row.update(target.payload)
            return where
        if target.entity_id is not None:
            row = self.rows.setdefault(target.entity_id, {"contactid": target.entity_id, "statecode": 0})
        else:
            row = self._by_key(target.key) or self.rows[self.seed(**target.key)]
        self._check_unique(row["contactid"], target.payload)
        row.update(target.payload)
        return str(row["contactid"])

    async def create_multiple(self, entity_set: str, entity: str, payloads: Sequence[Mapping[str, Any]]) -> list[str]:
        self._maybe_fail(f"create_multiple:{entity_set}:{len(payloads)}")
        for payload in payloads:
            if self._refused(payload):
                raise TerminalError("CreateMultiple refused a row", reason_code="crm_rejected")
            if payload.get(self.key_column) is not None and self._by_key({self.key_column: payload[self.key_column]}):
                raise ConcurrencyError("412 0x80060892: a record with the same key value already exists")
        return [self.seed(**payload) for payload in payloads]

    def active_by_square_id(self) -> dict[str, dict[str, Any]]:
        return {
            row[self.key_column]: row
            for row in self.rows.values()
            if row.get(self.key_column) and row["statecode"] == 0
        }


@dataclass
class FakeState:
    ledger: dict[tuple[str, str], LedgerRow] = field(default_factory=dict)
    failures: dict[tuple[str, str], FailureRecord] = field(default_factory=dict)
    cursors: dict[str, str] = field(default_factory=dict)
    flows: dict[str, FlowStatus] = field(default_factory=dict)
    docs: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    fail_saves: list[Exception] = field(default_factory=list)
    _etags: int = 0

    async def get_ledger(self, kind: str, square_id: str) -> LedgerRow | None:
        row = self.ledger.get((kind, square_id))
        return replace(row) if row else None

    async def save_ledger(self, row: LedgerRow) -> LedgerRow:
        if self.fail_saves:
            raise self.fail_saves.pop(0)
        current = self.ledger.get((row.kind, row.square_id))
        if (current is None) != (row.etag is None) or (current is not None and current.etag != row.etag):
            raise ConcurrencyError("etag mismatch")
        self._etags += 1
        row.etag = str(self._etags)
        self.ledger[(row.kind, row.square_id)] = replace(row)
        return row

    async def record_failure(self, failure: FailureRecord) -> None:
        key = (failure.flow, failure.record_id)
        self.failures[key] = merge_failure(self.failures.get(key), failure)

    async def resolve_failure(self, flow: str, record_id: str, note: str, status: str = "resolved") -> None:
        if (flow, record_id) in self.failures:
            self.failures[(flow, record_id)].status = status

    async def get_failure(self, flow: str, record_id: str) -> FailureRecord | None:
        return self.failures.get((flow, record_id))

    async def get_doc(self, kind: str, doc_id: str) -> tuple[dict[str, Any] | None, str | None]:
        found = self.docs.get((kind, doc_id))
        return (json.loads(found[0]), found[1]) if found else (None, None)

    async def put_doc(self, kind: str, doc_id: str, document: dict[str, Any], etag: str | None) -> str:
        current = self.docs.get((kind, doc_id))
        if (current is None) != (etag is None) or (current is not None and current[1] != etag):
            raise ConcurrencyError("etag mismatch")
        self._etags += 1
        self.docs[(kind, doc_id)] = (json.dumps(document), str(self._etags))
        return str(self._etags)

    async def due_docs(self, kind: str, until: str, limit: int) -> list[tuple[str, dict[str, Any], str]]:
        found = []
        for (doc_kind, doc_id), (text, etag) in sorted(self.docs.items()):
            document = json.loads(text)
            if doc_kind == kind and document.get("due_at") and document["due_at"] <= until:
                found.append((doc_id, document, etag))
        return found[:limit]

    async def get_flow(self, flow: str) -> FlowStatus:
        return replace(self.flows.get(flow, FlowStatus(flow)))

    async def save_flow(self, status: FlowStatus) -> None:
        self.flows[status.flow] = replace(status)

    async def list_failures(self, flow: str | None = None) -> list[FailureRecord]:
        return [f for (fl, _), f in self.failures.items() if flow in (None, fl)]

    async def ledger_page(self, kind: str, after: str | None, limit: int) -> tuple[list[LedgerRow], str | None]:
        keys = sorted(sid for k, sid in self.ledger if k == kind and (after is None or sid > after))
        page = [self.ledger[(kind, sid)] for sid in keys[:limit]]
        return page, (keys[limit - 1] if len(keys) > limit else None)

    async def get_cursor(self, name: str) -> str | None:
        return self.cursors.get(name)

    async def get_ledgers(self, kind: str, square_ids: Sequence[str]) -> dict[str, LedgerRow | None]:
        return {square_id: await self.get_ledger(kind, square_id) for square_id in square_ids}

    async def save_ledgers(self, rows: Sequence[LedgerRow]) -> list[LedgerRow | Exception]:
        results: list[LedgerRow | Exception] = []
        for row in rows:
            try:
                results.append(await self.save_ledger(row))
            except ConcurrencyError as error:
                results.append(error)
        return results

    async def set_cursor(self, name: str, value: str) -> None:
        self.cursors[name] = value


@dataclass
class FakeSquare:
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    fail_next: list[Exception] = field(default_factory=list)
    pages: list[tuple[list[dict[str, Any]], str | None]] = field(default_factory=list)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    locations: dict[str, dict[str, Any]] = field(default_factory=dict)
    catalog: list[dict[str, Any]] = field(default_factory=list)
    catalog_latest: str | None = None
    merged_into: dict[str, str] = field(default_factory=dict)  # merged-away id → survivor id
    events: list[dict[str, Any]] = field(default_factory=list)
    created_by_key: dict[str, str] = field(default_factory=dict)
    page_size: int = 100

    async def retrieve_customer(self, customer_id: str) -> dict[str, Any] | None:
        self.calls.append("retrieve_customer")
        if self.fail_next:
            raise self.fail_next.pop(0)
        return self.customers.get(customer_id)

    async def batch_retrieve_orders(self, order_ids: list[str]) -> dict[str, dict[str, Any]]:
        self.calls.append(f"batch_retrieve_orders:{len(order_ids)}")
        return {i: self.orders[i] for i in order_ids if i in self.orders}

    async def get_payment(self, payment_id: str) -> dict[str, Any] | None:
        self.calls.append("get_payment")
        return self.payments.get(payment_id)

    async def get_refund(self, refund_id: str) -> dict[str, Any] | None:
        self.calls.append("get_refund")
        return self.refunds.get(refund_id)

    async def retrieve_location(self, location_id: str) -> dict[str, Any] | None:
        self.calls.append("retrieve_location")
        return self.locations.get(location_id)

    async def batch_retrieve_catalog(self, object_ids: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        self.calls.append(f"batch_retrieve_catalog:{len(object_ids)}")
        return [], []

    async def search_catalog_changed_since(
        self, begin_time: str | None, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None, str | None]:
        self.calls.append(f"search_catalog:{begin_time}")
        if self.fail_next:
            raise self.fail_next.pop(0)
        return list(self.catalog), None, self.catalog_latest

    async def search_customers_updated_since(
        self, start_at: str, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        self.calls.append(f"search:{start_at}:{cursor}")
        if self.pages:
            return self.pages.pop(0)
        return list(self.customers.values()), None

    # ---- history pages: offsets as cursors, `page_size` caps every page; writes keep Square's version rule

    def _paged(self, items: list[dict[str, Any]], cursor: str | None, limit: int) -> Page:
        start = int(cursor or 0)
        end = start + min(limit, self.page_size)
        return items[start:end], (str(end) if end < len(items) else None)

    async def list_customers(
        self, cursor: str | None = None, *, limit: int = 100, sort_field: str = "CREATED_AT", sort_order: str = "ASC"
    ) -> Page:
        self.calls.append(f"list_customers:{cursor}")
        ordered = sorted(self.customers.values(), key=lambda c: (c.get("created_at", ""), c["id"]))
        return self._paged(ordered[::-1] if sort_order == "DESC" else ordered, cursor, limit)

    async def search_customers(self, query: dict[str, Any], cursor: str | None = None, *, limit: int = 100) -> Page:
        self.calls.append(f"search_customers:{cursor}")
        windows = (query.get("filter") or {}).items()

        def inside(customer: dict[str, Any]) -> bool:
            return all(
                w.get("start_at", "") <= customer.get(name, "") <= w.get("end_at", "9999")
                for name, w in windows
                if name in ("created_at", "updated_at")
            )

        found = sorted((c for c in self.customers.values() if inside(c)), key=lambda c: c.get("created_at", ""))
        return self._paged(found, cursor, limit)

    async def bulk_retrieve_customers(self, customer_ids: list[str]) -> dict[str, dict[str, Any]]:
        self.calls.extend(
            f"bulk_retrieve_customers:{len(customer_ids[i : i + 100])}" for i in range(0, len(customer_ids), 100)
        )
        found = {i: self.customers.get(self.merged_into.get(i, i)) for i in customer_ids}
        return {i: customer for i, customer in found.items() if customer is not None}

    async def search_orders(
        self, location_ids: list[str], query: dict[str, Any], cursor: str | None = None, *, limit: int = 500
    ) -> Page:
        self.calls.append(f"search_orders:{','.join(location_ids)}:{cursor}")
        found = [o for o in self.orders.values() if o.get("location_id") in location_ids]
        return self._paged(found, cursor, limit)

    async def list_payments(self, cursor: str | None = None, **params: str | int | None) -> Page:
        self.calls.append(f"list_payments:{params.get('location_id')}:{cursor}")
        location = params.get("location_id") or next(iter(self.locations), None)
        found = [p for p in self.payments.values() if p.get("location_id") == location]
        return self._paged(found, cursor, int(params.get("limit") or 100))

    async def list_refunds(self, cursor: str | None = None, **params: str | int | None) -> Page:
        self.calls.append(f"list_refunds:{cursor}")
        location = params.get("location_id")
        found = [r for r in self.refunds.values() if location in (None, r.get("location_id"))]
        return self._paged(found, cursor, int(params.get("limit") or 100))

    async def list_locations(self) -> list[dict[str, Any]]:
        self.calls.append("list_locations")
        return sorted(self.locations.values(), key=lambda loc: str(loc.get("name", "")))

    async def search_events(self, query: dict[str, Any], cursor: str | None = None, *, limit: int = 100) -> Page:
        self.calls.append(f"search_events:{cursor}")
        types = (query.get("filter") or {}).get("event_types")
        found = [e for e in self.events if types is None or e.get("type") in types]
        return self._paged(found, cursor, limit)

    async def update_customer(
        self, customer_id: str, changes: dict[str, Any], *, version: int | None = None
    ) -> dict[str, Any] | None:
        self.calls.append(f"update_customer:{customer_id}")
        if self.fail_next:
            raise self.fail_next.pop(0)
        customer = self.customers.get(customer_id)
        if customer is None:
            return None
        if version is not None and version != customer.get("version", 0):
            raise ConcurrencyError(f"Square 400 VERSION_MISMATCH ({customer_id})")
        for name, value in changes.items():
            if value is None:
                customer.pop(name, None)
            else:
                customer[name] = value
        customer["version"] = int(customer.get("version", 0)) + 1
        return dict(customer)

    async def create_customer(self, fields: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        self.calls.append(f"create_customer:{idempotency_key}")
        if self.fail_next:
            raise self.fail_next.pop(0)
        if idempotency_key in self.created_by_key:
            return dict(self.customers[self.created_by_key[idempotency_key]])
        customer = {**fields, "id": f"CUST{len(self.customers) + 1:022d}", "version": 0}
        self.customers[customer["id"]] = customer
        self.created_by_key[idempotency_key] = customer["id"]
        return dict(customer)


class NoTraces:
    """A trace store that keeps nothing (the worker and ops service accept one)."""

    async def save(self, trace: object) -> None:
        return None

    async def timeline(self, flow: str, record_id: str) -> list[Any]:
        return []

    async def snapshot(self, ref: str) -> None:
        return None

    async def received_between(self, start: object, end: object) -> list[Any]:
        return []

    async def purge(self, before: object) -> int:
        return 0


@dataclass
class FakeHistory:
    """Square's history endpoints over in-memory objects: oldest first, filters inclusive, pages of
    `page_size` with a cursor (the index of the next object), like SearchCustomers/SearchOrders/List*."""

    customers: list[dict[str, Any]] = field(default_factory=list)
    locations: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    payments: list[dict[str, Any]] = field(default_factory=list)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    catalog: list[dict[str, Any]] = field(default_factory=list)
    page_size: int = 100
    calls: list[str] = field(default_factory=list)

    def _page(self, objects: list[dict[str, Any]], cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        ordered = sorted(objects, key=lambda o: (str(o.get("created_at")), str(o.get("id"))))
        start = int(cursor or 0)
        end = start + self.page_size
        return ordered[start:end], (str(end) if end < len(ordered) else None)

    async def search_customers_by_creation(
        self, created_from: str | None, updated_since: str | None, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        self.calls.append(f"customers:{created_from}:{cursor}")
        chosen = [
            c
            for c in self.customers
            if (not created_from or c["created_at"] >= created_from)
            and (not updated_since or c["updated_at"] >= updated_since)
        ]
        return self._page(chosen, cursor)

    async def list_locations(self) -> list[dict[str, Any]]:
        self.calls.append("locations")
        return list(self.locations)

    async def search_orders(
        self, location_ids: list[str], time_field: str, start_at: str | None, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        self.calls.append(f"orders:{start_at}:{cursor}")
        field_name = time_field.lower()
        chosen = [
            o
            for o in self.orders
            if o.get("location_id") in location_ids and (not start_at or o[field_name] >= start_at)
        ]
        return self._page(chosen, cursor)

    async def list_payments(
        self, location_id: str, begin_time: str | None, updated_since: str | None, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        self.calls.append(f"payments:{location_id}:{begin_time}:{cursor}")
        chosen = [
            p
            for p in self.payments
            if p.get("location_id") == location_id
            and (not begin_time or p["created_at"] >= begin_time)
            and (not updated_since or p["updated_at"] >= updated_since)
        ]
        return self._page(chosen, cursor)

    async def list_refunds(
        self, begin_time: str | None, updated_since: str | None, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        self.calls.append(f"refunds:{begin_time}:{cursor}")
        chosen = [
            r
            for r in self.refunds
            if (not begin_time or r["created_at"] >= begin_time)
            and (not updated_since or r["updated_at"] >= updated_since)
        ]
        return self._page(chosen, cursor)

    async def search_catalog_changed_since(
        self, begin_time: str | None, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None, str | None]:
        self.calls.append(f"catalog:{begin_time}:{cursor}")
        page, next_cursor = self._page(self.catalog, cursor)
        latest = max((str(o.get("updated_at")) for o in self.catalog), default=None)
        return page, next_cursor, latest


def flow_context(
    dataverse: FakeDataverse | None = None, state: FakeState | None = None, square: FakeSquare | None = None
) -> FlowContext:
    return FlowContext(
        dataverse=dataverse or FakeDataverse(),
        square=square or FakeSquare(),
        state=state or FakeState(),
        clock=FixedClock(),
        metrics=LogMetrics(),
        columns=ContactColumns("tb"),
        phone_region="US",
    )


__all__ = ["TransientError"]
