"""The metadata Web API calls `tillbridge schema apply` makes: read an entity, read/create attributes,
read/create alternate keys (Pending → Active after a configurable delay, Failed on duplicate values)."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from devstack.dataverse_emulator.odata_filter import FilterError, parse_filter
from devstack.dataverse_emulator.store import SYSTEM_COLUMNS, DataverseFault, Store, Table, TableDef


def entity_metadata(definition: TableDef) -> dict[str, Any]:
    """The EntityMetadata properties clients read (LogicalName, EntitySetName, PrimaryIdAttribute …)."""
    return {
        "MetadataId": str(uuid.uuid5(uuid.NAMESPACE_URL, definition.logical_name)),
        "LogicalName": definition.logical_name,
        "SchemaName": definition.logical_name,
        "EntitySetName": definition.entity_set,
        "PrimaryIdAttribute": definition.id_column,
        "PrimaryNameAttribute": definition.primary_name,
    }


_ENTITY = re.compile(
    r"^EntityDefinitions\(LogicalName='(?P<entity>\w+)'\)(?:/(?P<kind>Attributes|Keys)(?:\(LogicalName='(?P<name>\w+)'\))?)?$"
)
# The official SDK reads every picklist of a table before a write with text values
# (PowerPlatform-Dataverse-Client data/_odata.py `_bulk_fetch_picklists`).
_PICKLISTS = re.compile(
    r"^EntityDefinitions\(LogicalName='(?P<entity>\w+)'\)/Attributes/Microsoft\.Dynamics\.CRM\.PicklistAttributeMetadata$"
)


ATTRIBUTE_TYPES = {
    f"Microsoft.Dynamics.CRM.{name}AttributeMetadata"
    for name in ("String", "Decimal", "Integer", "DateTime", "Boolean", "Money")
}


@dataclass
class PendingKey:
    schema_name: str
    columns: tuple[str, ...]
    created: float
    metadata_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: str = "Pending"


@dataclass
class Metadata:
    store: Store
    activation_seconds: float = 0.3
    writes_allowed: bool = True
    keys: dict[str, dict[str, PendingKey]] = field(default_factory=dict)

    def handles(self, tail: str) -> bool:
        return (
            _ENTITY.match(tail) is not None
            or _PICKLISTS.match(tail) is not None
            or tail in ("EntityDefinitions", "RelationshipDefinitions")
        )

    def handle(
        self, method: str, tail: str, body: dict[str, Any] | None, base: str, query: dict[str, str] | None = None
    ) -> tuple[int, Any, dict[str, str]]:
        if method != "GET" and not self.writes_allowed:
            raise DataverseFault(403, "0x80040220", "Principal user is missing prvCreateEntity privilege.")
        if tail == "EntityDefinitions" and method == "GET":
            return 200, {"value": self._entity_list(query or {})}, {}
        picklists = _PICKLISTS.match(tail)
        if picklists is not None and method == "GET":
            self._table(picklists.group("entity"))
            return 200, {"value": []}, {}  # no choice columns in the emulated tables
        if tail == "EntityDefinitions" and method == "POST" and body is not None:
            return self._create_table(body, base)
        if tail == "RelationshipDefinitions" and method == "POST" and body is not None:
            return self._create_lookup(body, base)
        match = _ENTITY.match(tail)
        if match is None:
            raise DataverseFault(405, "0x80060888", f"{method} {tail} is not supported here.")
        table = self._table(match.group("entity"))
        kind, name = match.group("kind"), match.group("name")
        if kind is None:
            return 200, entity_metadata(table.definition), {}
        if kind == "Attributes":
            return self._attributes(method, table, name, body, base)
        return self._keys(method, table, body, base)

    def _table(self, logical: str) -> Table:
        table = self.store.by_logical.get(logical)
        if table is None:
            raise DataverseFault(404, "0x80040217", f"Could not find entity with LogicalName = {logical}")
        return table

    def _entity_list(self, query: dict[str, str]) -> list[dict[str, Any]]:
        """GET EntityDefinitions?$filter=LogicalName eq 'contact'&$select=… (what the SDK sends before each table)."""
        entities = [entity_metadata(t.definition) for t in self.store.tables.values()]
        if query.get("$filter"):
            try:
                predicate = parse_filter(query["$filter"])
            except FilterError as error:
                raise DataverseFault(400, "0x80060888", f"Invalid $filter: {error}") from error
            entities = [e for e in entities if predicate(e)]
        if query.get("$select"):
            wanted = {c.strip() for c in query["$select"].split(",")} | {"MetadataId"}
            entities = [{k: v for k, v in e.items() if k in wanted} for e in entities]
        return entities

    def _create_table(self, body: dict[str, Any], base: str) -> tuple[int, Any, dict[str, str]]:
        if body.get("@odata.type") != "Microsoft.Dynamics.CRM.EntityMetadata" or not body.get("SchemaName"):
            raise DataverseFault(400, "0x80040203", "An EntityMetadata with a SchemaName is required.")
        primary = [a for a in body.get("Attributes", []) if a.get("IsPrimaryName")]
        if len(primary) != 1:
            raise DataverseFault(400, "0x80040203", "The table needs exactly one primary name attribute.")
        logical = str(body["SchemaName"]).lower()
        if logical in self.store.by_logical:
            raise DataverseFault(400, "0x80044363", f"An entity with the specified name {logical} already exists.")
        columns: dict[str, int | None] = {
            str(primary[0]["SchemaName"]).lower(): int(primary[0].get("MaxLength", 100)),
            "_ownerid_value": None,
            **SYSTEM_COLUMNS,
        }
        self.store.add_table(
            TableDef(
                logical,
                f"{logical}s",
                columns,
                lookups={"ownerid": "systemusers|teams"},
                primary_name=str(primary[0]["SchemaName"]).lower(),
            )
        )
        return 204, None, {"OData-EntityId": f"{base}EntityDefinitions({uuid.uuid5(uuid.NAMESPACE_URL, logical)})"}

    def _create_lookup(self, body: dict[str, Any], base: str) -> tuple[int, Any, dict[str, str]]:
        lookup = body.get("Lookup") or {}
        if body.get("@odata.type") != "Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata" or not lookup.get(
            "SchemaName"
        ):
            raise DataverseFault(400, "0x80040203", "A OneToManyRelationshipMetadata with a Lookup is required.")
        referencing = self.store.by_logical.get(str(body.get("ReferencingEntity")))
        referenced = self.store.by_logical.get(str(body.get("ReferencedEntity")))
        if referencing is None or referenced is None:
            raise DataverseFault(404, "0x80040217", "The referenced or referencing entity does not exist.")
        navigation = str(lookup["SchemaName"])
        if navigation.lower() in referencing.definition.columns:
            raise DataverseFault(
                400, "0x80044363", f"An attribute with the specified name {navigation.lower()} already exists."
            )
        referencing.definition.lookups[navigation] = referenced.definition.entity_set
        referencing.definition.columns[navigation.lower()] = None
        referencing.definition.columns[f"_{navigation.lower()}_value"] = None
        return 204, None, {"OData-EntityId": f"{base}RelationshipDefinitions({uuid.uuid4()})"}

    def _attributes(
        self, method: str, table: Table, name: str | None, body: dict[str, Any] | None, base: str
    ) -> tuple[int, Any, dict[str, str]]:
        if method == "GET" and name:
            if name not in table.definition.columns:
                raise DataverseFault(404, "0x80040217", f"Could not find attribute with LogicalName = {name}")
            return 200, {"LogicalName": name, "MaxLength": table.definition.columns[name]}, {}
        if method == "POST" and body is not None:
            if body.get("@odata.type") not in ATTRIBUTE_TYPES or "SchemaName" not in body:
                raise DataverseFault(
                    400,
                    "0x80040203",
                    f"Supported attribute types: {', '.join(sorted(ATTRIBUTE_TYPES))}; SchemaName is required.",
                )
            logical = str(body["SchemaName"]).lower()
            if logical in table.definition.columns:
                raise DataverseFault(
                    400, "0x80044363", f"An attribute with the specified name {logical} already exists."
                )
            is_text = body["@odata.type"] == "Microsoft.Dynamics.CRM.StringAttributeMetadata"
            table.definition.columns[logical] = int(body.get("MaxLength", 100)) if is_text else None
            entity_id = (
                f"{base}EntityDefinitions(LogicalName='{table.definition.logical_name}')/Attributes({uuid.uuid4()})"
            )
            return 204, None, {"OData-EntityId": entity_id}
        raise DataverseFault(405, "0x80060888", f"{method} is not supported on attributes here.")

    def _key_rows(self, table: Table) -> list[dict[str, Any]]:
        rows = []
        for logical, key in self.keys.get(table.definition.logical_name, {}).items():
            self._settle(table, logical, key)
            rows.append(
                {
                    "SchemaName": key.schema_name,
                    "LogicalName": logical,
                    "KeyAttributes": list(key.columns),
                    "EntityKeyIndexStatus": key.status,
                    "MetadataId": key.metadata_id,
                }
            )
        for logical, columns in table.definition.keys.items():
            if logical not in self.keys.get(table.definition.logical_name, {}):
                rows.append(
                    {
                        "SchemaName": logical,
                        "LogicalName": logical,
                        "KeyAttributes": list(columns),
                        "EntityKeyIndexStatus": "Active",
                    }
                )
        return rows

    def _settle(self, table: Table, logical: str, key: PendingKey) -> None:
        """The index job: after the delay the key becomes Active, or Failed when values are duplicated."""
        if key.status != "Pending" or time.monotonic() - key.created < self.activation_seconds:
            return
        values = [tuple(row.get(c) for c in key.columns) for row in table.rows.values()]
        present = [v for v in values if all(x is not None for x in v)]
        if len(present) != len(set(present)):
            key.status = "Failed"
            return
        key.status = "Active"
        table.definition.keys[logical] = key.columns

    def _keys(
        self, method: str, table: Table, body: dict[str, Any] | None, base: str
    ) -> tuple[int, Any, dict[str, str]]:
        if method == "GET":
            return 200, {"value": self._key_rows(table)}, {}
        if method == "POST" and body is not None:
            columns = tuple(str(c).lower() for c in body.get("KeyAttributes", []))
            missing = [c for c in columns if c not in table.definition.columns]
            if not columns or missing:
                raise DataverseFault(400, "0x80040203", f"Key attributes do not exist: {missing or 'none given'}")
            logical = str(body.get("SchemaName", "")).lower()
            existing = self.keys.setdefault(table.definition.logical_name, {})
            if logical in existing or logical in table.definition.keys:
                raise DataverseFault(400, "0x80060893", f"An entity key with the name {logical} already exists.")
            existing[logical] = PendingKey(str(body["SchemaName"]), columns, time.monotonic())
            return (
                204,
                None,
                {
                    "OData-EntityId": f"{base}EntityDefinitions(LogicalName='{table.definition.logical_name}')/Keys({existing[logical].metadata_id})"
                },
            )
        raise DataverseFault(405, "0x80060888", f"{method} is not supported on keys here.")
