"""REST endpoints (Square's shapes) and POS-like control endpoints for the commerce side of the emulator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from devstack.square_emulator.commerce import Commerce

COMMERCE = web.AppKey("commerce", Commerce)
DELIVER: web.AppKey[Callable[[list[dict[str, Any]]], None]] = web.AppKey("deliver_events")


def _error(status: int, code: str, detail: str, field: str | None = None) -> web.Response:
    error: dict[str, Any] = {"category": "INVALID_REQUEST_ERROR", "code": code, "detail": detail}
    if field:
        error["field"] = field
    return web.json_response({"errors": [error]}, status=status)


def _found(name: str, value: dict[str, Any] | None, wanted: str) -> web.Response:
    if value is None:
        return _error(404, "NOT_FOUND", f"Could not find {name} with id: {wanted}")
    return web.json_response({name: value})


async def list_locations(request: web.Request) -> web.Response:
    locations = sorted(request.app[COMMERCE].locations.values(), key=lambda loc: loc["name"])
    return web.json_response({"locations": locations} if locations else {})


async def retrieve_location(request: web.Request) -> web.Response:
    wanted = request.match_info["location_id"]
    return _found("location", request.app[COMMERCE].locations.get(wanted), wanted)


async def retrieve_order(request: web.Request) -> web.Response:
    wanted = request.match_info["order_id"]
    return _found("order", request.app[COMMERCE].orders.get(wanted), wanted)


async def batch_retrieve_orders(request: web.Request) -> web.Response:
    body = await request.json()
    ids = body.get("order_ids") or []
    if not 1 <= len(ids) <= 100:
        return _error(400, "INVALID_ARRAY_LENGTH", "order_ids must hold 1 to 100 ids.", "order_ids")
    orders = [
        request.app[COMMERCE].orders[i] for i in ids if i in request.app[COMMERCE].orders
    ]  # unknown ids are skipped
    if body.get("location_id"):
        orders = [o for o in orders if o["location_id"] == body["location_id"]]
    return web.json_response({"orders": orders} if orders else {})


async def get_payment(request: web.Request) -> web.Response:
    wanted = request.match_info["payment_id"]
    return _found("payment", request.app[COMMERCE].payments.get(wanted), wanted)


async def list_payments(request: web.Request) -> web.Response:
    commerce = request.app[COMMERCE]
    location = request.query.get("location_id") or next(iter(commerce.locations), None)  # default: the main location
    begin, end = request.query.get("begin_time", ""), request.query.get("end_time", "~")
    found = [p for p in commerce.payments.values() if p["location_id"] == location and begin <= p["created_at"] < end]
    found.sort(key=lambda p: p["created_at"], reverse=request.query.get("sort_order", "DESC") == "DESC")
    return web.json_response({"payments": found[: int(request.query.get("limit", "100"))]} if found else {})


async def get_refund(request: web.Request) -> web.Response:
    wanted = request.match_info["refund_id"]
    return _found("refund", request.app[COMMERCE].refunds.get(wanted), wanted)


async def search_catalog(request: web.Request) -> web.Response:
    body = await request.json()
    commerce = request.app[COMMERCE]
    types = set(body.get("object_types") or ["ITEM", "ITEM_VARIATION", "CATEGORY"])
    begin = body.get("begin_time") or ""
    objects = [
        o
        for o in commerce.catalog.values()
        if o["type"] in types
        and o["updated_at"] > begin
        and (body.get("include_deleted_objects") or not o["is_deleted"])
    ]
    result: dict[str, Any] = {"objects": objects} if objects else {}
    if commerce.catalog_updated_at:
        result["latest_time"] = commerce.catalog_updated_at
    return web.json_response(result)


async def batch_retrieve_catalog(request: web.Request) -> web.Response:
    """Items, categories and variations by id; related objects: a variation's item, an item's categories."""
    body = await request.json()
    commerce = request.app[COMMERCE]
    objects: list[dict[str, Any]] = []
    parents: list[dict[str, Any]] = []
    for object_id in body.get("object_ids", []):
        if object_id in commerce.catalog:
            objects.append(commerce.catalog[object_id])
        elif (found := commerce.variation(object_id)) is not None:
            objects.append(found[1])
            parents.append(found[0])
    result: dict[str, Any] = {"objects": objects}
    if body.get("include_related_objects"):
        related_ids = [p["id"] for p in parents]
        related_ids += [c["id"] for o in objects + parents for c in o.get("item_data", {}).get("categories", [])]
        result["related_objects"] = [commerce.catalog[i] for i in dict.fromkeys(related_ids) if i in commerce.catalog]
    return web.json_response(result)


# ---- control: act like the Square Point of Sale app and Dashboard


async def control_add_location(request: web.Request) -> web.Response:
    body = await request.json()
    location, events = request.app[COMMERCE].add_location(body.pop("name"), **body)
    request.app[DELIVER](events)
    return web.json_response(location)


async def control_update_location(request: web.Request) -> web.Response:
    commerce = request.app[COMMERCE]
    wanted = request.match_info["location_id"]
    if wanted not in commerce.locations:
        return _error(404, "NOT_FOUND", f"Could not find location with id: {wanted}")
    location, events = commerce.update_location(wanted, await request.json())
    request.app[DELIVER](events)
    return web.json_response(location)


async def control_catalog(request: web.Request) -> web.Response:
    items, events = request.app[COMMERCE].edit_catalog((await request.json())["items"])
    request.app[DELIVER](events)
    return web.json_response({"objects": items})


async def control_sale(request: web.Request) -> web.Response:
    sale = await request.json()
    if sale.get("location_id") not in request.app[COMMERCE].locations:
        return _error(400, "NOT_FOUND", "location_id names no store", "location_id")
    order, payment, events = request.app[COMMERCE].ring_up_sale(sale)
    request.app[DELIVER](events)
    return web.json_response({"order": order, "payment": payment})


async def control_refund(request: web.Request) -> web.Response:
    body = await request.json()
    commerce = request.app[COMMERCE]
    if body.get("payment_id") not in commerce.payments:
        return _error(404, "NOT_FOUND", "payment_id names no payment", "payment_id")
    refund, events = commerce.refund(body["payment_id"], body.get("amount"), body.get("reason", "Customer request"))
    request.app[DELIVER](events)
    return web.json_response(refund)


async def control_state(request: web.Request) -> web.Response:
    commerce = request.app[COMMERCE]
    return web.json_response(
        {
            "locations": list(commerce.locations.values()),
            "catalog": list(commerce.catalog.values()),
            "orders": list(commerce.orders.values()),
            "payments": list(commerce.payments.values()),
            "refunds": list(commerce.refunds.values()),
        }
    )


def add_routes(app: web.Application, commerce: Commerce) -> None:
    app[COMMERCE] = commerce
    router = app.router
    router.add_get("/v2/locations", list_locations)
    router.add_get("/v2/locations/{location_id}", retrieve_location)
    router.add_get("/v2/orders/{order_id}", retrieve_order)
    router.add_post("/v2/orders/batch-retrieve", batch_retrieve_orders)
    router.add_get("/v2/payments", list_payments)
    router.add_get("/v2/payments/{payment_id}", get_payment)
    router.add_get("/v2/refunds/{refund_id}", get_refund)
    router.add_post("/v2/catalog/search", search_catalog)
    router.add_post("/v2/catalog/batch-retrieve", batch_retrieve_catalog)
    router.add_post("/_control/locations", control_add_location)
    router.add_patch("/_control/locations/{location_id}", control_update_location)
    router.add_post("/_control/catalog", control_catalog)
    router.add_post("/_control/sales", control_sale)
    router.add_post("/_control/refunds", control_refund)
    router.add_get("/_control/commerce", control_state)
