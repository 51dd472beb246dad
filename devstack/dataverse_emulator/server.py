"""The Dataverse emulator's state and request handlers: /api/data/v9.2/ (OData subset) and /_control/."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from devstack.dataverse_emulator.addressing import (
    API,
    SEGMENT,
    Key,
    locate,
    not_found,
    parse_reference,
    syntax_error,
)
from devstack.dataverse_emulator.crm_tables import crm_tables
from devstack.dataverse_emulator.identity import SystemUser
from devstack.dataverse_emulator.metadata import Metadata
from devstack.dataverse_emulator.org_store import OrgStore
from devstack.dataverse_emulator.protection import Budget, Limits
from devstack.dataverse_emulator.query import filtered, next_link, ordered, page_size, select_columns, top_of
from devstack.dataverse_emulator.store import DataverseFault, Table, bare_contact_table, standard_tables, utc_now

__all__ = ["API", "SEGMENT", "Answer", "Call", "Emulator", "Fault", "Handlers", "Limits"]


@dataclass
class Fault:
    status: int
    count: int
    code: str = "0x80040216"
    method: str | None = None
    retry_after: float | None = None
    hang_after_write_seconds: float = 0.0


@dataclass
class Emulator:
    token: str
    prefix: str = "tb"
    bare: bool = False
    limits: Limits = field(default_factory=Limits)
    extra_tokens: list[str] = field(default_factory=list)
    store: OrgStore = field(init=False)
    metadata: Metadata = field(init=False)
    users: dict[str, SystemUser] = field(default_factory=dict, init=False)  # bearer token → its systemuser
    faults: list[Fault] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)
    writes_applied: int = 0

    def __post_init__(self) -> None:
        for token in [self.token, *self.extra_tokens]:
            self.users.setdefault(token, SystemUser.new(token, len(self.users) + 1))
        self.reset()

    def reset(self) -> None:
        """A fresh organisation: empty tables, the schema applied; the users (tokens, ids) stay, budgets restart."""
        self.store = OrgStore([bare_contact_table(), *standard_tables(), *crm_tables()])
        self.metadata = Metadata(self.store)
        for user in self.users.values():
            user.budget = Budget(user.name)
            self._add_systemuser(user)
        if not self.bare:
            provision(self.metadata, self.prefix)
        self.faults.clear()
        self.stats.clear()
        self.writes_applied = 0

    def user_for(self, authorization: str | None) -> SystemUser | None:
        """The user a request's `Authorization: Bearer <token>` signs in as (None: 401)."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        return self.users.get(authorization[len("Bearer ") :])

    def add_user(
        self, token: str, name: str | None = None, fullname: str | None = None, user_id: str | None = None
    ) -> SystemUser:
        """Accept another bearer token: an application user or a person, with its systemuser row and budget.
        A token already accepted keeps its user."""
        if token not in self.users:
            user = SystemUser.new(token, len(self.users) + 1, name, fullname, user_id)
            self._add_systemuser(user)
            self.users[token] = user
        return self.users[token]

    def _add_systemuser(self, user: SystemUser) -> None:
        systemusers = self.store.table("systemusers")
        if user.user_id not in systemusers.rows:
            self.store.create(systemusers, {"fullname": user.fullname}, utc_now(), user.user_id)


def provision(metadata: Metadata, prefix: str) -> None:
    """The environment after `tillbridge schema apply`: the same schema file, through the same metadata calls."""
    from tillbridge_cli.schema import (
        column_definition,
        key_definition,
        load_schema,
        lookup_definition,
        table_definition,
        table_logical,
        targets_of,
    )

    schema = load_schema()
    targets = targets_of(prefix, schema)
    for table in schema["tables"]:
        name = table_logical(prefix, table)
        entity = f"EntityDefinitions(LogicalName='{name}')"
        if table.get("create"):
            metadata.handle("POST", "EntityDefinitions", table_definition(prefix, table), API)
        for column in table["columns"]:
            metadata.handle("POST", f"{entity}/Attributes", column_definition(prefix, column), API)
        for lookup in table.get("lookups", []):
            metadata.handle("POST", "RelationshipDefinitions", lookup_definition(prefix, table, lookup, targets), API)
        for key in table["keys"]:
            definition = key_definition(prefix, key)
            metadata.store.by_logical[name].definition.keys[str(definition["SchemaName"]).lower()] = tuple(
                definition["KeyAttributes"]
            )


def _error(fault: DataverseFault) -> web.Response:
    body = {"error": {"code": fault.code, "message": fault.message}}
    return web.json_response(body, status=fault.status, headers=fault.headers)


