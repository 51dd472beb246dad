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


def column_definition(prefix: str, column: dict[str, Any]) -> dict[str, Any]:
    if column["type"] != "string":
        raise SchemaError(f"column {column['name']}: only string columns are supported so far")
    return {
        "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
        "AttributeType": "String",
        "AttributeTypeName": {"Value": "StringType"},
        "SchemaName": f"{prefix}_{column['name']}",
        "MaxLength": column["max_length"],
        "FormatName": {"Value": "Text"},
        "RequiredLevel": {
            "Value": "None",
            "CanBeChanged": True,
            "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings",
        },
        "DisplayName": _label(column["label"]),
    }


def key_definition(prefix: str, key: dict[str, Any]) -> dict[str, Any]:
    return {
        "@odata.type": "Microsoft.Dynamics.CRM.EntityKeyMetadata",
        "SchemaName": f"{prefix}_{key['name']}",
        "DisplayName": _label(key["label"]),
        "KeyAttributes": [f"{prefix}_{c}".lower() for c in key["columns"]],
    }


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
        for table in schema["tables"]:
            entity = f"EntityDefinitions(LogicalName='{table['logical_name']}')"
            found = await self._send("GET", f"{entity}?$select=LogicalName")
            if found.status_code == 404:
                raise SchemaError(f"table {table['logical_name']} does not exist in this environment")
            for column in table["columns"]:
                await self._ensure_column(entity, prefix, column, report)
            for key in table["keys"]:
                await self._ensure_key(entity, prefix, key, report)
            await self._wait_for_keys(entity, prefix, table["keys"], report)
        return report

    async def _ensure_column(self, entity: str, prefix: str, column: dict[str, Any], report: SchemaReport) -> None:
        logical = f"{prefix}_{column['name']}".lower()
        found = await self._send("GET", f"{entity}/Attributes(LogicalName='{logical}')?$select=LogicalName")
        if found.status_code == 200:
            report.existing.append(logical)
            return
        created = await self._send("POST", f"{entity}/Attributes", column_definition(prefix, column))
        if created.status_code not in (200, 201, 204):
            raise SchemaError(f"creating column {logical} failed: {created.status_code} {_code(created)}")
        report.created.append(logical)
        self.say(f"created column {logical}")

    async def _keys(self, entity: str) -> dict[str, dict[str, Any]]:
        response = await self._send(
            "GET", f"{entity}/Keys?$select=SchemaName,LogicalName,KeyAttributes,EntityKeyIndexStatus"
        )
        return {str(k["LogicalName"]).lower(): k for k in response.json().get("value", [])}

    async def _ensure_key(self, entity: str, prefix: str, key: dict[str, Any], report: SchemaReport) -> None:
        logical = f"{prefix}_{key['name']}".lower()
        if logical in await self._keys(entity):
            report.existing.append(logical)
            return
        created = await self._send("POST", f"{entity}/Keys", key_definition(prefix, key))
        if created.status_code not in (200, 201, 204):
            raise SchemaError(f"creating key {logical} failed: {created.status_code} {_code(created)}")
        report.created.append(logical)
        self.say(f"created key {logical}; waiting for its index")

    async def _wait_for_keys(self, entity: str, prefix: str, keys: list[dict[str, Any]], report: SchemaReport) -> None:
        wanted = {f"{prefix}_{k['name']}".lower() for k in keys}
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
