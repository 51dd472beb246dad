"""In-memory Square and Dataverse that behave as the real ones do where two-way sync depends on it, and a
driver that runs both flows, the poller and the webhooks between them (unit level, no I/O).

SimSquare: UpdateCustomer is sparse (null clears), checks `version` (VERSION_MISMATCH → ConcurrencyError),
adds one to the version and fires customer.updated with the full customer for every committed update —
including Tillbridge's own (reference/square.md §3, §4). SimDataverse: every write stamps versionnumber (one
counter for the organisation), modifiedon and the caller (`_modifiedby_value`); change tracking returns the
rows changed after a token and deletions; tokens can be expired (reference/dataverse.md §10, §12).
"""

from __future__ import annotations

import copy
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from shared.config.file import TillbridgeConfig, default_config
from shared.core.errors import ChangeTokenExpiredError, ConcurrencyError, FieldProblem, InvalidDataError
from shared.core.models import WebhookEnvelope
from shared.core.normalize import NormalizationError, normalize_email
from shared.core.ports import ChangePage, OutboundMessage, UpsertResult
from shared.flows.context import FlowContext
from shared.flows.crm_contacts import contact_select
from shared.flows.customer_mapping import ContactColumns
from shared.flows.ownership import ConflictRule, CrmDeletes, TwoWayOptions
from shared.flows.two_way import contact_fields, owners
from shared.monitoring.metrics import LogMetrics
from shared.pipeline.crm_changes import Poller, PollSettings
from shared.pipeline.ingress import build_command
from shared.pipeline.worker import RetryPolicy, Worker
from tests.fakes import FakeDataverse, FakeQueue, FakeSquare, FakeState, FixedClock, NoTraces

APP_USER = "00000000-0000-0000-0000-0000000000a1"
PERSON = "11111111-2222-3333-4444-555555555555"


def config_with_owners(column_owners: Mapping[str, str]) -> TillbridgeConfig:
    """The shipped configuration with the given contact columns' owners changed."""
    base = default_config("tb")
    contact = base.contact_mapping
    fields = tuple(replace(f, owner=column_owners.get(f.column, f.owner)) for f in contact.fields)
    return replace(base, mappings={**base.mappings, "contact": replace(contact, fields=fields)})


class KeptTraces(NoTraces):
    """Keeps every attempt's trace (the record timelines the console shows)."""

    def __init__(self) -> None:
        self.kept: list[Any] = []

    async def save(self, trace: object) -> None:
        self.kept.append(trace)

    def steps(self, stage: str) -> list[dict[str, Any]]:
        return [step.detail for trace in self.kept for step in trace.steps if step.stage == stage]


