"""The Square emulator's HTTP server: Square's REST endpoints (shapes, paging, errors and refusals from the
official OpenAPI spec and docs, see docs/emulator-fidelity.md "## Square") and the /_control/ API."""

from __future__ import annotations

import random
from collections import Counter

from aiohttp import web

from devstack.square_emulator import (
    catalog_routes,
    commerce_routes,
    control,
    customer_routes,
    events_api,
    order_routes,
    payment_routes,
    subscriptions,
)
from devstack.square_emulator.commerce import Commerce
from devstack.square_emulator.customers import CustomerBook
from devstack.square_emulator.delivery import Deliverer, DeliveryConfig
from devstack.square_emulator.keys import BOOK, COMMERCE, CURSORS, DELIVERER, EVENTS
from devstack.square_emulator.paging import CursorBook
from devstack.square_emulator.responses import FAULTS, SQUARE_VERSION, STATS, TOKEN, square_edge

__all__ = ["SQUARE_VERSION", "create_app"]


async def _start_delivery(app: web.Application) -> None:
    app[DELIVERER].start()


async def _stop_delivery(app: web.Application) -> None:
    await app[DELIVERER].stop()


def create_app(token: str, delivery: DeliveryConfig, seed: int = 7) -> web.Application:
    app = web.Application(middlewares=[square_edge], client_max_size=64 * 1024 * 1024)
    book = CustomerBook(rng=random.Random(seed))
    app[BOOK] = book
    app[EVENTS] = book.log
    app[COMMERCE] = Commerce(rng=book.rng, clock=book.clock, events=book.log)
    app[CURSORS] = CursorBook()
    app[DELIVERER] = Deliverer(delivery)
    app[STATS] = Counter()
    app[FAULTS] = []
    app[TOKEN] = token
    for module in (
        customer_routes,
        order_routes,
        payment_routes,
        catalog_routes,
        commerce_routes,
        events_api,
        subscriptions,
        control,
    ):
        module.add_routes(app)
    app.on_startup.append(_start_delivery)
    app.on_cleanup.append(_stop_delivery)
    return app
