"""Ports: the small protocols the core needs from the outside world (fakes satisfy them in tests)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class OutboundMessage:
    """A message to queue: body is the JSON text of a SyncCommand."""

    message_id: str
    session_id: str
    body: str
    delay_seconds: float = 0.0
    properties: Mapping[str, str] = field(default_factory=dict)


class Queue(Protocol):
    async def send(self, message: OutboundMessage) -> None:
        """Durably enqueue, or raise TransientError."""
        ...

    def fits(self, message: OutboundMessage) -> bool:
        """Whether the backend takes this message as `send` puts it on the wire (each backend's size limit)."""
        ...


class Clock(Protocol):
    def now(self) -> datetime: ...


@dataclass
class LedgerRow:
    """What Tillbridge last applied for one Square object (one row per object)."""

    kind: str
    square_id: str
    dataverse_id: str | None = None
    version: int | None = None
    updated_at: str | None = None
    content_hash: str | None = None
    status: str = "active"  # active | deleted | merged
    merged_into: str | None = None
    last_event_id: str | None = None
    pending_version: int | None = None
    pending_updated_at: str | None = None
    pending_event_id: str | None = None
    pending_at: str | None = None  # when the claim was made (a claim is a lease: shared/pipeline/gate.py)
    failure_open: bool = False
    failed_version: int | None = None
    # two-way contact sync (flows/two_way.py, flows/crm_contacts.py); all None while every field is Square's
    square_fields: str | None = None  # JSON {contact column: fingerprint} of Square's values at `version`
    crm_fields: str | None = None  # JSON {contact column: fingerprint} of what the CRM held when last seen
    crm_modified_on: str | None = None  # the contact's `modifiedon` when last seen
    crm_row_version: int | None = None  # the contact's `versionnumber` last acted on (older rows are stale)
    echo_version: int | None = None  # the Square version Tillbridge's own UpdateCustomer is producing
    echo_hash: str | None = None  # the fingerprints that version will carry (its webhook is not a change)
    pushed_version: int | None = None  # the last Square version Tillbridge's own UpdateCustomer produced
    pushed_base_at: str | None = None  # `updated_at` of the version it was sent on (that version's real time)
    customer_id: str | None = None  # on a `contact` row (keyed by contact id): the linked Square customer
    etag: str | None = None


@dataclass
class FailureRecord:
    """One failed record awaiting review or retry."""

    flow: str
    record_id: str
    reason_code: str
    message: str
    event_id: str
    event_type: str
    field: str | None = None
    candidates: Sequence[str] = ()
    attempts: int = 1
    first_seen: str = ""
    last_seen: str = ""
    status: str = "open"  # open | retrying | resolved | ignored
    source_version: str = ""  # the failing object's Square version (or updated_at); "" when unknown


@dataclass
class FlowStatus:
    """Operational state of one flow: paused or running, and when it last wrote to the CRM."""

    flow: str
    paused: bool = False
    note: str = ""
    changed_at: str = ""
    last_written_at: str = ""


class StateStore(Protocol):
    async def get_ledger(self, kind: str, square_id: str) -> LedgerRow | None: ...

    async def save_ledger(self, row: LedgerRow) -> LedgerRow:
        """Insert (etag None) or replace if unchanged since read; raise ConcurrencyError otherwise."""
        ...

    async def record_failure(self, failure: FailureRecord) -> None:
        """Create or update the failure row (attempts counted, first_seen kept)."""
        ...

    async def resolve_failure(self, flow: str, record_id: str, note: str, status: str = "resolved") -> None: ...

    async def get_failure(self, flow: str, record_id: str) -> FailureRecord | None: ...

    async def get_doc(self, kind: str, doc_id: str) -> tuple[dict[str, Any] | None, str | None]:
        """A small JSON document (purchase stats, catalog cache entries) and its ETag."""
        ...

    async def put_doc(self, kind: str, doc_id: str, document: dict[str, Any], etag: str | None) -> str:
        """Insert (etag None) or replace if unchanged; ConcurrencyError otherwise. Returns the new ETag."""
        ...

    async def due_docs(self, kind: str, until: str, limit: int) -> list[tuple[str, dict[str, Any], str]]:
        """Up to `limit` documents of a kind whose `due_at` is at or before `until` (ISO time): (id, document,
        ETag). The segments timer's work list: an aggregate change marks its document due."""
        ...

    async def get_flow(self, flow: str) -> FlowStatus: ...

    async def save_flow(self, status: FlowStatus) -> None: ...

    async def list_failures(self, flow: str | None = None) -> list[FailureRecord]: ...

    async def ledger_page(self, kind: str, after: str | None, limit: int) -> tuple[list[LedgerRow], str | None]:
        """Up to `limit` ledger rows of a kind in key order after the cursor, and the cursor to go on from
        (None once the last row was returned)."""
        ...

    async def get_cursor(self, name: str) -> str | None: ...

    async def get_ledgers(self, kind: str, square_ids: Sequence[str]) -> dict[str, LedgerRow | None]:
        """Many ledger rows of one kind at once (the bulk path); None for ids with no row."""
        ...

    async def save_ledgers(self, rows: Sequence[LedgerRow]) -> list[LedgerRow | Exception]:
        """Save many rows of one kind (distinct ids), each like save_ledger: the saved row, or the
        ConcurrencyError of a row that changed since it was read."""
        ...

    async def set_cursor(self, name: str, value: str) -> None: ...


@dataclass(frozen=True)
class BatchOperation:
    method: str
    path: str  # relative to the API root, e.g. "tb_transactions(tb_squareorderid='X')"
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchPartResult:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass(frozen=True)
class ChangePage:
    """One page of Dataverse change tracking: new or changed rows, ids of deleted rows, and either the link
    to the next page or (on the last page only) the delta link that later polls start from."""

    rows: list[dict[str, Any]]
    deleted_ids: list[str]
    next_link: str | None
    delta_link: str | None


@dataclass(frozen=True)
class BulkTarget:
    """One row of a bulk write, addressed by its alternate key or (when known) its primary id — never
    both, and the key never repeated in the payload (Dataverse answers 400 on the create path otherwise)."""

    payload: Mapping[str, Any]
    key: Mapping[str, str] = field(default_factory=dict)
    entity_id: str | None = None


@dataclass(frozen=True)
class UpsertResult:
    entity_id: str
    created: bool | None = None


class DataverseApi(Protocol):
    async def upsert_by_key(
        self, entity_set: str, key: Mapping[str, str], payload: Mapping[str, Any]
    ) -> UpsertResult: ...

    async def update(
        self, entity_set: str, entity_id: str, payload: Mapping[str, Any], *, must_exist: bool = True
    ) -> None: ...

    async def update_by_key(self, entity_set: str, key: Mapping[str, str], payload: Mapping[str, Any]) -> str | None:
        """Update only (If-Match: *): the row's id, or None when no row has that key."""
        ...

    async def get_by_key(
        self, entity_set: str, key: Mapping[str, str], select: Sequence[str]
    ) -> dict[str, Any] | None: ...

    async def get(self, entity_set: str, entity_id: str, select: Sequence[str]) -> dict[str, Any] | None: ...

    async def query(
        self, entity_set: str, filter_expr: str, select: Sequence[str], top: int = 50
    ) -> list[dict[str, Any]]: ...

    async def merge(
        self, entity: str, target_id: str, subordinate_id: str, update_content: Mapping[str, Any]
    ) -> None: ...

    async def batch(self, operations: Sequence[BatchOperation]) -> list[BatchPartResult]:
        """Several writes in one request and one changeset (all or nothing)."""
        ...

    async def who_am_i(self) -> dict[str, Any]:
        """WhoAmI: the calling application user's UserId, BusinessUnitId, OrganizationId."""
        ...

    # change tracking and paged queries (the CRM → Square poller)
    async def read_changes(
        self, entity_set: str, select: Sequence[str], link: str | None = None, page_size: int = 5000
    ) -> ChangePage:
        """The first page of a full load (link None), or the page a next/delta link names; raises
        ChangeTokenExpiredError when the delta link's token has expired."""
        ...

    async def query_page(
        self, entity_set: str, filter_expr: str, select: Sequence[str], link: str | None = None, page_size: int = 5000
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of a filtered query, and the link to the next page (None on the last)."""
        ...

    async def upsert_multiple(self, entity_set: str, entity: str, targets: Sequence[BulkTarget]) -> None:
        """UpsertMultiple: every target in one request, all or nothing on standard tables."""
        ...

    async def create_multiple(self, entity_set: str, entity: str, payloads: Sequence[Mapping[str, Any]]) -> list[str]:
        """CreateMultiple: the new rows' ids in request order (all or nothing)."""
        ...

    async def query_many(
        self, entity_set: str, filters: Sequence[str], select: Sequence[str], top: int = 5000
    ) -> list[list[dict[str, Any]]]:
        """Several queries in one request ($batch of GETs): the rows of each filter, in order."""
        ...

    def parallelism(self) -> int:
        """How many requests to have in flight (x-ms-dop-hint, this instance's share)."""
        ...


class SquareApi(Protocol):
    async def retrieve_customer(self, customer_id: str) -> dict[str, Any] | None:
        """The customer object, or None when Square says NOT_FOUND."""
        ...

    async def search_customers_updated_since(
        self, start_at: str, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]: ...

    async def batch_retrieve_orders(self, order_ids: list[str]) -> dict[str, dict[str, Any]]: ...

    async def get_payment(self, payment_id: str) -> dict[str, Any] | None: ...

    async def get_refund(self, refund_id: str) -> dict[str, Any] | None: ...

    async def retrieve_location(self, location_id: str) -> dict[str, Any] | None: ...

    async def batch_retrieve_catalog(
        self, object_ids: list[str]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]: ...

    async def search_catalog_changed_since(
        self, begin_time: str | None, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None, str | None]: ...

    # History pages: (objects, next cursor or None). A cursor is valid only with the query that produced it.
    async def list_customers(
        self, cursor: str | None = None, *, limit: int = 100, sort_field: str = "CREATED_AT", sort_order: str = "ASC"
    ) -> tuple[list[dict[str, Any]], str | None]: ...

    async def search_customers(
        self, query: dict[str, Any], cursor: str | None = None, *, limit: int = 100
    ) -> tuple[list[dict[str, Any]], str | None]: ...

    async def bulk_retrieve_customers(self, customer_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Customers by id (any number; sent 100 per request); unknown ids are absent."""
        ...

    async def search_orders(
        self, location_ids: list[str], query: dict[str, Any], cursor: str | None = None, *, limit: int = 500
    ) -> tuple[list[dict[str, Any]], str | None]: ...

    async def list_payments(
        self, cursor: str | None = None, **params: str | int | None
    ) -> tuple[list[dict[str, Any]], str | None]: ...

    async def list_refunds(
        self, cursor: str | None = None, **params: str | int | None
    ) -> tuple[list[dict[str, Any]], str | None]: ...

    async def list_locations(self) -> list[dict[str, Any]]: ...

    async def search_events(
        self, query: dict[str, Any], cursor: str | None = None, *, limit: int = 100
    ) -> tuple[list[dict[str, Any]], str | None]: ...

    async def update_customer(
        self, customer_id: str, changes: dict[str, Any], *, version: int | None = None
    ) -> dict[str, Any] | None:
        """The updated customer; None when it does not exist. Stale `version` → ConcurrencyError; a refused
        field → InvalidDataError naming it."""
        ...

    async def create_customer(self, fields: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]: ...

    async def delete_customer(self, customer_id: str, *, version: int | None = None) -> bool:
        """False when Square no longer has the customer."""
        ...


class Metrics(Protocol):
    def increment(self, name: str, value: float = 1.0, **dimensions: str) -> None: ...
