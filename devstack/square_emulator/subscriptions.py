"""Square's Webhook Subscriptions API, as far as `tillbridge square register-webhook` uses it."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

SUBSCRIPTIONS = web.AppKey("subscriptions", dict)
IDEMPOTENCY = web.AppKey("subscription_idempotency", dict)
KNOWN_EVENT_TYPES = {
    "customer.created",
    "customer.updated",
    "customer.deleted",
    "payment.created",
    "payment.updated",
    "order.created",
    "order.updated",
    "refund.created",
    "refund.updated",
    "location.created",
    "location.updated",
    "catalog.version.updated",
}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


def _error(status: int, code: str, detail: str, field: str | None = None) -> web.Response:
    error: dict[str, Any] = {"category": "INVALID_REQUEST_ERROR", "code": code, "detail": detail}
    if field:
        error["field"] = field
    return web.json_response({"errors": [error]}, status=status)


def _public(subscription: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in subscription.items() if k != "signature_key"}


def _invalid(subscription: dict[str, Any]) -> web.Response | None:
    unknown = sorted(set(subscription.get("event_types", [])) - KNOWN_EVENT_TYPES)
    if unknown:
        return _error(400, "INVALID_VALUE", f"Unknown event types: {unknown}", "event_types")
    url = subscription.get("notification_url")
    if url is not None and not str(url).startswith(("https://", "http://127.0.0.1")):
        return _error(400, "INVALID_VALUE", "notification_url must be an HTTPS URL.", "notification_url")
    return None


async def list_subscriptions(request: web.Request) -> web.Response:
    items = [
        _public(s)
        for s in request.app[SUBSCRIPTIONS].values()
        if s["enabled"] or request.query.get("include_disabled") == "true"
    ]
    return web.json_response({"subscriptions": items} if items else {})


async def create_subscription(request: web.Request) -> web.Response:
    body = await request.json()
    key = body.get("idempotency_key")
    if key and key in request.app[IDEMPOTENCY]:
        return web.json_response({"subscription": request.app[IDEMPOTENCY][key]})
    wanted = body.get("subscription") or {}
    if not wanted.get("notification_url"):
        return _error(400, "MISSING_REQUIRED_PARAMETER", "Field must be set", "subscription.notification_url")
    problem = _invalid(wanted)
    if problem is not None:
        return problem
    subscription = {
        "id": f"wbhk_{secrets.token_hex(16)}",
        "name": wanted.get("name", ""),
        "enabled": True,
        "event_types": list(wanted.get("event_types", [])),
        "notification_url": wanted["notification_url"],
        "api_version": wanted.get("api_version", "2025-08-20"),
        "signature_key": secrets.token_urlsafe(16),
        "created_at": _now(),
        "updated_at": _now(),
    }
    request.app[SUBSCRIPTIONS][subscription["id"]] = subscription
    if key:
        request.app[IDEMPOTENCY][key] = subscription
    return web.json_response({"subscription": subscription})


async def update_subscription(request: web.Request) -> web.Response:
    subscription = request.app[SUBSCRIPTIONS].get(request.match_info["subscription_id"])
    if subscription is None:
        return _error(404, "NOT_FOUND", "Subscription not found.")
    changes = (await request.json()).get("subscription") or {}
    problem = _invalid(changes)
    if problem is not None:
        return problem
    for name in ("name", "enabled", "event_types", "notification_url"):
        if name in changes:
            subscription[name] = changes[name]
    subscription["updated_at"] = _now()
    return web.json_response({"subscription": _public(subscription)})


async def rotate_signature_key(request: web.Request) -> web.Response:
    subscription = request.app[SUBSCRIPTIONS].get(request.match_info["subscription_id"])
    if subscription is None:
        return _error(404, "NOT_FOUND", "Subscription not found.")
    subscription["signature_key"] = secrets.token_urlsafe(16)
    return web.json_response({"signature_key": subscription["signature_key"]})


def add_routes(app: web.Application) -> None:
    app[SUBSCRIPTIONS] = {}
    app[IDEMPOTENCY] = {}
    app.router.add_get("/v2/webhooks/subscriptions", list_subscriptions)
    app.router.add_post("/v2/webhooks/subscriptions", create_subscription)
    app.router.add_put("/v2/webhooks/subscriptions/{subscription_id}", update_subscription)
    app.router.add_post("/v2/webhooks/subscriptions/{subscription_id}/signature-key", rotate_signature_key)
