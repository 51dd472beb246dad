"""The CRM columns a configuration may write: the custom columns of infra/dataverse/schema.json (under the
publisher prefix) plus the standard columns it declares — one catalog, so a mapping to an undeclared
column is caught when the file is checked, not by a 400 from Dataverse half-way through a sale."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

APP_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = APP_ROOT / "infra" / "dataverse" / "schema.json"


@dataclass(frozen=True)
class Column:
    name: str  # logical name as written in payloads
    type: str  # string | decimal | integer | datetime | date | boolean
    max_length: int | None = None


@dataclass(frozen=True)
class ColumnCatalog:
    """Table logical name → its writable columns."""

    tables: dict[str, dict[str, Column]] = field(default_factory=dict)

    def column(self, table: str, name: str) -> Column | None:
        return self.tables.get(table, {}).get(name)

    def names(self, table: str) -> list[str]:
        return sorted(self.tables.get(table, {}))


def _table_name(prefix: str, table: dict[str, Any]) -> str:
    return f"{prefix}_{table['logical_name']}".lower() if table.get("create") else str(table["logical_name"])


def catalog_from(schema: dict[str, Any], prefix: str) -> ColumnCatalog:
    tables: dict[str, dict[str, Column]] = {}
    for table, columns in schema.get("standard_columns", {}).items():
        if isinstance(columns, dict):
            tables[table] = {name: Column(name, spec["type"], spec.get("max_length")) for name, spec in columns.items()}
    for table in schema["tables"]:
        found = tables.setdefault(_table_name(prefix, table), {})
        declared = list(table["columns"])
        if table.get("primary_name"):
            declared.append({**table["primary_name"], "type": "string"})
        for column in declared:
            name = f"{prefix}_{column['name']}".lower()
            found[name] = Column(name, column["type"], column.get("max_length"))
    return ColumnCatalog(tables)


@cache
def load_catalog(prefix: str, schema_file: Path = SCHEMA_FILE) -> ColumnCatalog:
    return catalog_from(json.loads(schema_file.read_text(encoding="utf-8")), prefix)
