"""Marketing-list membership: the list actions and the list ↔ member relationships.

- `POST lists(<id>)/Microsoft.Dynamics.CRM.AddMemberList {"EntityId": "<guid>"}` → 200
  `AddMemberListResponse {"Id": "<listmemberid>"}` (Web API AddMemberList action / AddMemberListResponse complex
  type, learn.microsoft.com previous-versions dynamicscrm-2016 mt607495 / mt592997).
- `POST AddListMembersList {"List": {listid}, "Members": [{"@odata.type": "Microsoft.Dynamics.CRM.contact",
  "contactid": …}, …]}` → 204: unbound, no return value (progref/webapireference/actions/addlistmemberslist.md).
  "The members that are added to the list must be of the same type: Account, Contact, or Lead"
  (AddListMembersListRequest, Notes for callers).
- `POST lists(<id>)/Microsoft.Dynamics.CRM.RemoveMemberList {"EntityId"}` → 204 (RemoveMemberListRequest:
  ListId + EntityId; a Web API action where Dynamics 365 apps are enabled).
- Reading members: `GET listmembers?$filter=_listid_value eq <id>` (listmember supports RetrieveMultiple and
  Delete: ce/developer/reference/entities/listmember.md) or the many-to-many navigation
  `GET lists(<id>)/listcontact_association` (listlead_association, listaccount_association; list.md
  "Many-To-Many Relationships", intersect entity listmember).

[inference] where no document says: a member id that is not a row of the list's member type answers that table's
"Does Not Exist" (the platform looks the member up in that table); adding a member already in the list adds
nothing and returns the existing listmember id; removing a non-member is a no-op; a dynamic (type=true),
inactive or locked list refuses new members (list.md: "Inactive marketing lists are read-only", "If Yes is
selected [lockstatus], no additional members can be added"); `membercount` follows the members.
"""

from __future__ import annotations

import re
from typing import Any

from devstack.dataverse_emulator.addressing import locate, not_found, parse_key, primary_key_form
from devstack.dataverse_emulator.crm_tables import MEMBER_TYPES
from devstack.dataverse_emulator.memberships import membership, recount
from devstack.dataverse_emulator.query import select_columns
from devstack.dataverse_emulator.server import Answer, Call, Handlers, _representation
from devstack.dataverse_emulator.store import DataverseFault, utc_now

_BOUND = re.compile(r"^lists\((?P<key>[^)]*)\)/(?P<segment>[\w.]+)$")
_ASSOCIATIONS = {
    "listcontact_association": "contact",
    "listlead_association": "lead",
    "listaccount_association": "account",
}
_NAMESPACE = "Microsoft.Dynamics.CRM."


def handles(call: Call) -> bool:
    return (call.method == "POST" and call.tail == "AddListMembersList") or _BOUND.match(call.tail) is not None


def handle(handlers: Handlers, call: Call) -> Answer:
    if call.tail == "AddListMembersList":
        return _add_many(handlers, call)
    match = _BOUND.match(call.tail)
    assert match is not None
    segment = match.group("segment")
    list_row = _list_row(handlers, match.group("key"))
    if call.method == "GET" and segment in _ASSOCIATIONS:
        return _members(handlers, call, list_row, _ASSOCIATIONS[segment])
    if call.method == "POST" and segment == f"{_NAMESPACE}AddMemberList":
        member_id = _add(handlers, list_row, _entity_id(call))
        context = f"{call.base}$metadata#Microsoft.Dynamics.CRM.AddMemberListResponse"
        return Answer(200, {"@odata.context": context, "Id": member_id})
    if call.method == "POST" and segment == f"{_NAMESPACE}RemoveMemberList":
        _remove(handlers, list_row, _entity_id(call))
        return Answer(204)
    raise DataverseFault(404, "0x8006088a", f"Resource not found for the segment '{segment}'.")


