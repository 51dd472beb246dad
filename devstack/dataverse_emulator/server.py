"""The Dataverse emulator's HTTP server: /api/data/v9.2/ (OData subset) and /_control/ (tests, demo)."""

from __future__ import annotations

import json
import re
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlencode

from aiohttp import web

from devstack.dataverse_emulator.crm_tables import crm_tables
from devstack.dataverse_emulator.identity import DEFAULT_USER, Directory
from devstack.dataverse_emulator.metadata import Metadata
from devstack.dataverse_emulator.odata_filter import FilterError, parse_filter
from devstack.dataverse_emulator.org_store import OrgStore
from devstack.dataverse_emulator.store import DataverseFault, Table, bare_contact_table, standard_tables

API = "/api/data/v9.2/"
_SEGMENT = re.compile(r"^(?P<name>[A-Za-z_]\w*)(?:\((?P<key>.*)\))?$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_KEY_PART = re.compile(r"(\w+)=('(?:[^']|'')*'|[^,]+)")


@dataclass
class Limits:
    """Service protection, per the documented defaults but configurable (benchmarks use real figures)."""

    requests_per_window: int = 6000
    window_seconds: float = 300.0
    max_concurrency: int = 52
    retry_after_seconds: float = 5.0
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    dop_hint: int = 50


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
    store: OrgStore = field(init=False)
    metadata: Metadata = field(init=False)
    directory: Directory = field(init=False)  # bearer tokens → systemuser ids (identity.py)
    faults: list[Fault] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)
    writes_applied: int = 0
    _window: deque[float] = field(default_factory=deque)
    _in_flight: int = 0

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.store = OrgStore([bare_contact_table(), *standard_tables(), *crm_tables()])
        self.metadata = Metadata(self.store)
        self.directory = Directory({self.token: DEFAULT_USER})
        self.store.create(self.store.table("systemusers"), {"fullname": "Integration user"}, _now(), DEFAULT_USER)
        if not self.bare:
            provision(self.metadata, self.prefix)
        self.faults.clear()
        self.stats.clear()
        self._window.clear()
        self.writes_applied = 0


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


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error(fault: DataverseFault) -> web.Response:
    body = {"error": {"code": fault.code, "message": fault.message}}
    return web.json_response(body, status=fault.status, headers=fault.headers)


def _parse_key(text: str) -> dict[str, Any] | str:
    """`<guid>` → the id; `col='v',col2=3` → a key dict."""
    text = unquote(text)
    if _GUID.match(text):
        return text.lower()
    parts = _KEY_PART.findall(text)
    if not parts:
        raise DataverseFault(400, "0x80060888", f"Bad key segment '{text}'.")
    key: dict[str, Any] = {}
    for column, raw in parts:
        key[column] = raw[1:-1].replace("''", "'") if raw.startswith("'") else (int(raw) if raw.isdigit() else raw)
    return key


