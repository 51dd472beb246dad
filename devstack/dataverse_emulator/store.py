"""The emulator's data: table definitions, rows, unique alternate-key indexes, Dataverse error codes."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def utc_now() -> str:
    """A row timestamp (createdon, modifiedon) as the Web API writes it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
    primary_name: str | None = None  # the primary name column (EntityMetadata.PrimaryNameAttribute)

    @property
    def id_column(self) -> str:
        return f"{self.logical_name}id"


# createdby / modifiedby: read-only lookups to systemuser on every table, filled by the platform (identity.py).
AUDIT_COLUMNS: dict[str, int | None] = {"_createdby_value": None, "_modifiedby_value": None}
SYSTEM_COLUMNS: dict[str, int | None] = {
    "statecode": None,
    "statuscode": None,
    "createdon": None,
    "modifiedon": None,
    "versionnumber": None,
    **AUDIT_COLUMNS,
}


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
        TableDef(
            "systemuser",
            "systemusers",
            {"fullname": 200, "domainname": 1024, **SYSTEM_COLUMNS},
            primary_name="fullname",
        ),
        TableDef("team", "teams", {"name": 160, **SYSTEM_COLUMNS}, primary_name="name"),
        TableDef(
            "incident",
            "incidents",
            {"title": 200, "description": 2000, "_customerid_value": None, "_ownerid_value": None, **SYSTEM_COLUMNS},
            lookups={"customerid_contact": "contacts", "ownerid": "systemusers|teams"},
            primary_name="title",
        ),
    ]


def bare_contact_table() -> TableDef:
    """contact as a new environment has it: no Tillbridge columns or keys (for `tillbridge schema apply`)."""
    return TableDef("contact", "contacts", {**STANDARD_CONTACT_COLUMNS, **SYSTEM_COLUMNS}, primary_name="fullname")


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
        primary_name="fullname",
    )


KeyValue = tuple[Any, ...]


def fold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _key_value(row: dict[str, Any], columns: tuple[str, ...]) -> KeyValue | None:
    values = tuple(row.get(c) for c in columns)
    return None if any(v is None for v in values) else tuple(fold(v) for v in values)


class Table:
    """Rows by id, plus one unique index per alternate key (built on first use, kept up to date by Store)."""

    def __init__(self, definition: TableDef) -> None:
        self.definition = definition
        self.rows: dict[str, dict[str, Any]] = {}
        self._indexes: dict[tuple[str, ...], dict[KeyValue, str]] = {}

    def _index(self, columns: tuple[str, ...]) -> dict[KeyValue, str]:
        index = self._indexes.get(columns)
        if index is None:
            index = {}
            for row_id, row in self.rows.items():
                value = _key_value(row, columns)
                if value is not None:
                    index.setdefault(value, row_id)
            self._indexes[columns] = index
        return index

    def unindex(self, row: dict[str, Any]) -> None:
        row_id = row[self.definition.id_column]
        for columns, index in self._indexes.items():
            value = _key_value(row, columns)
            if value is not None and index.get(value) == row_id:
                del index[value]

    def reindex(self, row: dict[str, Any]) -> None:
        for columns, index in self._indexes.items():
            value = _key_value(row, columns)
            if value is not None:
                index[value] = row[self.definition.id_column]

    def key_columns(self, key: dict[str, Any]) -> tuple[str, ...]:
        """The defined alternate key whose columns are exactly the given ones (Web API: "Use an alternate key")."""
        wanted = sorted(key)
        for columns in self.definition.keys.values():
            if sorted(columns) == wanted:
                return tuple(columns)
        name = f"Microsoft.Dynamics.CRM.{self.definition.logical_name}"
        raise DataverseFault(
            400,
            "0x80060888",
            f"The key in the request URI is not valid for resource '{name}'. Ensure that the names and number of "
            f"key properties match the declared or alternate key properties for the resource '{name}'.",
        )

    def find_by_key(self, key: dict[str, Any]) -> dict[str, Any] | None:
        columns = self.key_columns(key)
        value = _key_value(key, columns)
        row_id = self._index(columns).get(value) if value is not None else None
        return self.rows.get(row_id) if row_id is not None else None

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
            value = _key_value(values, tuple(columns))
            other = self._index(tuple(columns)).get(value) if value is not None else None
            if other is not None and other != row_id:
                raise DataverseFault(
                    412,
                    "0x80060892",
                    f"Entity Key {name} violated. A record with the same value for "
                    f"{', '.join(columns)} already exists. A duplicate record cannot be created.",
                )