def _add_many(handlers: Handlers, call: Call) -> Answer:
    body = call.json()
    target, members = body.get("List"), body.get("Members")
    if not isinstance(target, dict) or not target.get("listid") or not isinstance(members, list) or not members:
        raise DataverseFault(400, "0x80040203", "AddListMembersList needs List (with listid) and Members.")
    list_row = _list_row(handlers, str(target["listid"]))
    member_type = _member_type(list_row)
    member_ids = []
    for member in members:
        logical = str(member.get("@odata.type", "")).removeprefix(_NAMESPACE) if isinstance(member, dict) else ""
        if logical != member_type:
            raise DataverseFault(
                400,
                "0x80040203",
                f"The members that are added to the list must be of the list's member type ({member_type}); "
                f"got '{logical or 'no @odata.type'}'.",
            )
        member_ids.append(str(member.get(f"{member_type}id", "")).lower())
    for member_id in member_ids:  # all members exist before any is added: the request is one operation
        _member_row(handlers, member_type, member_id)
    with handlers.em.store.transaction():
        for member_id in member_ids:
            _add(handlers, list_row, member_id)
    return Answer(204)


def _add(handlers: Handlers, list_row: dict[str, Any], member_id: str) -> str:
    store = handlers.em.store
    member_type = _member_type(list_row)
    _refuse_closed(list_row)
    _member_row(handlers, member_type, member_id)
    existing = membership(store, list_row["listid"], member_id)
    if existing is not None:
        return str(existing["listmemberid"])
    values = {"_listid_value": list_row["listid"], "_entityid_value": member_id, "entitytype": member_type}
    row = store.insert(store.table("listmembers"), values, utc_now())
    recount(store, list_row["listid"])
    handlers.records += 1
    handlers.em.writes_applied += 1
    return str(row["listmemberid"])


def _remove(handlers: Handlers, list_row: dict[str, Any], member_id: str) -> None:
    store = handlers.em.store
    existing = membership(store, list_row["listid"], member_id)
    if existing is None:
        return
    store.delete(store.table("listmembers"), existing)  # recounts the list (memberships.py)
    handlers.records += 1
    handlers.em.writes_applied += 1


def _members(handlers: Handlers, call: Call, list_row: dict[str, Any], logical: str) -> Answer:
    store = handlers.em.store
    member_table = store.by_logical[logical]
    ids = [
        m["_entityid_value"]
        for m in store.table("listmembers").rows.values()
        if m["_listid_value"] == list_row["listid"]
    ]
    columns = select_columns(member_table, call.query.get("$select"))
    rows = [member_table.rows[i] for i in ids if i in member_table.rows]
    return Answer(
        200,
        {
            "@odata.context": f"{call.base}$metadata#{member_table.definition.entity_set}",
            "value": [_representation(member_table, row, columns) for row in rows],
        },
    )


def _list_row(handlers: Handlers, key_text: str) -> dict[str, Any]:
    lists = handlers.em.store.table("lists")
    key = primary_key_form(lists, parse_key(key_text))
    row = locate(lists, key)
    if row is None:
        raise not_found(lists, key)
    return row


def _member_type(list_row: dict[str, Any]) -> str:
    return MEMBER_TYPES[int(list_row["createdfromcode"])]


def _member_row(handlers: Handlers, member_type: str, member_id: str) -> dict[str, Any]:
    table = handlers.em.store.by_logical[member_type]
    row = table.rows.get(member_id)
    if row is None:
        raise DataverseFault(404, "0x80040217", f"{member_type} With Id = {member_id} Does Not Exist")
    return row


def _refuse_closed(list_row: dict[str, Any]) -> None:
    if list_row.get("type"):
        raise DataverseFault(400, "0x80040203", "Members cannot be added to a dynamic marketing list.")
    if list_row.get("statecode") != 0:
        raise DataverseFault(400, "0x80040203", "Inactive marketing lists are read-only.")
    if list_row.get("lockstatus"):
        raise DataverseFault(400, "0x80040203", "The marketing list is locked: no additional members can be added.")


def _entity_id(call: Call) -> str:
    entity_id = call.json().get("EntityId")
    if not entity_id:
        raise DataverseFault(400, "0x80040203", "The EntityId parameter is required.")
    return str(entity_id).lower()
