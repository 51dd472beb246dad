"""The emulator's shared state, as aiohttp application keys (one definition each)."""

from __future__ import annotations

from aiohttp import web

from devstack.square_emulator.commerce import Commerce
from devstack.square_emulator.customers import CustomerBook
from devstack.square_emulator.delivery import Deliverer
from devstack.square_emulator.events_api import CURSORS, EVENTS

BOOK = web.AppKey("book", CustomerBook)
COMMERCE = web.AppKey("commerce", Commerce)
DELIVERER = web.AppKey("deliverer", Deliverer)

__all__ = ["BOOK", "COMMERCE", "CURSORS", "DELIVERER", "EVENTS"]
