"""Marketing-list membership as the store keeps it: the listmember intersect rows, list.membercount, and what a
delete takes with it. Every change goes through the store, so it is audited, tracked and undone with a rolled-back
changeset or bulk request like any other write (list_actions.py serves the list actions)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from devstack.dataverse_emulator.crm_tables import MEMBER_TYPES
from devstack.dataverse_emulator.store import Table, utc_now

if TYPE_CHECKING:
    from devstack.dataverse_emulator.org_store import OrgStore


def membership(store: OrgStore, list_id: str, member_id: str) -> dict[str, Any] | None:
    members = store.table("listmembers").rows.values()
    return next((m for m in members if m["_listid_value"] == list_id and m["_entityid_value"] == member_id), None)


def recount(store: OrgStore, list_id: str) -> None:
    """membercount is system-maintained: it follows the list's listmember rows."""
    lists = store.table("lists")
    count = sum(1 for m in store.table("listmembers").rows.values() if m["_listid_value"] == list_id)
    store.maintain(lists, lists.rows[list_id], {"membercount": count}, utc_now())


def after_delete(store: OrgStore, table: Table, row: dict[str, Any]) -> None:
    """A deleted list member keeps its list's count right; a deleted list or member record takes its listmember
    rows with it (the intersect rows cannot outlive either side)."""
    logical = table.definition.logical_name
    if logical == "listmember":
        if row["_listid_value"] in store.table("lists").rows:
            recount(store, str(row["_listid_value"]))
        return
    if logical != "list" and logical not in MEMBER_TYPES.values():
        return
    members = store.table("listmembers")
    column = "_listid_value" if logical == "list" else "_entityid_value"
    row_id = row[table.definition.id_column]
    for member in [m for m in members.rows.values() if m.get(column) == row_id]:
        store.delete(members, member)  # recounts the member's list, as above
