"""Change tracking as the Web API documents it (powerapps-docs "Use change tracking to synchronize data with
external systems", ms.date 2023-06-23; reference/dataverse.md §10 and §12):

- `GET <set>?$select=…` with `Prefer: odata.track-changes` on a table with change tracking enabled answers every
  row, `Preference-Applied: odata.track-changes` and an `@odata.deltaLink` carrying `$deltatoken`. With
  `odata.maxpagesize` the rows are paged by primary key and the delta link arrives **only on the last page**, with
  the version of that moment — a row changed after its page was read is not in the next delta (powerapps-docs
  issue 3862; MicrosoftDocs/dynamics-365-customer-engagement issue 1208).
- GET of the delta link: `@odata.context …/$delta`, new and changed rows first (by version), then deleted rows as
  `{"@odata.context": "…$metadata#<set>/$deletedEntity", "id": …, "reason": "deleted"}`, and a new delta link.
  A row created and deleted between two polls is reported as deleted. Dataverse speaks OData 4.0, so deletions use
  this `$deletedEntity` form, not the OData 4.01 `@removed` annotation. No change: an empty `value` and a new link.
- `$filter`, `$orderby`, `$expand` and `$top` are refused with the documented message
  `The "$<option>" query parameter isn't supported when Change Tracking is enabled.` (status/code: [inference]).
- `GET <set>/$count?$deltatoken=…` answers the number of changes.
- Tokens expire: older than the age limit (Organization.ExpireChangeTrackingInDays, default 7 days) or expired on
  demand through `/_control/change-tracking`; an expired (or never issued) token answers ExpiredVersionStamp
  `0x80044352` "Version stamp associated with the client has expired. Please perform a full sync."
  (powerapps-docs data-service-error-codes; HTTP 400 is [inference]).
- On a table without change tracking the preference is not applied: a plain answer without a delta link
  [inference]; a `$deltatoken` there is refused [inference].
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from devstack.dataverse_emulator.org_store import OrgStore
from devstack.dataverse_emulator.query import page_size, select_columns
from devstack.dataverse_emulator.server import Answer, Call, Handlers, _representation
from devstack.dataverse_emulator.store import DataverseFault, Table

TRACK_CHANGES = "odata.track-changes"
UNSUPPORTED_OPTIONS = ("$filter", "$orderby", "$expand", "$top")
_SKIP_PREFIX = "ct:"  # query values arrive decoded once (HTTP layer, $batch parser): tokens are read as they are


def wants(call: Call) -> bool:
    """A track-changes read: the preference, a delta token, or the next page of either."""
    return (
        TRACK_CHANGES in (call.header("Prefer") or "")
        or "$deltatoken" in call.query
        or call.query.get("$skiptoken", "").startswith(_SKIP_PREFIX)
    )


def read(handlers: Handlers, call: Call, table: Table) -> Answer | None:
    """The answer to a track-changes read, or None when the table does not track changes (plain read)."""
    tracking = handlers.em.store.tracking
    if not tracking.is_tracked(table):
        if "$deltatoken" in call.query:
            raise DataverseFault(
                400, "0x80060888", f"Change tracking is not enabled for entity '{table.definition.logical_name}'."
            )
        return None
    _refuse_unsupported(call)
    if "$deltatoken" in call.query:
        return _delta(handlers, call, table)
    return _initial(handlers, call, table)


def count(handlers: Handlers, call: Call, table: Table) -> Answer:
    """`GET <set>/$count`, with `$deltatoken`: the number of changes since that token."""
    if "$deltatoken" not in call.query:
        return Answer(200, len(table.rows))
    if not handlers.em.store.tracking.is_tracked(table):
        raise DataverseFault(
            400, "0x80060888", f"Change tracking is not enabled for entity '{table.definition.logical_name}'."
        )
    since = handlers.em.store.tracking.version_of(_token(call))
    changed, deleted = _changes(handlers.em.store, table, since)
    return Answer(200, len(changed) + len(deleted))


def _refuse_unsupported(call: Call) -> None:
    for option in UNSUPPORTED_OPTIONS:
        if option in call.query:
            raise DataverseFault(
                400, "0x80060888", f'The "{option}" query parameter isn\'t supported when Change Tracking is enabled.'
            )


def _initial(handlers: Handlers, call: Call, table: Table) -> Answer:
    """Every row, paged by primary key; the delta link (version of this moment) on the last page only."""
    after = _skip(call, "i")
    rows = sorted((row_id, row) for row_id, row in table.rows.items() if after is None or row_id > after)
    size = page_size(call.header("Prefer"))
    page, more = rows[:size], len(rows) > size
    select = select_columns(table, call.query.get("$select"))
    body: dict[str, Any] = {
        "@odata.context": _context(call, table, select, delta=False),
        "value": [_representation(table, row, select) for _row_id, row in page],
    }
    if more:
        body["@odata.nextLink"] = _link(call, table, select, skiptoken=f"{_SKIP_PREFIX}i:{page[-1][0]}")
    else:
        body["@odata.deltaLink"] = _delta_link(handlers, call, table, select)
    return Answer(200, body, {"Preference-Applied": TRACK_CHANGES})


def _delta(handlers: Handlers, call: Call, table: Table) -> Answer:
    """Changes since the token: new and updated rows by version, then deletions. Paged by version up to the
    version of the first page, which the last page's delta link stands for (later changes come next poll)."""
    store = handlers.em.store
    since = handlers.em.store.tracking.version_of(_token(call))
    cursor = _cursor(call)
    kind_after, after, upto = cursor if cursor else ("u", since, store.table_version(table))
    changed, deleted = _changes(store, table, since, upto)
    select = select_columns(table, call.query.get("$select"))
    entries: list[tuple[str, int, dict[str, Any]]] = []
    if kind_after == "u":
        entries += [("u", v, _representation(table, row, select)) for v, row in changed if v > after]
    entries += [("d", v, _deleted_entry(call, table, i)) for v, i in deleted if kind_after == "u" or v > after]
    size = page_size(call.header("Prefer"))
    page = entries[:size]
    body: dict[str, Any] = {
        "@odata.context": _context(call, table, select, delta=True),
        "value": [entry for _kind, _version, entry in page],
    }
    if len(entries) > size:
        kind, version, _entry = page[-1]
        skip = f"{_SKIP_PREFIX}{kind}:{version}:{upto}"
        body["@odata.nextLink"] = _link(call, table, select, skiptoken=skip, token=_token(call))
    else:
        body["@odata.deltaLink"] = _link(call, table, select, token=handlers.em.store.tracking.issue(upto))
    return Answer(200, body)


