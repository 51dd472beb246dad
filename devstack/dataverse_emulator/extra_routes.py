"""Web API routes beyond table CRUD and bulk messages: `<set>/$count`, change-tracking reads and the
marketing-list actions. `route()` answers a call it owns and returns None for everything else (app.py's
dispatch then serves it). DELETE is a table request like GET and PATCH (server.py Handlers.delete)."""

from __future__ import annotations

from devstack.dataverse_emulator import change_tracking, list_actions
from devstack.dataverse_emulator.addressing import SEGMENT
from devstack.dataverse_emulator.server import Answer, Call, Handlers


def route(handlers: Handlers, call: Call) -> Answer | None:
    if list_actions.handles(call):
        return list_actions.handle(handlers, call)
    if call.tail.endswith("/$count") and call.method == "GET":
        return change_tracking.count(handlers, call, handlers.em.store.table(call.tail[: -len("/$count")]))
    match = SEGMENT.match(call.tail)
    if match is not None and match.group("key") is None and call.method == "GET" and change_tracking.wants(call):
        return change_tracking.read(handlers, call, handlers.em.store.table(match.group("name")))
    return None
