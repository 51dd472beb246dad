"""The one flow registry: Square event type → entity kind → flow → handler.

Routing (webhook), the worker, the ledger and the operations service all read these tables, so a flow's
name, the kinds it owns and the handler that syncs them are defined once. Handlers are named by import
path and loaded on first use: the webhook (cold start) never imports the flows.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, cast

from shared.core.models import WebhookEnvelope

if TYPE_CHECKING:
    from shared.core.models import SyncCommand
    from shared.flows.context import FlowContext, Outcome

    Handler = Callable[[SyncCommand, FlowContext], Awaitable[Outcome]]

UNKNOWN_FLOW = "unknown"
CRM_CONTACTS_FLOW = "crm-contacts"  # CRM → Square (two-way contact sync)
QUEUE_FLOW = "queue"  # messages that are not a SyncCommand at all (nothing to retry: open and resolve only)


@dataclass(frozen=True)
class Kind:
    """One kind of Square object: the flow it belongs to and the handler that syncs it."""

    name: str
    flow: str
    handler: str  # "module:function"
    retry_event_type: str  # the event type a retry (fresh fetch) is sent as


@dataclass(frozen=True)
class Route:
    """One Square event type: the kind it is about and where its object sits in the event."""

    event_type: str
    kind: str
    full_object_key: str | None  # the key under data.object holding the full object (None: thin event)
    fixed_entity_id: str | None = None  # events about no particular object (the catalog version)


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("customer", "customers", "shared.flows.customers:sync_customer", "customer.updated"),
        Kind("payment", "sales", "shared.flows.sales:sync_payment", "payment.updated"),
        Kind("order", "sales", "shared.flows.sales:sync_order", "order.updated"),
        Kind("refund", "refunds", "shared.flows.refunds:sync_refund", "refund.updated"),
        Kind("location", "locations", "shared.flows.locations:sync_location", "location.updated"),
        Kind("catalog", "catalog", "shared.flows.catalog:sync_catalog", "catalog.version.updated"),
        # CRM → Square: contact changes read by Dataverse change tracking, not Square events (no ROUTES entry)
        Kind("contact", CRM_CONTACTS_FLOW, "shared.flows.crm_contacts:sync_contact", "contact.changed"),
    )
}

ROUTES: dict[str, Route] = {
    r.event_type: r
    for r in (
        Route("customer.created", "customer", "customer"),
        Route("customer.updated", "customer", "customer"),
        Route("customer.deleted", "customer", "customer"),
        # Point-of-Sale sales fire payment events, never order.created (reference/square.md §2)
        Route("payment.created", "payment", "payment"),
        Route("payment.updated", "payment", "payment"),
        Route("order.created", "order", None),
        Route("order.updated", "order", None),
        Route("refund.created", "refund", "refund"),
        Route("refund.updated", "refund", "refund"),
        Route("location.created", "location", None),
        Route("location.updated", "location", None),
        Route("catalog.version.updated", "catalog", None, fixed_entity_id="catalog"),
    )
}

# Flows in the order people read them (console, CLI, health); each owns the kinds that name it.
FLOWS: dict[str, tuple[str, ...]] = {}
for _kind in KINDS.values():
    FLOWS.setdefault(_kind.flow, ())
    FLOWS[_kind.flow] += (_kind.name,)
OPERATED_FLOWS = (*FLOWS, QUEUE_FLOW)  # every flow a failure can be recorded under


def route_for(event_type: str) -> Route | None:
    return ROUTES.get(event_type)


def subscribed_event_types() -> list[str]:
    """What the Square webhook subscription must deliver (and `tillbridge square register-webhook` asks for)."""
    return list(ROUTES)


def flow_of(kind: str) -> str:
    found = KINDS.get(kind)
    return found.flow if found else UNKNOWN_FLOW


def kinds_of(flow: str) -> tuple[str, ...] | None:
    """The kinds a flow owns; None for a name that is no flow ("queue" owns none)."""
    if flow == QUEUE_FLOW:
        return ()
    return FLOWS.get(flow)


@cache
def handler_for(kind: str) -> Handler | None:
    found = KINDS.get(kind)
    if found is None:
        return None
    module_name, _, function_name = found.handler.partition(":")
    return cast("Handler", getattr(importlib.import_module(module_name), function_name))


def entity_id(envelope: WebhookEnvelope, route: Route) -> str:
    """The affected object's id: the embedded object's own id (Square's payment examples have a data.id
    that differs from it), else data.id; the catalog version has one fixed id (one session)."""
    if route.fixed_entity_id:
        return route.fixed_entity_id
    embedded = (envelope.data.object or {}).get(route.full_object_key or "", {})
    if isinstance(embedded, dict) and embedded.get("id"):
        return str(embedded["id"])
    return envelope.data.id


SALE_KINDS = ("payment", "order", "refund")  # each writes the rows of one sale (its order's)


def writer_key(command: SyncCommand) -> tuple[str, str]:
    """Whose writer a message waits for in the worker (shared/core/keyed_lock.py): a payment, order or
    refund waits for its sale's (all three write the sale's transaction), anything else for its object's."""
    if command.entity_kind == "order":
        return ("sale", command.entity_id)
    if command.entity_kind in SALE_KINDS:
        data_object = (command.event.get("data") or {}).get("object") or {}
        embedded = data_object.get(command.entity_kind) if isinstance(data_object, dict) else None
        if isinstance(embedded, dict) and embedded.get("order_id"):
            return ("sale", str(embedded["order_id"]))
    return (command.entity_kind, command.entity_id)
