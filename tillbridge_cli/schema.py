"""`tillbridge schema apply`: create the custom columns and alternate keys in infra/dataverse/schema.json
through the Dataverse metadata Web API — GET first, create only what is missing, then wait until every
key's index is Active (reference: shared/design/reference/dataverse.md §3 and §9)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "infra" / "dataverse" / "schema.json"


class SchemaError(Exception):
    """The schema cannot be applied; the message says what to do."""


@dataclass
class SchemaReport:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    keys_active: list[str] = field(default_factory=list)


def _label(text: str) -> dict[str, Any]:
    return {
        "@odata.type": "Microsoft.Dynamics.CRM.Label",
        "LocalizedLabels": [
            {"@odata.type": "Microsoft.Dynamics.CRM.LocalizedLabel", "Label": text, "LanguageCode": 1033}
        ],
    }


REQUIRED_NONE = {
    "Value": "None",
    "CanBeChanged": True,
    "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings",
}
_TYPES: dict[str, dict[str, Any]] = {
    "string": {
        "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
        "AttributeType": "String",
        "AttributeTypeName": {"Value": "StringType"},
        "FormatName": {"Value": "Text"},
    },
    "decimal": {
        "@odata.type": "Microsoft.Dynamics.CRM.DecimalAttributeMetadata",
        "AttributeType": "Decimal",
        "AttributeTypeName": {"Value": "DecimalType"},
        "Precision": 4,
        "MinValue": -100000000000,
        "MaxValue": 100000000000,
    },
    "integer": {
        "@odata.type": "Microsoft.Dynamics.CRM.IntegerAttributeMetadata",
        "AttributeType": "Integer",
        "AttributeTypeName": {"Value": "IntegerType"},
        "Format": "None",
        "MinValue": 0,
        "MaxValue": 2147483647,
    },
    "datetime": {
        "@odata.type": "Microsoft.Dynamics.CRM.DateTimeAttributeMetadata",
        "AttributeType": "DateTime",
        "AttributeTypeName": {"Value": "DateTimeType"},
        "Format": "DateAndTime",
    },
}


def logical(prefix: str, name: str) -> str:
    return f"{prefix}_{name}".lower()


def table_logical(prefix: str, table: dict[str, Any]) -> str:
    """Tables Tillbridge creates carry the prefix; standard ones (contact) keep their name."""
    return logical(prefix, table["logical_name"]) if table.get("create") else str(table["logical_name"])


def column_definition(prefix: str, column: dict[str, Any]) -> dict[str, Any]:
    kind = _TYPES.get(column["type"])
    if kind is None:
        raise SchemaError(f"column {column['name']}: type {column['type']!r} is not one of {', '.join(_TYPES)}")
    definition = {
        **kind,
        "SchemaName": f"{prefix}_{column['name']}",
        "RequiredLevel": REQUIRED_NONE,
        "DisplayName": _label(column["label"]),
    }
    if column["type"] == "string":
        definition["MaxLength"] = column["max_length"]
    return definition


def table_definition(prefix: str, table: dict[str, Any]) -> dict[str, Any]:
    """EntityMetadata with its primary name column (Web API "Create and update table definitions")."""
    primary = table["primary_name"]
    return {
        "@odata.type": "Microsoft.Dynamics.CRM.EntityMetadata",
        "SchemaName": f"{prefix}_{table['logical_name']}",
        "DisplayName": _label(table["display_name"]),
        "DisplayCollectionName": _label(table["plural"]),
        "Description": _label(f"{table['display_name']} synced from Square by Tillbridge"),
        "OwnershipType": "UserOwned",
        "IsActivity": False,
        "HasActivities": False,
        "HasNotes": False,
        "Attributes": [{**column_definition(prefix, {**primary, "type": "string"}), "IsPrimaryName": True}],
    }


def lookup_definition(
    prefix: str, table: dict[str, Any], lookup: dict[str, Any], targets: dict[str, str]
) -> dict[str, Any]:
    """A lookup column is created with its one-to-many relationship (RelationshipDefinitions)."""
    referencing = table_logical(prefix, table)
    referenced = targets.get(lookup["target"], lookup["target"])
    return {
        "@odata.type": "Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata",
        "SchemaName": f"{prefix}_{referenced}_{referencing}_{lookup['name']}".lower(),
        "ReferencedEntity": referenced,
        "ReferencingEntity": referencing,
        "Lookup": {
            "@odata.type": "Microsoft.Dynamics.CRM.LookupAttributeMetadata",
            "AttributeType": "Lookup",
            "AttributeTypeName": {"Value": "LookupType"},
            "SchemaName": f"{prefix}_{lookup['name']}",
            "RequiredLevel": REQUIRED_NONE,
            "DisplayName": _label(lookup["label"]),
        },
        "CascadeConfiguration": {
            "Assign": "NoCascade",
            "Delete": "RemoveLink",
            "Merge": "NoCascade",
            "Reparent": "NoCascade",
            "Share": "NoCascade",
            "Unshare": "NoCascade",
        },
    }


def key_definition(prefix: str, key: dict[str, Any]) -> dict[str, Any]:
    return {
        "@odata.type": "Microsoft.Dynamics.CRM.EntityKeyMetadata",
        "SchemaName": f"{prefix}_{key['name']}",
        "DisplayName": _label(key["label"]),
        "KeyAttributes": [logical(prefix, c) for c in key["columns"]],
    }


def change_tracking_on(definition: dict[str, Any]) -> dict[str, Any]:
    """The table's definition as read, with change tracking turned on (it cannot be turned off again)."""
    return {**definition, "@odata.type": "Microsoft.Dynamics.CRM.EntityMetadata", "ChangeTrackingEnabled": True}