class Store:
    """Tables, and an undo log while a transaction (a changeset, a bulk request) is open: all or nothing."""

    def __init__(self, tables: list[TableDef]) -> None:
        self.tables = {t.entity_set: Table(t) for t in tables}
        self.by_logical = {t.logical_name: self.tables[t.entity_set] for t in tables}
        self._versions = itertools.count(1000)
        self._undo: list[Callable[[], None]] | None = None

    def add_table(self, definition: TableDef) -> Table:
        table = self.tables[definition.entity_set] = Table(definition)
        self.by_logical[definition.logical_name] = table
        return table

    def table(self, entity_set: str) -> Table:
        table = self.tables.get(entity_set)
        if table is None:
            raise DataverseFault(404, "0x8006088a", f"Resource not found for the segment '{entity_set}'.")
        return table

    def on_undo(self, undo: Callable[[], None]) -> None:
        """Register how to reverse a change if the open transaction rolls back (no-op outside one)."""
        if self._undo is not None:
            self._undo.append(undo)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Everything written inside is undone if the block raises or calls rollback(); nests inside another."""
        outermost = self._undo is None
        if self._undo is None:
            self._undo = []
        transaction = Transaction(self, len(self._undo))
        try:
            yield transaction
        except BaseException:
            transaction.rollback()
            raise
        finally:
            if outermost:
                self._undo = None

    def _rollback_to(self, mark: int) -> None:
        while self._undo is not None and len(self._undo) > mark:
            self._undo.pop()()

    def create(self, table: Table, values: dict[str, Any], now: str, row_id: str | None = None) -> dict[str, Any]:
        row_id = (row_id or str(uuid.uuid4())).lower()
        table.check_columns(values)
        if row_id in table.rows:
            raise DataverseFault(
                412, "0x80040237", f"Cannot insert duplicate key: {table.definition.logical_name} {row_id} exists."
            )
        table.check_unique(row_id, values)
        row = {table.definition.id_column: row_id, "statecode": 0, "statuscode": 1, "createdon": now}
        row.update(values)
        row["modifiedon"] = now
        row["versionnumber"] = next(self._versions)
        table.rows[row_id] = row
        table.reindex(row)
        self.on_undo(lambda: self._drop(table, row))
        return row

    def update(self, table: Table, row: dict[str, Any], values: dict[str, Any], now: str) -> dict[str, Any]:
        table.check_columns(values)
        row_id = row[table.definition.id_column]
        table.check_unique(row_id, {**row, **values})
        before = dict(row)
        table.unindex(row)
        row.update(values)
        row["modifiedon"] = now
        row["versionnumber"] = next(self._versions)
        table.reindex(row)
        self.on_undo(lambda: self._restore(table, row, before))
        return row

    def delete(self, table: Table, row: dict[str, Any]) -> None:
        self._drop(table, row)
        self.on_undo(lambda: self._put_back(table, row))

    @staticmethod
    def _drop(table: Table, row: dict[str, Any]) -> None:
        table.unindex(row)
        table.rows.pop(row[table.definition.id_column], None)

    @staticmethod
    def _restore(table: Table, row: dict[str, Any], before: dict[str, Any]) -> None:
        table.unindex(row)
        row.clear()
        row.update(before)
        table.reindex(row)

    @staticmethod
    def _put_back(table: Table, row: dict[str, Any]) -> None:
        table.rows[row[table.definition.id_column]] = row
        table.reindex(row)


@dataclass
class Transaction:
    store: Store
    mark: int

    def rollback(self) -> None:
        self.store._rollback_to(self.mark)
