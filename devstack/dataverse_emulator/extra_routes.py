"""Web API routes beyond the basic CRUD in server.py: DELETE, `<set>/$count`, change-tracking reads and the
marketing-list actions. `route()` answers a call it owns and returns None for everything else.

DELETE `<set>(<id or alternate key>)` → 204; a missing row → 404 as for GET (powerapps-docs
webapi/update-delete-entities-using-web-api "Basic delete"). Deleting a list or a list member's record removes its
listmember rows; change tracking reports the deletion (change_tracking.py).
"""

from __future__ import annotations

from devstack.dataverse_emulator import change_tracking, list_actions
from devstack.dataverse_emulator.server import _SEGMENT, Answer, Call, Handlers, _parse_key
from devstack.dataverse_emulator.store import DataverseFault


def route(handlers: Handlers, call: Call) -> Answer | None:
    if list_actions.handles(call):
        return list_actions.handle(handlers, call)
    if call.tail.endswith("/$count") and call.method == "GET":
        return change_tracking.count(handlers, call, handlers.em.store.table(call.tail[: -len("/$count")]))
    match = _SEGMENT.match(call.tail)
    if match is None:
        return None
    name, key_text = match.group("name"), match.group("key")
    if name == "listmembers" and call.method in ("POST", "PATCH"):
        raise DataverseFault(
            405, "0x80060888", "The emulator adds list members only through AddMemberList / AddListMembersList."
        )
    if call.method == "DELETE" and key_text is not None:
        return _delete(handlers, name, key_text)
    if call.method == "GET" and key_text is None and change_tracking.wants(call):
        return change_tracking.read(handlers, call, handlers.em.store.table(name))
    return None


def _delete(handlers: Handlers, entity_set: str, key_text: str) -> Answer:
    store = handlers.em.store
    table = store.table(entity_set)
    key = _parse_key(key_text)
    row = handlers._locate(table, key)
    if row is None:
        raise handlers._not_found(table, key)
    store.delete(table, str(row[table.definition.id_column]))
    list_actions.after_delete(store, table, row)
    handlers.em.writes_applied += 1
    return Answer(204)
