"""Which Square event types Tillbridge handles, and which entity each one is about."""

from __future__ import annotations

from dataclasses import dataclass

from shared.models import WebhookEnvelope


@dataclass(frozen=True)
class Route:
    entity_kind: str
    full_object_key: str | None  # the key under data.object holding the full object (None: thin event)
    fixed_entity_id: str | None = None  # events about no particular object (the catalog version)


ROUTES: dict[str, Route] = {
    "customer.created": Route("customer", "customer"),
    "customer.updated": Route("customer", "customer"),
    "customer.deleted": Route("customer", "customer"),
    # Point-of-Sale sales fire payment events, never order.created (reference/square.md §2)
    "payment.created": Route("payment", "payment"),
    "payment.updated": Route("payment", "payment"),
    "order.created": Route("order", None),
    "order.updated": Route("order", None),
    "refund.created": Route("refund", "refund"),
    "refund.updated": Route("refund", "refund"),
    "location.created": Route("location", None),
    "location.updated": Route("location", None),
    "catalog.version.updated": Route("catalog", None, fixed_entity_id="catalog"),
}


def route_for(event_type: str) -> Route | None:
    return ROUTES.get(event_type)


def entity_id(envelope: WebhookEnvelope, route: Route) -> str:
    """The affected object's id: the embedded object's own id (Square's payment examples have a data.id
    that differs from it), else data.id; the catalog version has one fixed id (one session)."""
    if route.fixed_entity_id:
        return route.fixed_entity_id
    embedded = (envelope.data.object or {}).get(route.full_object_key or "", {})
    if isinstance(embedded, dict) and embedded.get("id"):
        return str(embedded["id"])
    return envelope.data.id
