"""The emulator's data: table definitions, rows, unique alternate-key indexes, Dataverse error codes."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from typing import Any


class DataverseFault(Exception):
    """An error answered in Dataverse's body format: {"error":{"code","message"}}."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


@dataclass
class TableDef:
    logical_name: str
    entity_set: str
    columns: dict[str, int | None]  # column → max length for strings (None: not a string or unbounded)
    keys: dict[str, tuple[str, ...]] = field(default_factory=dict)  # key name → columns
    lookups: dict[str, str] = field(default_factory=dict)  # navigation property → target entity set

    @property
    def id_column(self) -> str:
        return f"{self.logical_name}id"


SYSTEM_COLUMNS = {"statecode": None, "statuscode": None, "createdon": None, "modifiedon": None, "versionnumber": None}


STANDARD_CONTACT_COLUMNS: dict[str, int | None] = {
    "firstname": 50,
    "lastname": 50,
    "middlename": 50,
    "nickname": 100,
    "fullname": 160,
    "emailaddress1": 100,
    "emailaddress2": 100,
    "mobilephone": 50,
    "telephone1": 50,
    "address1_line1": 250,
    "address1_line2": 250,
    "address1_line3": 250,
    "address1_city": 80,
    "address1_stateorprovince": 50,
    "address1_postalcode": 20,
    "address1_country": 80,
    "birthdate": None,
    "description": 2000,
    "donotbulkemail": None,
    "merged": None,
    "_masterid_value": None,
}


def standard_tables() -> list[TableDef]:
    """Standard tables the flows touch besides contact: users and teams (owners) and cases."""
    return [
        TableDef("systemuser", "systemusers", {"fullname": 200, "domainname": 1024, **SYSTEM_COLUMNS}),
        TableDef("team", "teams", {"name": 160, **SYSTEM_COLUMNS}),
        TableDef(
            "incident",
            "incidents",
            {"title": 200, "description": 2000, "_customerid_value": None, "_ownerid_value": None, **SYSTEM_COLUMNS},
            lookups={"customerid_contact": "contacts", "ownerid": "systemusers|teams"},
        ),
    ]


def bare_contact_table() -> TableDef:
    """contact as a new environment has it: no Tillbridge columns or keys (for `tillbridge schema apply`)."""
    return TableDef("contact", "contacts", {**STANDARD_CONTACT_COLUMNS, **SYSTEM_COLUMNS})


def contact_table(prefix: str) -> TableDef:
    """contact after `tillbridge schema apply`: Tillbridge's columns and alternate key in place."""
    columns: dict[str, int | None] = {
        **STANDARD_CONTACT_COLUMNS,
        f"{prefix}_squarecustomerid": 100,
        f"{prefix}_squarereferenceid": 100,
        f"{prefix}_squarecompanyname": 500,
    }
    return TableDef(
        "contact",
        "contacts",
        {**columns, **SYSTEM_COLUMNS},
        keys={f"{prefix}_contact_squarecustomerid_key": (f"{prefix}_squarecustomerid",)},
    )


class Table:
    def __init__(self, definition: TableDef) -> None:
        self.definition = definition
        self.rows: dict[str, dict[str, Any]] = {}

    def find_by_key(self, key: dict[str, Any]) -> dict[str, Any] | None:
        columns = tuple(sorted(key))
        if not any(tuple(sorted(cols)) == columns for cols in self.definition.keys.values()):
            raise DataverseFault(
                400,
                "0x80060888",
                f"The key in the request URI is not valid for resource '{self.definition.logical_name}'.",
            )
        for row in self.rows.values():
            if all(_same(row.get(c), v) for c, v in key.items()):
                return row
        return None

    def check_columns(self, values: dict[str, Any]) -> None:
        for column, value in values.items():
            if column not in self.definition.columns:
                raise DataverseFault(
                    400,
                    "0x80060888",
                    f"An undeclared property '{column}' which only has property annotations in the payload "
                    "but no property value was found in the payload.",
                )
            limit = self.definition.columns[column]
            if limit is not None and isinstance(value, str) and len(value) > limit:
                raise DataverseFault(
                    400,
                    "0x80044331",
                    f"A validation error occurred. The length of the '{column}' attribute of the "
                    f"'{self.definition.logical_name}' entity exceeded the maximum allowed length of '{limit}'.",
                )

    def check_unique(self, row_id: str, values: dict[str, Any]) -> None:
        for name, columns in self.definition.keys.items():
            wanted = {c: values.get(c) for c in columns}
            if any(v is None for v in wanted.values()):
                continue
            for other_id, other in self.rows.items():
                if other_id != row_id and all(_same(other.get(c), v) for c, v in wanted.items()):
                    raise DataverseFault(
                        412,
                        "0x80060892",
                        f"Entity Key {name} violated. A record with the same value for "
                        f"{', '.join(columns)} already exists. A duplicate record cannot be created.",
                    )


def _same(a: Any, b: Any) -> bool:
    return a.casefold() == b.casefold() if isinstance(a, str) and isinstance(b, str) else a == b


class Store:
    def __init__(self, tables: list[TableDef]) -> None:
        self.tables = {t.entity_set: Table(t) for t in tables}
        self.by_logical = {t.logical_name: self.tables[t.entity_set] for t in tables}
        self._versions = itertools.count(1000)

    def add_table(self, definition: TableDef) -> Table:
        table = self.tables[definition.entity_set] = Table(definition)
        self.by_logical[definition.logical_name] = table
        return table

    def table(self, entity_set: str) -> Table:
        table = self.tables.get(entity_set)
        if table is None:
            raise DataverseFault(404, "0x8006088a", f"Resource not found for the segment '{entity_set}'.")
        return table

    def create(self, table: Table, values: dict[str, Any], now: str, row_id: str | None = None) -> dict[str, Any]:
        row_id = (row_id or str(uuid.uuid4())).lower()
        table.check_columns(values)
        table.check_unique(row_id, values)
        row = {table.definition.id_column: row_id, "statecode": 0, "statuscode": 1, "createdon": now}
        row.update(values)
        row["modifiedon"] = now
        row["versionnumber"] = next(self._versions)
        table.rows[row_id] = row
        return row

    def update(self, table: Table, row: dict[str, Any], values: dict[str, Any], now: str) -> dict[str, Any]:
        table.check_columns(values)
        row_id = row[table.definition.id_column]
        table.check_unique(row_id, {**row, **values})
        row.update(values)
        row["modifiedon"] = now
        row["versionnumber"] = next(self._versions)
        return row