def _representation(table: Table, row: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
    id_column = table.definition.id_column
    shown = {k: v for k, v in row.items() if select is None or k in select or k == id_column}
    return {"@odata.etag": f'W/"{row["versionnumber"]}"', **shown}


@dataclass
class Call:
    """One Web API request, from HTTP or from inside a $batch."""

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
    def __init__(self, emulator: Emulator) -> None:
        self.em = emulator

    def _locate(self, table: Table, key: dict[str, Any] | str) -> dict[str, Any] | None:
        if isinstance(key, str):
            return table.rows.get(key)
        return table.find_by_key(key)

    def _not_found(self, table: Table, key: dict[str, Any] | str) -> DataverseFault:
        if isinstance(key, str):
            return DataverseFault(404, "0x80040217", f"{table.definition.logical_name} With Id = {key} Does Not Exist")
        return DataverseFault(
            404,
            "0x80060891",
            f"A record with the specified key values does not exist in {table.definition.logical_name} entity",
        )

    def _bind_lookups(self, table: Table, body: dict[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, value in body.items():
            if name.startswith("@odata"):
                continue
            if name.endswith("@odata.bind"):
                navigation = name[: -len("@odata.bind")]
                if navigation not in table.definition.lookups:
                    raise DataverseFault(
                        400,
                        "0x80060888",
                        f"An undeclared property '{navigation}' which only has property annotations in the payload.",
                    )
                values[self._lookup_column(table, navigation)] = (
                    self._resolve_bind(value, table.definition.lookups[navigation]) if value else None
                )
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

    def _resolve_bind(self, reference: str, expected_set: str) -> str:
        match = _SEGMENT.match(reference.strip("/").split("/")[-1])
        if match is None or match.group("key") is None:
            raise DataverseFault(400, "0x80060888", f"Bad @odata.bind reference '{reference}'.")
        if match.group("name") not in expected_set.split("|"):
            raise DataverseFault(400, "0x80060888", f"The lookup expects {expected_set}, not {match.group('name')}.")
        target = self.em.store.table(match.group("name"))
        key = _parse_key(match.group("key"))
        row = self._locate(target, key)
        if row is None:
            raise self._not_found(target, key)
        return str(row[target.definition.id_column])

    def _entity_id_header(self, call: Call, table: Table, row: dict[str, Any]) -> dict[str, str]:
        return {"OData-EntityId": f"{call.base}{table.definition.entity_set}({row[table.definition.id_column]})"}

    def _write_answer(self, call: Call, table: Table, row: dict[str, Any], created: bool) -> Answer:
        if "return=representation" in (call.header("Prefer") or ""):
            select = call.query.get("$select")
            body = _representation(table, row, select.split(",") if select else None)
            return Answer(201 if created else 200, body)
        return Answer(204, None, self._entity_id_header(call, table, row))

    def patch(self, call: Call, table: Table, key: dict[str, Any] | str) -> Answer:
        values = self._bind_lookups(table, call.json())
        row = self._locate(table, key)
        if_match, if_none = call.header("If-Match"), call.header("If-None-Match")
        if row is None and if_match:
            raise self._not_found(table, key)
        if row is not None and if_none == "*":
            raise DataverseFault(412, "0x80040237", "A record with matching key values already exists.")
        if row is not None and if_match and if_match != "*" and if_match != f'W/"{row["versionnumber"]}"':
            raise DataverseFault(
                412, "0x80060882", "The version of the existing record doesn't match the RowVersion property provided."
            )
        if row is None:
            seed = {} if isinstance(key, str) else dict(key)
            row = self.em.store.create(table, {**values, **seed}, _now(), key if isinstance(key, str) else None)
            created = True
        else:
            if not isinstance(key, str):  # key values in an upsert-by-key body are ignored on update
                values = {k: v for k, v in values.items() if k not in key}
            self.em.store.update(table, row, values, _now())
            created = False
        self.em.writes_applied += 1
        return self._write_answer(call, table, row, created)

    def post_collection(self, call: Call, table: Table) -> Answer:
        values = self._bind_lookups(table, call.json())
        row = self.em.store.create(table, values, _now(), values.pop(table.definition.id_column, None))
        self.em.writes_applied += 1
        return self._write_answer(call, table, row, True)

    def get_one(self, call: Call, table: Table, key: dict[str, Any] | str) -> Answer:
        row = self._locate(table, key)
        if row is None:
            raise self._not_found(table, key)
        select = call.query.get("$select")
        body = _representation(table, row, select.split(",") if select else None)
        return Answer(200, {"@odata.context": f"{call.base}$metadata#{table.definition.entity_set}/$entity", **body})

    def get_collection(self, call: Call, table: Table) -> Answer:
        rows = list(table.rows.values())
        if "$filter" in call.query:
            try:
                predicate = parse_filter(call.query["$filter"])
            except FilterError as error:
                raise DataverseFault(400, "0x80060888", f"Invalid $filter: {error}") from error
            rows = [row for row in rows if predicate(row)]
        if "$top" in call.query:
            rows = rows[: int(call.query["$top"])]
        page_size = 5000
        match = re.search(r"odata\.maxpagesize=(\d+)", call.header("Prefer") or "")
        if match:
            page_size = int(match.group(1))
        skip = int(call.query.get("$skiptoken", "0"))
        page = rows[skip : skip + page_size]
        select = call.query.get("$select")
        body: dict[str, Any] = {
            "@odata.context": f"{call.base}$metadata#{table.definition.entity_set}",
            "value": [_representation(table, row, select.split(",") if select else None) for row in page],
        }
        if skip + page_size < len(rows):
            query = {k: v for k, v in call.query.items() if k != "$skiptoken"}
            query["$skiptoken"] = str(skip + page_size)
            body["@odata.nextLink"] = f"{call.base}{call.tail}?{urlencode(query)}"
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
        self.em.store.update(table, target, content, _now())
        self.em.store.update(
            table,
            subordinate,
            {"statecode": 1, "statuscode": 2, "merged": True, "_masterid_value": target[id_column]},
            _now(),
        )
        self.em.writes_applied += 1
        return Answer(204)
