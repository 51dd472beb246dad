"""Locations (Square's shapes) and the POS-like control endpoints for the commerce side of the emulator.

ListLocations: every location including inactive ones, alphabetical by name, no pagination (SPEC
ListLocations)."""

from __future__ import annotations

from aiohttp import web

from devstack.square_emulator.keys import COMMERCE, DELIVERER
from devstack.square_emulator.responses import SquareFault, json_object, not_found, ok
from devstack.square_emulator.sales import Till


async def list_locations(request: web.Request) -> web.Response:
    locations = sorted(request.app[COMMERCE].locations.values(), key=lambda loc: (loc["name"], loc["id"]))
    return ok({"locations": locations} if locations else {})


async def retrieve_location(request: web.Request) -> web.Response:
    wanted = request.match_info["location_id"]
    location = request.app[COMMERCE].locations.get(wanted)
    if location is None:
        raise not_found("location", wanted)
    return ok({"location": location})


# ---- control: act like the Square Point of Sale app and Dashboard


async def control_add_location(request: web.Request) -> web.Response:
    body = await json_object(request)
    location, events = request.app[COMMERCE].add_location(body.pop("name"), **body)
    request.app[DELIVERER].enqueue(events)
    return web.json_response(location)


async def control_update_location(request: web.Request) -> web.Response:
    commerce = request.app[COMMERCE]
    wanted = request.match_info["location_id"]
    if wanted not in commerce.locations:
        raise not_found("location", wanted)
    location, events = commerce.update_location(wanted, await json_object(request))
    request.app[DELIVERER].enqueue(events)
    return web.json_response(location)


async def control_catalog(request: web.Request) -> web.Response:
    items, events = request.app[COMMERCE].edit_catalog((await json_object(request))["items"])
    request.app[DELIVERER].enqueue(events)
    return web.json_response({"objects": items})


async def control_sale(request: web.Request) -> web.Response:
    sale = await json_object(request)
    if sale.get("location_id") not in request.app[COMMERCE].locations:
        raise SquareFault(400, "NOT_FOUND", "location_id names no store", "location_id")
    order, payment, events = Till(request.app[COMMERCE]).ring_up_sale(sale)
    request.app[DELIVERER].enqueue(events)
    return web.json_response({"order": order, "payment": payment})


async def control_refund(request: web.Request) -> web.Response:
    body = await json_object(request)
    commerce = request.app[COMMERCE]
    if body.get("payment_id") not in commerce.payments:
        raise SquareFault(404, "NOT_FOUND", "payment_id names no payment", "payment_id")
    refund, events = Till(commerce).refund(
        body["payment_id"], body.get("amount"), body.get("reason", "Customer request")
    )
    request.app[DELIVERER].enqueue(events)
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


def add_routes(app: web.Application) -> None:
    router = app.router
    router.add_get("/v2/locations", list_locations)
    router.add_get("/v2/locations/{location_id}", retrieve_location)
    router.add_post("/_control/locations", control_add_location)
    router.add_patch("/_control/locations/{location_id}", control_update_location)
    router.add_post("/_control/catalog", control_catalog)
    router.add_post("/_control/sales", control_sale)
    router.add_post("/_control/refunds", control_refund)
    router.add_get("/_control/commerce", control_state)