def _representation(table: Table, row: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
    id_column = table.definition.id_column
    shown = {k: v for k, v in row.items() if select is None or k in select or k == id_column}
    return {"@odata.etag": f'W/"{row["versionnumber"]}"', **shown}


@dataclass
class Call:
    """One Web API request, from HTTP or from inside a $batch. `tail` is still percent-encoded."""

    method: str
    tail: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    base: str  # https://host/api/data/v9.2/

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else {}


@dataclass
class Answer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def fault_answer(fault: DataverseFault) -> Answer:
    return Answer(fault.status, {"error": {"code": fault.code, "message": fault.message}}, dict(fault.headers))


class Handlers:
    """The OData handlers of one HTTP request; `records` counts the rows written (the cost model charges them)."""

    def __init__(self, emulator: Emulator) -> None:
        self.em = emulator
        self.records = 0
        self.operations = 0

    def bind_lookups(self, table: Table, body: dict[str, Any]) -> dict[str, Any]:
        """Column values of a write body: `nav@odata.bind` resolved to `_nav_value` (the target must exist)."""
        values: dict[str, Any] = {}
        for name, value in body.items():
            if name.startswith("@odata"):
                continue
            if name.endswith("@odata.bind"):
                navigation = name[: -len("@odata.bind")]
                if navigation not in table.definition.lookups:  # case-sensitive: SchemaName casing for custom ones
                    raise DataverseFault(
                        400,
                        "0x80060888",
                        f"An undeclared property '{navigation}' which only has property annotations in the payload "
                        "but no property value was found in the payload.",
                    )
                values[self._lookup_column(table, navigation)] = (
                    self._resolve_bind(value, table.definition.lookups[navigation]) if value else None
                )
            elif "@" in name:
                continue  # other instance annotations (e.g. @OData.Community.Display.V1.FormattedValue)
            else:
                values[name] = value
        return values

    @staticmethod
    def _lookup_column(table: Table, navigation: str) -> str:
        """`_<lookup>_value`; a polymorphic lookup's navigation reads back as its column: customerid_contact →
        `_customerid_value`, regardingobjectid_contact_task → `_regardingobjectid_value`."""
        parts = navigation.lower().split("_")
        candidates = [f"_{'_'.join(parts[:end])}_value" for end in range(len(parts), 0, -1)]
        return next((c for c in candidates if c in table.definition.columns), candidates[0])

    def _resolve_bind(self, reference: Any, expected_set: str) -> str:
        if not isinstance(reference, str):
            raise DataverseFault(400, "0x80060888", f"An @odata.bind value must be a URL, not {reference!r}.")
        address = parse_reference(reference, self.em.store)
        if address.table.definition.entity_set not in expected_set.split("|"):
            raise DataverseFault(
                400, "0x80060888", f"The lookup expects {expected_set}, not {address.table.definition.entity_set}."
            )
        row = locate(address.table, address.key)
        if row is None:
            raise not_found(address.table, address.key)
        return str(row[address.table.definition.id_column])

    def _entity_id_header(self, call: Call, table: Table, row: dict[str, Any]) -> dict[str, str]:
        return {"OData-EntityId": f"{call.base}{table.definition.entity_set}({row[table.definition.id_column]})"}

    def _write_answer(self, call: Call, table: Table, row: dict[str, Any], created: bool) -> Answer:
        if "return=representation" in (call.header("Prefer") or ""):
            body = _representation(table, row, select_columns(table, call.query.get("$select")))
            return Answer(201 if created else 200, body)
        return Answer(204, None, self._entity_id_header(call, table, row))

    def check_preconditions(self, call: Call, table: Table, key: Key, row: dict[str, Any] | None) -> None:
        """If-Match / If-None-Match ("Perform conditional operations using the Web API")."""
        if_match, if_none = call.header("If-Match"), call.header("If-None-Match")
        if row is None and if_match:
            raise not_found(table, key)
        if row is not None and if_none == "*":
            raise DataverseFault(412, "0x80040237", "A record with matching key values already exists.")
        if row is not None and if_match and if_match != "*" and if_match != f'W/"{row["versionnumber"]}"':
            raise DataverseFault(
                412, "0x80060882", "The version of the existing record doesn't match the RowVersion property provided."
            )

    def upsert(self, table: Table, key: Key, values: dict[str, Any], row: dict[str, Any] | None) -> dict[str, Any]:
        """Create with the key's values copied in, or update with the body's key values dropped ("Use Upsert")."""
        self.records += 1
        self.em.writes_applied += 1
        if row is None:
            seed = {} if isinstance(key, str) else dict(key)
            return self.em.store.create(table, {**values, **seed}, utc_now(), key if isinstance(key, str) else None)
        if not isinstance(key, str):
            values = {k: v for k, v in values.items() if k not in key}
        return self.em.store.update(table, row, values, utc_now())

    def patch(self, call: Call, table: Table, key: Key) -> Answer:
        values = self.bind_lookups(table, call.json())
        row = locate(table, key)
        self.check_preconditions(call, table, key, row)
        written = self.upsert(table, key, values, row)
        return self._write_answer(call, table, written, row is None)

    def post_collection(self, call: Call, table: Table) -> Answer:
        values = self.bind_lookups(table, call.json())
        row = self.em.store.create(table, values, utc_now(), values.pop(table.definition.id_column, None))
        self.records += 1
        self.em.writes_applied += 1
        return self._write_answer(call, table, row, True)

    def delete(self, call: Call, table: Table, key: Key) -> Answer:
        """DELETE by id or by alternate key → 204 ("Update and delete table rows using the Web API"). The store
        records the tombstone change tracking reports and removes list memberships (org_store.py); a changeset
        or bulk request that rolls back undoes all of it."""
        row = locate(table, key)
        if row is None:
            raise not_found(table, key)
        self.check_preconditions(call, table, key, row)
        self.em.store.delete(table, row)
        self.records += 1
        self.em.writes_applied += 1
        return Answer(204)

    def get_one(self, call: Call, table: Table, key: Key) -> Answer:
        select = select_columns(table, call.query.get("$select"))
        row = locate(table, key)
        if row is None:
            raise not_found(table, key)
        body = _representation(table, row, select)
        return Answer(200, {"@odata.context": f"{call.base}$metadata#{table.definition.entity_set}/$entity", **body})

    def get_collection(self, call: Call, table: Table) -> Answer:
        select = select_columns(table, call.query.get("$select"))
        rows = ordered(
            table, filtered(table, list(table.rows.values()), call.query.get("$filter")), call.query.get("$orderby")
        )
        top = top_of(call.query)
        if top is not None:
            rows = rows[:top]
        size = page_size(call.header("Prefer"))
        skip_text = call.query.get("$skiptoken", "0")
        if not skip_text.isdigit():
            raise syntax_error("Invalid $skiptoken.")
        skip = int(skip_text)
        body: dict[str, Any] = {"@odata.context": f"{call.base}$metadata#{table.definition.entity_set}"}
        if call.query.get("$count") == "true":
            body["@odata.count"] = min(len(rows), 5000)  # Dataverse counts up to 5,000
        body["value"] = [_representation(table, row, select) for row in rows[skip : skip + size]]
        if skip + size < len(rows):
            body["@odata.nextLink"] = next_link(call.base, call.tail, call.query, skip + size)
        return Answer(200, body)

    def merge(self, call: Call) -> Answer:
        body = call.json()
        parts = [body.get(name) or {} for name in ("Target", "Subordinate", "UpdateContent")]
        if any("@odata.type" not in part for part in parts):
            raise DataverseFault(
                400, "0x80040203", "The @odata.type annotation is required on Target, Subordinate and UpdateContent."
            )
        logical = str(parts[0]["@odata.type"]).rsplit(".", 1)[-1]
        table = self.em.store.by_logical.get(logical)
        if table is None:
            raise DataverseFault(400, "0x80040203", f"Merge is not supported for entity '{logical}'.")
        id_column = table.definition.id_column
        target, subordinate = (table.rows.get(str(p.get(id_column, "")).lower()) for p in parts[:2])
        if target is None or subordinate is None:
            missing = parts[0] if target is None else parts[1]
            raise DataverseFault(404, "0x80040217", f"{logical} With Id = {missing.get(id_column)} Does Not Exist")
        if subordinate is target or subordinate.get("statecode") != 0:
            raise DataverseFault(400, "0x80040203", "The subordinate record must be a different, active record.")
        content = {k: v for k, v in parts[2].items() if not k.startswith("@odata")}
        self.em.store.update(table, target, content, utc_now())
        self.em.store.update(
            table,
            subordinate,
            {"statecode": 1, "statuscode": 2, "merged": True, "_masterid_value": target[id_column]},
            utc_now(),
        )
        self.em.writes_applied += 1
        self.records += 2
        return Answer(204)
