"""Which Square event types Tillbridge handles, and which entity each one is about."""

from __future__ import annotations

from dataclasses import dataclass

from shared.models import WebhookEnvelope


@dataclass(frozen=True)
class Route:
    entity_kind: str
    full_object_key: str | None  # the key under data.object holding the full object (None: thin event)


ROUTES: dict[str, Route] = {
    "customer.created": Route("customer", "customer"),
    "customer.updated": Route("customer", "customer"),
    "customer.deleted": Route("customer", "customer"),
}


def route_for(event_type: str) -> Route | None:
    return ROUTES.get(event_type)


def entity_id(envelope: WebhookEnvelope, route: Route) -> str:
    """The affected object's id: data.id, falling back to the embedded object's id."""
    if envelope.data.id:
        return envelope.data.id
    embedded = (envelope.data.object or {}).get(route.full_object_key or "", {})
    return str(embedded.get("id", "")) if isinstance(embedded, dict) else ""
