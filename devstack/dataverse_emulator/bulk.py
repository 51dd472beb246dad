"""Bulk messages: `POST <set>/Microsoft.Dynamics.CRM.CreateMultiple | UpdateMultiple | UpsertMultiple` with
{"Targets": [...]}, as "Use bulk operation messages" (powerapps-docs bulk-operations.md) and
reference/dataverse.md §4 and §12 describe them:

- `@odata.type` is required on every Target, and every Target is of the set's table;
- CreateMultiple → 200 {"Ids": [...]}; UpdateMultiple and UpsertMultiple → 204;
- on a standard table any failure rolls the whole request back;
- UpdateMultiple takes the primary key only (alternate keys are not supported through the Web API) and applies
  only the first of several Targets for the same row;
- UpsertMultiple finds a row by `@odata.id` (alternate key or id), by the primary key, or by the key's
  properties; several Targets for the same row are an error; with the alternate key both in `@odata.id` and in
  the body, the create path answers 400 0x80040216 while the update path succeeds (SDK PR #127).

The codes for malformed Targets are the emulator's (the docs state the rule, not the code): 400 0x80040203.
"""

from __future__ import annotations

import uuid
from typing import Any

from devstack.dataverse_emulator.addressing import GUID, Key, locate, not_found, parse_reference
from devstack.dataverse_emulator.server import Answer, Call, Handlers
from devstack.dataverse_emulator.store import DataverseFault, Table, fold, utc_now

ACTIONS = ("CreateMultiple", "UpdateMultiple", "UpsertMultiple")
Target = dict[str, Any]


def _invalid(message: str) -> DataverseFault:
    return DataverseFault(400, "0x80040203", message)


def bulk_action(handlers: Handlers, call: Call, table: Table, action: str) -> Answer:
    if call.method != "POST":
        raise DataverseFault(405, "0x80060888", f"The HTTP method '{call.method}' is not allowed for {action}.")
    targets = _targets(call, table)
    store, applied = handlers.em.store, handlers.em.writes_applied
    try:
        with store.transaction():
            if action == "CreateMultiple":
                ids = [_create(handlers, table, target) for target in targets]
                context = f"{call.base}$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse"
                return Answer(200, {"@odata.context": context, "Ids": ids})
            if action == "UpdateMultiple":
                _update_multiple(handlers, table, targets)
            else:
                _upsert_multiple(handlers, table, targets)
            return Answer(204)
    except DataverseFault:
        handlers.em.writes_applied = applied
        raise


def _targets(call: Call, table: Table) -> list[Target]:
    body = call.json()
    targets = body.get("Targets") if isinstance(body, dict) else None
    if not isinstance(targets, list) or not targets or not all(isinstance(t, dict) for t in targets):
        raise _invalid("The Targets parameter must be a non-empty collection of records.")
    expected = f"Microsoft.Dynamics.CRM.{table.definition.logical_name}"
    for index, target in enumerate(targets):
        kind = target.get("@odata.type")
        if kind is None:
            raise _invalid(f"Targets[{index}] has no @odata.type; it is required on every item of Targets.")
        if kind != expected:
            raise _invalid(f"All Targets must be {expected} (the table of the request); Targets[{index}] is {kind}.")
    return targets


def _create(handlers: Handlers, table: Table, target: Target) -> str:
    values = handlers.bind_lookups(table, target)
    row = handlers.em.store.create(table, values, utc_now(), values.pop(table.definition.id_column, None))
    handlers.records += 1
    handlers.em.writes_applied += 1
    return str(row[table.definition.id_column])


def _update_multiple(handlers: Handlers, table: Table, targets: list[Target]) -> None:
    id_column = table.definition.id_column
    done: set[str] = set()
    for index, target in enumerate(targets):
        if "@odata.id" in target:
            raise _invalid("Alternate keys are not supported with UpdateMultiple in the Web API; use the primary key.")
        row_id = str(target.get(id_column, ""))
        if not GUID.match(row_id):
            raise _invalid(f"Targets[{index}] has no primary key {id_column}; UpdateMultiple needs it.")
        if row_id.lower() in done:
            continue  # "the operation is performed on the first record only"
        done.add(row_id.lower())
        row = table.rows.get(row_id.lower())
        if row is None:
            raise not_found(table, row_id.lower())
        values = handlers.bind_lookups(table, target)
        values.pop(id_column, None)
        handlers.em.store.update(table, row, values, utc_now())
        handlers.records += 1
        handlers.em.writes_applied += 1


def _identity(handlers: Handlers, table: Table, target: Target) -> tuple[Key | None, bool]:
    """The Target's row address, and whether it came from @odata.id."""
    reference = target.get("@odata.id")
    if reference is not None:
        address = parse_reference(str(reference), handlers.em.store)
        if address.table is not table:
            raise _invalid(f"@odata.id {reference} is not a row of {table.definition.entity_set}.")
        return address.key, True
    row_id = target.get(table.definition.id_column)
    if isinstance(row_id, str) and GUID.match(row_id):
        return row_id.lower(), False
    for columns in table.definition.keys.values():
        if all(target.get(c) is not None for c in columns):
            return {c: target[c] for c in columns}, False
    return None, False  # no key at all: Upsert creates a new row


def _signature(key: Key | None) -> Any:
    if key is None:
        return None
    return key if isinstance(key, str) else tuple(sorted((c, fold(v)) for c, v in key.items()))


def _upsert_multiple(handlers: Handlers, table: Table, targets: list[Target]) -> None:
    identities = [_identity(handlers, table, target) for target in targets]
    seen: set[Any] = set()
    for index, (key, _) in enumerate(identities):
        signature = _signature(key)
        if signature is not None and signature in seen:
            raise _invalid(
                f"Targets[{index}] identifies the same {table.definition.logical_name} as an earlier Target; "
                "UpsertMultiple does not accept duplicate primary or alternate key values."
            )
        seen.add(signature)
    for target, (key, from_odata_id) in zip(targets, identities, strict=True):
        values = handlers.bind_lookups(table, target)
        if key is None:
            handlers.upsert(table, str(uuid.uuid4()), values, None)
            continue
        row = locate(table, key)
        if row is None and from_odata_id and isinstance(key, dict) and any(c in values for c in key):
            raise DataverseFault(400, "0x80040216", "An unexpected error occurred.")
        if isinstance(key, str):
            values.pop(table.definition.id_column, None)
        handlers.upsert(table, key, values, row)
