"""The Square emulator's HTTP server: /v2/customers… (Square's shapes and error body) and /_control/."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from typing import Any

from aiohttp import web

from devstack.square_emulator import commerce_routes, subscriptions
from devstack.square_emulator.commerce import Commerce
from devstack.square_emulator.customers import EDITABLE, CustomerBook
from devstack.square_emulator.delivery import Deliverer, DeliveryConfig
from shared.core.normalize import NormalizationError, normalize_email
from shared.core.times import parse_time

SQUARE_VERSION = "2025-08-20"
BOOK = web.AppKey("book", CustomerBook)
DELIVERER = web.AppKey("deliverer", Deliverer)
STATS = web.AppKey("stats", Counter[str])
TOKEN = web.AppKey("token", str)
EXTRA_CREATE_FIELDS = ("group_ids", "segment_ids")


def square_error(status: int, category: str, code: str, detail: str, field: str | None = None) -> web.Response:
    error: dict[str, Any] = {"category": category, "code": code, "detail": detail}
    if field:
        error["field"] = field
    return web.json_response({"errors": [error]}, status=status, headers={"Square-Version": SQUARE_VERSION})


def ok(body: dict[str, Any]) -> web.Response:
    return web.json_response(body, headers={"Square-Version": SQUARE_VERSION})


def _not_found(customer_id: str) -> web.Response:
    return square_error(404, "INVALID_REQUEST_ERROR", "NOT_FOUND", f"Customer with ID `{customer_id}` not found.")


@web.middleware
async def square_auth(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path.startswith("/v2/"):
        request.app[STATS]["requests"] += 1
        resource = request.match_info.route.resource
        request.app[STATS][f"{request.method} {resource.canonical if resource else request.path}"] += 1
        if request.headers.get("Authorization") != f"Bearer {request.app[TOKEN]}":
            return square_error(401, "AUTHENTICATION_ERROR", "UNAUTHORIZED", "This request could not be authorized.")
    response: web.StreamResponse = await handler(request)
    return response


async def retrieve_customer(request: web.Request) -> web.Response:
    customer = request.app[BOOK].get(request.match_info["customer_id"])
    return ok({"customer": customer}) if customer else _not_found(request.match_info["customer_id"])


def _valid_email(value: Any) -> bool:
    try:
        normalize_email(str(value))
        return True
    except NormalizationError:
        return False


async def update_customer(request: web.Request) -> web.Response:
    book = request.app[BOOK]
    customer_id = request.match_info["customer_id"]
    customer = book.customers.get(customer_id)
    if customer is None:
        return _not_found(customer_id)
    body = await request.json()
    version = body.pop("version", None)
    if version is not None and version != customer["version"]:
        return square_error(400, "INVALID_REQUEST_ERROR", "VERSION_MISMATCH", "Version mismatch.", "version")
    if body.get("email_address") and not _valid_email(body["email_address"]):
        return square_error(
            400, "INVALID_REQUEST_ERROR", "INVALID_EMAIL_ADDRESS", "Invalid email address.", "email_address"
        )
    updated, events = book.update(customer_id, body)
    request.app[DELIVERER].enqueue(events)
    return ok({"customer": updated})


async def delete_customer(request: web.Request) -> web.Response:
    book = request.app[BOOK]
    customer_id = request.match_info["customer_id"]
    if customer_id not in book.customers:
        return _not_found(customer_id)
    request.app[DELIVERER].enqueue(book.delete(customer_id))
    return ok({})


async def create_customer(request: web.Request) -> web.Response:
    body = await request.json()
    if body.get("email_address") and not _valid_email(body["email_address"]):
        return square_error(
            400, "INVALID_REQUEST_ERROR", "INVALID_EMAIL_ADDRESS", "Invalid email address.", "email_address"
        )
    customer, events = request.app[BOOK].create(body, source="THIRD_PARTY")
    request.app[DELIVERER].enqueue(events)
    return ok({"customer": customer})


async def bulk_retrieve(request: web.Request) -> web.Response:
    book = request.app[BOOK]
    ids = (await request.json()).get("customer_ids", [])
    if not 1 <= len(ids) <= 100:
        return square_error(
            400, "INVALID_REQUEST_ERROR", "INVALID_ARRAY_LENGTH", "customer_ids must hold 1 to 100 ids.", "customer_ids"
        )
    responses: dict[str, Any] = {}
    for customer_id in ids:
        customer = book.get(customer_id)
        responses[customer_id] = (
            {"customer": customer}
            if customer
            else {
                "errors": [
                    {
                        "category": "INVALID_REQUEST_ERROR",
                        "code": "NOT_FOUND",
                        "detail": f"Customer with ID `{customer_id}` not found.",
                    }
                ]
            }
        )
    return ok({"responses": responses})


def _in_range(value: str, window: dict[str, str]) -> bool:
    moment = parse_time(value)
    start, end = parse_time(window.get("start_at")), parse_time(window.get("end_at"))
    return moment is not None and (start is None or moment >= start) and (end is None or moment <= end)


def _text_match(value: Any, rule: dict[str, str]) -> bool:
    if value is None:
        return False
    if "exact" in rule:
        return str(value).casefold() == rule["exact"].casefold()
    return rule.get("fuzzy", "").casefold() in str(value).casefold()


def _matches(customer: dict[str, Any], query_filter: dict[str, Any]) -> bool:
    for stamp in ("created_at", "updated_at"):
        if stamp in query_filter and not _in_range(customer[stamp], query_filter[stamp]):
            return False
    for name in ("email_address", "phone_number", "reference_id"):
        if name in query_filter and not _text_match(customer.get(name), query_filter[name]):
            return False
    return any(customer.get(n) for n in ("given_name", "family_name", "company_name", "email_address", "phone_number"))


def _page(items: list[dict[str, Any]], cursor: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
    start = int(cursor) if cursor and cursor.isdigit() else 0
    page = items[start : start + limit]
    return page, (str(start + limit) if start + limit < len(items) else None)


async def search_customers(request: web.Request) -> web.Response:
    body = await request.json()
    limit = int(body.get("limit", 100))
    if not 1 <= limit <= 100:
        code = "VALUE_TOO_LOW" if limit < 1 else "VALUE_TOO_HIGH"
        return square_error(400, "INVALID_REQUEST_ERROR", code, "limit must be between 1 and 100.", "limit")
    query = body.get("query", {})
    found = [c for c in request.app[BOOK].customers.values() if _matches(c, query.get("filter", {}))]
    sort = query.get("sort", {})
    found.sort(key=lambda c: c["created_at"], reverse=sort.get("order", "ASC") == "DESC")
    page, cursor = _page(found, body.get("cursor"), limit)
    result: dict[str, Any] = {"customers": page} if page else {}
    if cursor:
        result["cursor"] = cursor
    return ok(result)


async def list_customers(request: web.Request) -> web.Response:
    limit = int(request.query.get("limit", "100"))
    found = sorted(request.app[BOOK].customers.values(), key=lambda c: c["created_at"])
    page, cursor = _page(found, request.query.get("cursor"), max(1, min(limit, 100)))
    result: dict[str, Any] = {"customers": page} if page else {}
    if cursor:
        result["cursor"] = cursor
    return ok(result)


# ---- control API: act like the Dashboard / POS, steer delivery, read state ----


async def control_create(request: web.Request) -> web.Response:
    body = await request.json()
    items = body if isinstance(body, list) else [body]
    created = []
    for item in items:
        customer, events = request.app[BOOK].create(item)
        for name in EXTRA_CREATE_FIELDS:
            if name in item:
                customer[name] = item[name]
        request.app[DELIVERER].enqueue(events)
        created.append(customer)
    return web.json_response(created if isinstance(body, list) else created[0])


async def control_update(request: web.Request) -> web.Response:
    book = request.app[BOOK]
    customer_id = request.match_info["customer_id"]
    if customer_id not in book.customers:
        return _not_found(customer_id)
    changes = {k: v for k, v in (await request.json()).items() if k in EDITABLE}
    customer, events = book.update(customer_id, changes)
    request.app[DELIVERER].enqueue(events)
    return web.json_response(customer)


async def control_delete(request: web.Request) -> web.Response:
    book = request.app[BOOK]
    customer_id = request.match_info["customer_id"]
    if customer_id not in book.customers:
        return _not_found(customer_id)
    request.app[DELIVERER].enqueue(book.delete(customer_id))
    return web.json_response({"deleted": customer_id})


async def control_merge(request: web.Request) -> web.Response:
    ids = (await request.json()).get("customer_ids", [])
    book = request.app[BOOK]
    if len(ids) < 2 or any(cid not in book.customers for cid in ids):
        return square_error(400, "INVALID_REQUEST_ERROR", "BAD_REQUEST", "merge needs two or more existing customers")
    survivor, events = book.merge(ids)
    request.app[DELIVERER].enqueue(events)
    return web.json_response(survivor)


async def control_state(request: web.Request) -> web.Response:
    book = request.app[BOOK]
    return web.json_response(
        {"customers": list(book.customers.values()), "deleted": list(book.deleted), "merged_into": book.merged_into}
    )


async def control_events(request: web.Request) -> web.Response:
    return web.json_response(request.app[BOOK].events)


async def control_delivery(request: web.Request) -> web.Response:
    deliverer = request.app[DELIVERER]
    if request.method == "POST":
        deliverer.reconfigure(await request.json())
    config = {k: v for k, v in asdict(deliverer.config).items() if k != "signature_key"}
    return web.json_response({"config": config, "stats": asdict(deliverer.stats)})


async def control_flush(request: web.Request) -> web.Response:
    deliverer = request.app[DELIVERER]
    idle = await deliverer.wait_idle(float(request.query.get("timeout", "60")))
    return web.json_response({"idle": idle, "stats": asdict(deliverer.stats)}, status=200 if idle else 504)


async def control_stats(request: web.Request) -> web.Response:
    if request.method == "DELETE":
        request.app[STATS].clear()
    stats: Counter[str] = request.app[STATS]
    return web.json_response(dict(stats))


async def _start_delivery(app: web.Application) -> None:
    app[DELIVERER].start()


async def _stop_delivery(app: web.Application) -> None:
    await app[DELIVERER].stop()


def create_app(token: str, delivery: DeliveryConfig, seed: int = 7) -> web.Application:
    import random

    app = web.Application(middlewares=[square_auth])
    app[BOOK] = CustomerBook(rng=random.Random(seed))
    app[DELIVERER] = Deliverer(delivery)
    app[STATS] = Counter()
    app[TOKEN] = token
    app.router.add_get("/v2/customers", list_customers)
    app.router.add_post("/v2/customers", create_customer)
    app.router.add_post("/v2/customers/search", search_customers)
    app.router.add_post("/v2/customers/bulk-retrieve", bulk_retrieve)
    app.router.add_get("/v2/customers/{customer_id}", retrieve_customer)
    app.router.add_put("/v2/customers/{customer_id}", update_customer)
    app.router.add_delete("/v2/customers/{customer_id}", delete_customer)
    subscriptions.add_routes(app)
    book = app[BOOK]
    commerce_routes.add_routes(app, Commerce(rng=book.rng, clock=book.clock, events=book.events))
    app[commerce_routes.DELIVER] = app[DELIVERER].enqueue
    app.router.add_post("/_control/customers", control_create)
    app.router.add_get("/_control/customers", control_state)
    app.router.add_patch("/_control/customers/{customer_id}", control_update)
    app.router.add_delete("/_control/customers/{customer_id}", control_delete)
    app.router.add_post("/_control/merge", control_merge)
    app.router.add_get("/_control/events", control_events)
    app.router.add_route("*", "/_control/delivery", control_delivery)
    app.router.add_post("/_control/flush", control_flush)
    app.router.add_route("*", "/_control/stats", control_stats)
    app.on_startup.append(_start_delivery)
    app.on_cleanup.append(_stop_delivery)
    return app