class Counting:
    """Metrics kept in memory (name → total), besides the log metrics."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self._log = LogMetrics()

    def increment(self, name: str, value: float = 1.0, **dimensions: str) -> None:
        self.totals[name] = self.totals.get(name, 0.0) + value


@dataclass
class SimSquare(FakeSquare):
    clock: FixedClock = field(default_factory=FixedClock)
    events: list[dict[str, Any]] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)  # update_customer / create / delete calls that committed
    update_calls: int = 0
    idempotency: dict[str, dict[str, Any]] = field(default_factory=dict)
    _event_seq: int = 0

    def _tick(self) -> str:
        self.clock.advance(1)
        return self.clock.now().strftime("%Y-%m-%dT%H:%M:%S.000Z")

    def _fire(self, event_type: str, customer: dict[str, Any]) -> None:
        self._event_seq += 1
        self.events.append(
            {
                "merchant_id": "M1",
                "type": event_type,
                "event_id": f"ev-{self._event_seq}",
                "created_at": customer["updated_at"],
                "data": {"type": "customer", "id": customer["id"], "object": {"customer": copy.deepcopy(customer)}},
            }
        )

    def add(self, customer_id: str, **fields: Any) -> dict[str, Any]:
        now = self._tick()
        customer = {"id": customer_id, "version": 0, "created_at": now, "updated_at": now, **fields}
        self.customers[customer_id] = customer
        self._fire("customer.created", customer)
        return customer

    def _apply(self, customer: dict[str, Any], changes: Mapping[str, Any]) -> None:
        for name, value in changes.items():
            if name == "address" and isinstance(value, dict):
                address = dict(customer.get("address") or {})
                for part, part_value in value.items():
                    if part_value is None:
                        address.pop(part, None)
                    else:
                        address[part] = part_value
                customer["address"] = address
            elif value is None:
                customer.pop(name, None)
            else:
                customer[name] = value
        customer["version"] += 1
        customer["updated_at"] = self._tick()
        self._fire("customer.updated", customer)

    def edit(self, customer_id: str, **changes: Any) -> None:
        """Someone edits the customer in Square (Dashboard or POS)."""
        self._apply(self.customers[customer_id], changes)

    async def update_customer(
        self, customer_id: str, changes: dict[str, Any], *, version: int | None = None
    ) -> dict[str, Any] | None:
        self.calls.append("update_customer")
        self.update_calls += 1
        customer = self.customers.get(customer_id)
        if customer is None:
            return None
        if version is not None and version != customer["version"]:
            raise ConcurrencyError("Square 400 VERSION_MISMATCH")
        email = changes.get("email_address")
        if email:
            try:
                normalize_email(str(email))
            except NormalizationError:
                raise InvalidDataError(
                    [FieldProblem("email_address", "INVALID_EMAIL_ADDRESS: Invalid email address.")]
                ) from None
        self._apply(customer, changes)
        self.writes.append(f"update:{customer_id}")
        return copy.deepcopy(customer)

    async def create_customer(self, fields: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        self.calls.append("create_customer")
        if idempotency_key in self.idempotency:
            return copy.deepcopy(self.idempotency[idempotency_key])
        customer = self.add(f"SQ{len(self.customers) + 1:04d}", **fields)
        self.idempotency[idempotency_key] = copy.deepcopy(customer)
        self.writes.append(f"create:{customer['id']}")
        return copy.deepcopy(customer)

    async def delete_customer(self, customer_id: str, *, version: int | None = None) -> bool:
        self.calls.append("delete_customer")
        customer = self.customers.pop(customer_id, None)
        if customer is None:
            return False
        customer["updated_at"] = self._tick()
        self.writes.append(f"delete:{customer_id}")
        self._fire("customer.deleted", customer)
        return True


@dataclass
class SimDataverse(FakeDataverse):
    clock: FixedClock = field(default_factory=FixedClock)
    acting: str = APP_USER
    version_counter: int = 1000
    tombstones: dict[str, int] = field(default_factory=dict)
    issued: set[str] = field(default_factory=set)
    writes_by: dict[str, int] = field(default_factory=dict)

    def _stamp(self, row: dict[str, Any]) -> None:
        self.version_counter += 1
        self.clock.advance(1)
        row["versionnumber"] = self.version_counter
        row["modifiedon"] = self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        row["_modifiedby_value"] = self.acting
        self.writes_by[self.acting] = self.writes_by.get(self.acting, 0) + 1

    def seed(self, **values: Any) -> str:
        row_id = super().seed(**values)
        self._stamp(self.rows[row_id])
        return row_id

    async def upsert_by_key(self, entity_set: str, key: Mapping[str, str], payload: Mapping[str, Any]) -> UpsertResult:
        result = await super().upsert_by_key(entity_set, key, payload)
        self._stamp(self.rows[result.entity_id])
        return result

    async def update(
        self, entity_set: str, entity_id: str, payload: Mapping[str, Any], *, must_exist: bool = True
    ) -> None:
        await super().update(entity_set, entity_id, payload, must_exist=must_exist)
        self._stamp(self.rows[entity_id])

    async def update_by_key(self, entity_set: str, key: Mapping[str, str], payload: Mapping[str, Any]) -> str | None:
        found = await super().update_by_key(entity_set, key, payload)
        if found:
            self._stamp(self.rows[found])
        return found

    def person_edits(self, contact_id: str, **values: Any) -> None:
        """A CRM user edits the contact (a form save: one update, stamped with that user)."""
        self.acting = PERSON
        self.rows[contact_id].update(values)
        self._stamp(self.rows[contact_id])
        self.acting = APP_USER

    def person_deletes(self, contact_id: str) -> None:
        self.rows.pop(contact_id)
        self.version_counter += 1
        self.tombstones[contact_id] = self.version_counter

    async def who_am_i(self) -> dict[str, Any]:
        self.calls.append("who_am_i")
        return {"UserId": APP_USER}

    def expire_tokens(self) -> None:
        self.issued.clear()

    async def read_changes(
        self, entity_set: str, select: Sequence[str], link: str | None = None, page_size: int = 5000
    ) -> ChangePage:
        self.calls.append("read_changes")
        since = 0
        if link is not None:
            if link not in self.issued:
                raise ChangeTokenExpiredError("Dataverse 400 0x80044352: Version stamp ... expired")
            since = int(link.split(":")[1])
        changed = sorted(
            (r for r in self.rows.values() if r["versionnumber"] > since), key=lambda r: r["versionnumber"]
        )
        rows = [{k: r.get(k) for k in (*select, "contactid")} for r in changed]
        deleted = [cid for cid, v in self.tombstones.items() if link is not None and v > since]
        token = f"v:{self.version_counter}"
        self.issued.add(token)
        return ChangePage(rows, deleted, None, token)

    async def query_page(
        self, entity_set: str, filter_expr: str, select: Sequence[str], link: str | None = None, page_size: int = 5000
    ) -> tuple[list[dict[str, Any]], str | None]:
        self.calls.append("query_page")
        return await self.query(entity_set, filter_expr, [*select, "contactid"], top=10**9), None


@dataclass
class TwoWay:
    """Both systems, both flows and the poller, pumped by hand (optionally in a shuffled order)."""

    column_owners: dict[str, str]
    conflicts: str = "latest"
    crm_deletes: str = "ignore"
    create_in_square: bool = False
    seed: int = 7
    clock: FixedClock = field(default_factory=FixedClock)
    state: FakeState = field(default_factory=FakeState)
    metrics: Counting = field(default_factory=Counting)
    square_queue: FakeQueue = field(default_factory=FakeQueue)
    crm_queue: FakeQueue = field(default_factory=FakeQueue)
    traces: KeptTraces = field(default_factory=KeptTraces)

    def __post_init__(self) -> None:
        self.square = SimSquare(clock=self.clock)
        self.dataverse = SimDataverse(clock=self.clock)
        self.options = TwoWayOptions(
            conflicts=ConflictRule(self.conflicts),
            crm_deletes=CrmDeletes(self.crm_deletes),
            create_in_square=self.create_in_square,
            push_queue=self.crm_queue,
        )
        self.ctx = FlowContext(
            dataverse=self.dataverse,
            square=self.square,
            state=self.state,
            clock=self.clock,
            metrics=self.metrics,
            columns=ContactColumns("tb"),
            phone_region="US",
            config=config_with_owners(self.column_owners),
            two_way=self.options,
        )
        policy = RetryPolicy(8, 1.0, 5.0)
        self.customers_worker = Worker(ctx=self.ctx, retry_queue=self.square_queue, policy=policy, traces=self.traces)
        self.crm_worker = Worker(ctx=self.ctx, retry_queue=self.crm_queue, policy=policy, traces=self.traces)
        settings = PollSettings(contact_select(contact_fields(self.ctx), self.ctx.columns), "tb_squarecustomerid")
        self.poller = Poller(
            self.dataverse, self.state, self.crm_queue, self.metrics, self.options, owners(self.ctx), settings
        )
        self.rng = random.Random(self.seed)
        self.outcomes: dict[str, int] = {}

    def deliver_webhooks(self) -> None:
        """Square's webhooks for everything that happened, onto the events queue (as the ingress does)."""
        for event in self.square.events:
            command = build_command(WebhookEnvelope.model_validate(event), event, self.clock.now().isoformat())
            assert command is not None
            self.square_queue.sent.append(
                OutboundMessage(command.message_id, command.session_id, command.model_dump_json())
            )
        self.square.events.clear()

    async def pump(self, *, shuffle: bool = False, max_rounds: int = 200) -> int:
        """Poll, deliver and process until nothing moves; the number of messages handled."""
        handled = 0
        for _ in range(max_rounds):
            await self.poller.poll(self.clock.now())
            self.deliver_webhooks()
            pending = [(self.customers_worker, m) for m in self.square_queue.sent]
            pending += [(self.crm_worker, m) for m in self.crm_queue.sent]
            self.square_queue.sent.clear()
            self.crm_queue.sent.clear()
            if not pending:
                return handled
            if shuffle:
                self.rng.shuffle(pending)
            for worker, message in pending:
                outcome = await worker.handle(message.body.encode())
                name = outcome.value if outcome is not None else "none"
                self.outcomes[name] = self.outcomes.get(name, 0) + 1
                handled += 1
        raise AssertionError(f"still moving after {max_rounds} rounds: a loop")

    def contact_of(self, customer_id: str) -> dict[str, Any]:
        return self.dataverse.active_by_square_id()[customer_id]