def targets_of(prefix: str, schema: dict[str, Any]) -> dict[str, str]:
    """Lookup target names in the schema file → logical names (created tables get the prefix)."""
    return {t["logical_name"]: table_logical(prefix, t) for t in schema["tables"]}


class SchemaApplier:
    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        token: str,
        *,
        solution: str = "",
        key_timeout: float = 600.0,
        poll: float = 2.0,
        say: Callable[[str], None] = print,
    ) -> None:
        self.http, self.root = http, f"{base_url.rstrip('/')}/api/data/v9.2/"
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "OData-Version": "4.0",
            "OData-MaxVersion": "4.0",
            "Content-Type": "application/json",
        }
        if solution:
            self.headers["MSCRM.SolutionUniqueName"] = solution
        self.key_timeout, self.poll, self.say = key_timeout, poll, say

    async def _send(self, method: str, path: str, body: Any = None) -> httpx.Response:
        response = await self.http.request(method, self.root + path, json=body, headers=self.headers)
        if response.status_code in (401, 403):
            where = path.split("?", maxsplit=1)[0]
            raise SchemaError(
                f"Dataverse refused {method} {where} ({response.status_code} {_code(response)}): the identity "
                "needs the System Customizer or System Administrator role to change the schema"
            )
        return response

    async def apply(self, schema: dict[str, Any], prefix: str) -> SchemaReport:
        report = SchemaReport()
        targets = targets_of(prefix, schema)
        for table in schema["tables"]:
            name = table_logical(prefix, table)
            entity = f"EntityDefinitions(LogicalName='{name}')"
            found = await self._send("GET", f"{entity}?$select=LogicalName")
            if found.status_code == 404 and not table.get("create"):
                raise SchemaError(f"table {name} does not exist in this environment")
            if found.status_code == 404:
                created = await self._send("POST", "EntityDefinitions", table_definition(prefix, table))
                if created.status_code not in (200, 201, 204):
                    raise SchemaError(f"creating table {name} failed: {created.status_code} {_code(created)}")
                report.created.append(name)
                self.say(f"created table {name}")
            else:
                report.existing.append(name)
            for column in table["columns"]:
                await self._ensure_column(entity, prefix, column, report)
            for lookup in table.get("lookups", []):
                await self._ensure_lookup(entity, prefix, table=table, lookup=lookup, targets=targets, report=report)
            for key in table["keys"]:
                await self._ensure_key(entity, prefix, key, report)
            await self._wait_for_keys(entity, prefix, table["keys"], report)
            if table.get("change_tracking"):
                await self._ensure_change_tracking(entity, name, report)
        return report

    async def _ensure_change_tracking(self, entity: str, name: str, report: SchemaReport) -> None:
        """Two-way sync reads contact edits with change tracking, a table setting ("Use change tracking to
        synchronize data"): turned on by updating the table's definition (PUT EntityDefinitions(<MetadataId>)
        with the definition as read, "Create and update table definitions using the Web API")."""
        current = (await self._send("GET", entity)).json()
        if current.get("ChangeTrackingEnabled"):
            report.existing.append(f"{name} change tracking")
            return
        path = f"EntityDefinitions({current['MetadataId']})"
        response = await self.http.request(
            "PUT",
            self.root + path,
            json=change_tracking_on(current),
            headers={**self.headers, "MSCRM.MergeLabels": "true"},
        )
        if response.status_code not in (200, 204):
            raise SchemaError(f"turning on change tracking for {name} failed: {response.status_code} {_code(response)}")
        report.created.append(f"{name} change tracking")
        self.say(f"turned on change tracking for {name}")

    async def _ensure_column(self, entity: str, prefix: str, column: dict[str, Any], report: SchemaReport) -> None:
        column_name = logical(prefix, column["name"])
        found = await self._send("GET", f"{entity}/Attributes(LogicalName='{column_name}')?$select=LogicalName")
        if found.status_code == 200:
            report.existing.append(column_name)
            return
        created = await self._send("POST", f"{entity}/Attributes", column_definition(prefix, column))
        if created.status_code not in (200, 201, 204):
            raise SchemaError(f"creating column {column_name} failed: {created.status_code} {_code(created)}")
        report.created.append(column_name)
        self.say(f"created column {column_name}")

    async def _ensure_lookup(
        self,
        entity: str,
        prefix: str,
        *,
        table: dict[str, Any],
        lookup: dict[str, Any],
        targets: dict[str, str],
        report: SchemaReport,
    ) -> None:
        name = logical(prefix, lookup["name"])
        found = await self._send("GET", f"{entity}/Attributes(LogicalName='{name}')?$select=LogicalName")
        if found.status_code == 200:
            report.existing.append(f"{table_logical(prefix, table)}.{name}")
            return
        created = await self._send("POST", "RelationshipDefinitions", lookup_definition(prefix, table, lookup, targets))
        if created.status_code not in (200, 201, 204):
            raise SchemaError(f"creating lookup {name} failed: {created.status_code} {_code(created)}")
        report.created.append(f"{table_logical(prefix, table)}.{name}")
        self.say(f"created lookup {table_logical(prefix, table)}.{name}")

    async def _keys(self, entity: str) -> dict[str, dict[str, Any]]:
        response = await self._send(
            "GET", f"{entity}/Keys?$select=SchemaName,LogicalName,KeyAttributes,EntityKeyIndexStatus"
        )
        return {str(k["LogicalName"]).lower(): k for k in response.json().get("value", [])}

    async def _ensure_key(self, entity: str, prefix: str, key: dict[str, Any], report: SchemaReport) -> None:
        key_name = logical(prefix, key["name"])
        if key_name in await self._keys(entity):
            report.existing.append(key_name)
            return
        created = await self._send("POST", f"{entity}/Keys", key_definition(prefix, key))
        if created.status_code not in (200, 201, 204):
            raise SchemaError(f"creating key {key_name} failed: {created.status_code} {_code(created)}")
        report.created.append(key_name)
        self.say(f"created key {key_name}; waiting for its index")

    async def _wait_for_keys(self, entity: str, prefix: str, keys: list[dict[str, Any]], report: SchemaReport) -> None:
        wanted = {logical(prefix, k["name"]) for k in keys}
        deadline = time.monotonic() + self.key_timeout
        while True:
            states = {
                name: str(k.get("EntityKeyIndexStatus"))
                for name, k in (await self._keys(entity)).items()
                if name in wanted
            }
            failed = [name for name, state in states.items() if state == "Failed"]
            if failed:
                raise SchemaError(
                    f"key index failed for {', '.join(failed)}: remove duplicate values, then call ReactivateEntityKey"
                )
            if all(states.get(name) == "Active" for name in wanted):
                report.keys_active.extend(sorted(wanted))
                return
            if time.monotonic() > deadline:
                raise SchemaError(f"keys not Active after {self.key_timeout:.0f} s: {states}")
            await asyncio.sleep(self.poll)


def _code(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", {}).get("code", ""))
    except ValueError:
        return ""


def load_schema(path: Path = SCHEMA_FILE) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema
