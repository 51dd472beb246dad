"""The control API (/_control/…): act like a person in the Dashboard or at the till, load history that no
webhook will replay, steer webhook delivery, move time, and read state. Not part of Square's API.

Customer edits here are "a person in Square": they fire customer.created/updated/deleted like the API does,
but are not validated (Square holds legacy data that today's API would refuse)."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from aiohttp import web

from devstack.square_emulator.clock import parse
from devstack.square_emulator.customers import EDITABLE
from devstack.square_emulator.history import Span, generate_customers, generate_sales
from devstack.square_emulator.keys import BOOK, COMMERCE, CURSORS, DELIVERER, EVENTS
from devstack.square_emulator.responses import FAULTS, STATS, Fault, SquareFault, json_object
from devstack.square_emulator.sales import Till

EXTRA_CREATE_FIELDS = ("group_ids", "segment_ids")


def _not_found(customer_id: str) -> SquareFault:
    return SquareFault(404, "NOT_FOUND", f"Customer with ID `{customer_id}` not found.")


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
        raise _not_found(customer_id)
    changes = {k: v for k, v in (await json_object(request)).items() if k in EDITABLE}
    customer, events = book.update(customer_id, changes)
    request.app[DELIVERER].enqueue(events)
    return web.json_response(customer)


async def control_delete(request: web.Request) -> web.Response:
    book = request.app[BOOK]
    customer_id = request.match_info["customer_id"]
    if customer_id not in book.customers:
        raise _not_found(customer_id)
    request.app[DELIVERER].enqueue(book.delete(customer_id))
    return web.json_response({"deleted": customer_id})


async def control_merge(request: web.Request) -> web.Response:
    ids = (await json_object(request)).get("customer_ids", [])
    book = request.app[BOOK]
    if len(ids) < 2 or any(cid not in book.customers for cid in ids):
        raise SquareFault(400, "BAD_REQUEST", "merge needs two or more existing customers")
    survivor, events = book.merge(ids)
    request.app[DELIVERER].enqueue(events)
    return web.json_response(survivor)


async def control_state(request: web.Request) -> web.Response:
    book = request.app[BOOK]
    return web.json_response(
        {"customers": list(book.customers.values()), "deleted": list(book.deleted), "merged_into": book.merged_into}
    )


async def control_events(request: web.Request) -> web.Response:
    return web.json_response(request.app[EVENTS].all)


async def control_delivery(request: web.Request) -> web.Response:
    deliverer = request.app[DELIVERER]
    if request.method == "POST":
        deliverer.reconfigure(await json_object(request))
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


async def control_clock(request: web.Request) -> web.Response:
    """Move the emulator's time forward (`advance_seconds`); the answer is its new "now"."""
    clock = request.app[BOOK].clock
    if request.method == "POST":
        clock.advance(float((await json_object(request)).get("advance_seconds", 0)))
    return web.json_response({"now": clock.now().isoformat()})


async def control_cursors(request: web.Request) -> web.Response:
    """How long a pagination cursor stays valid (`ttl_seconds`)."""
    cursors = request.app[CURSORS]
    if request.method == "POST":
        cursors.ttl_seconds = float((await json_object(request)).get("ttl_seconds", cursors.ttl_seconds))
    return web.json_response({"ttl_seconds": cursors.ttl_seconds})


async def control_faults(request: web.Request) -> web.Response:
    """Make the next matching /v2 requests fail: [{"status": 429, "count": 2, "method": "PUT",
    "path_prefix": "/v2/customers"}]; DELETE clears them."""
    faults = request.app[FAULTS]
    if request.method == "DELETE":
        faults.clear()
    elif request.method == "POST":
        body = await request.json()
        faults.extend(Fault(**item) for item in (body if isinstance(body, list) else [body]))
    return web.json_response([asdict(f) for f in faults if f.count > 0])


async def history_customers(request: web.Request) -> web.Response:
    """Customers as they stood before Tillbridge: given timestamps and versions, no webhook, no event."""
    body = await request.json()
    items = body if isinstance(body, list) else [body]
    book = request.app[BOOK]
    return web.json_response({"customers": [book.import_history(item) for item in items]})


async def history_sales(request: web.Request) -> web.Response:
    """Past sales (each a /_control/sales body plus `at`, and optionally `refund: {at, amount, reason}`), rung up
    with backdated timestamps and no events."""
    body = await request.json()
    commerce = request.app[COMMERCE]
    rung: list[dict[str, Any]] = []
    for item in body if isinstance(body, list) else [body]:
        if item.get("location_id") not in commerce.locations:
            raise SquareFault(400, "NOT_FOUND", "location_id names no store", "location_id")
        order, payment, _ = Till(commerce, at=item.get("at"), quiet=True).ring_up_sale(item)
        answer: dict[str, Any] = {"order": order, "payment": payment}
        wanted = item.get("refund")
        if wanted and payment:
            till = Till(commerce, at=wanted.get("at"), quiet=True)
            answer["refund"], _ = till.refund(payment["id"], wanted.get("amount"), wanted.get("reason", "Returned"))
        rung.append(answer)
    return web.json_response(rung)


def _span(body: dict[str, Any], now: Any) -> Span:
    start = parse(body.get("start")) or now - timedelta(days=365 * 3)
    end = parse(body.get("end")) or now - timedelta(days=1)
    if start > end:
        raise SquareFault(400, "INVALID_TIME_RANGE", "start must be before end", "start")
    return Span(start, end)


async def history_generate(request: web.Request) -> web.Response:
    """Made-up history at scale: {"customers": N, "sales": M, "start", "end", "seed"} (no events)."""
    body = await json_object(request)
    book, commerce = request.app[BOOK], request.app[COMMERCE]
    span = _span(body, book.clock.now())
    seed = int(body.get("seed", 1))
    customers = generate_customers(book, int(body.get("customers", 0)), span, seed, len(book.customers))
    buyers = list(book.customers) if body.get("sales") else []
    sales = generate_sales(commerce, int(body.get("sales", 0)), span, seed, buyers)
    return web.json_response({"customers": customers, **sales, "total_customers": len(book.customers)})


def add_routes(app: web.Application) -> None:
    router = app.router
    router.add_post("/_control/customers", control_create)
    router.add_get("/_control/customers", control_state)
    router.add_patch("/_control/customers/{customer_id}", control_update)
    router.add_delete("/_control/customers/{customer_id}", control_delete)
    router.add_post("/_control/merge", control_merge)
    router.add_get("/_control/events", control_events)
    router.add_route("*", "/_control/delivery", control_delivery)
    router.add_post("/_control/flush", control_flush)
    router.add_route("*", "/_control/stats", control_stats)
    router.add_route("*", "/_control/clock", control_clock)
    router.add_route("*", "/_control/cursors", control_cursors)
    router.add_route("*", "/_control/faults", control_faults)
    router.add_post("/_control/history/customers", history_customers)
    router.add_post("/_control/history/sales", history_sales)
    router.add_post("/_control/history/generate", history_generate)