def _changes(
    store: OrgStore, table: Table, since: int, upto: int | None = None
) -> tuple[list[tuple[int, dict[str, Any]]], list[tuple[int, str]]]:
    top = store.table_version(table) if upto is None else upto
    changed = sorted(
        ((int(row["versionnumber"]), row) for row in table.rows.values() if since < int(row["versionnumber"]) <= top),
        key=lambda item: item[0],
    )
    tombstones = store.tombstones.get(table.definition.entity_set, {})
    deleted = sorted(
        (version, row_id)
        for row_id, version in tombstones.items()
        if since < version <= top and row_id not in table.rows
    )
    return changed, deleted


def _deleted_entry(call: Call, table: Table, row_id: str) -> dict[str, Any]:
    return {
        "@odata.context": f"{call.base}$metadata#{table.definition.entity_set}/$deletedEntity",
        "id": row_id,
        "reason": "deleted",
    }


def _delta_link(handlers: Handlers, call: Call, table: Table, select: list[str] | None) -> str:
    token = handlers.em.store.tracking.issue(handlers.em.store.table_version(table))
    return _link(call, table, select, token=token)


def _link(
    call: Call, table: Table, select: list[str] | None, *, skiptoken: str | None = None, token: str | None = None
) -> str:
    parts = [f"$select={','.join(select)}"] if select else []
    if token is not None:
        parts.append(f"$deltatoken={quote(token, safe='')}")
    if skiptoken is not None:
        parts.append(f"$skiptoken={quote(skiptoken, safe='')}")
    query = "&".join(parts)
    return f"{call.base}{table.definition.entity_set}" + (f"?{query}" if query else "")


def _context(call: Call, table: Table, select: list[str] | None, delta: bool) -> str:
    shape = f"({','.join(select)})" if select else ""
    return f"{call.base}$metadata#{table.definition.entity_set}{shape}" + ("/$delta" if delta else "")


def _token(call: Call) -> str:
    return call.query["$deltatoken"]


def _cursor(call: Call) -> tuple[str, int, int] | None:
    """A delta page's skiptoken: `ct:<u|d>:<last version delivered>:<version the read stops at>`."""
    text = call.query.get("$skiptoken", "")
    parts = text[len(_SKIP_PREFIX) :].split(":") if text.startswith(_SKIP_PREFIX) else []
    if len(parts) != 3 or parts[0] not in ("u", "d") or not (parts[1].isdigit() and parts[2].isdigit()):
        return None
    return parts[0], int(parts[1]), int(parts[2])


def _skip(call: Call, kind: str) -> str | None:
    text = call.query.get("$skiptoken", "")
    prefix = f"{_SKIP_PREFIX}{kind}:"
    return text[len(prefix) :] if text.startswith(prefix) else None
