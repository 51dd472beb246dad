"""Collection queries: $select, $filter, $orderby, $top, $count and paging (Prefer: odata.maxpagesize, then
@odata.nextLink), as "Query data using the Web API" describes them. A property the table does not have is
refused in $select, $filter and $orderby, as Dataverse does ("Could not find a property named …")."""

from __future__ import annotations

import re
from functools import cmp_to_key
from typing import Any
from urllib.parse import urlencode

from devstack.dataverse_emulator.odata_filter import FilterError, parse_filter_columns
from devstack.dataverse_emulator.store import DataverseFault, Table

MAX_PAGE_SIZE = 5000
Row = dict[str, Any]


def _unknown(table: Table, name: str) -> DataverseFault:
    return DataverseFault(
        400,
        "0x80060888",
        f"Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{table.definition.logical_name}'.",
    )


def _known(table: Table, name: str) -> bool:
    return name in table.definition.columns or name == table.definition.id_column


def select_columns(table: Table, text: str | None) -> list[str] | None:
    if not text:
        return None
    columns = [c.strip() for c in text.split(",") if c.strip()]
    for column in columns:
        if not _known(table, column):
            raise _unknown(table, column)
    return columns


def filtered(table: Table, rows: list[Row], text: str | None) -> list[Row]:
    if not text:
        return rows
    try:
        predicate, columns = parse_filter_columns(text)
    except FilterError as error:
        raise DataverseFault(400, "0x80060888", f"Invalid $filter: {error}") from error
    for column in sorted(columns):
        if not _known(table, column):
            raise _unknown(table, column)
    return [row for row in rows if predicate(row)]


def _compare(a: Any, b: Any) -> int:
    """SQL Server order: null first, strings case-insensitively."""
    if a is None or b is None:
        return (a is not None) - (b is not None)
    a, b = (a.casefold(), b.casefold()) if isinstance(a, str) and isinstance(b, str) else (a, b)
    return int(a > b) - int(a < b)


def ordered(table: Table, rows: list[Row], text: str | None) -> list[Row]:
    if not text:
        return rows
    terms: list[tuple[str, bool]] = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\w+)(?:\s+(asc|desc))?\s*", part)
        if match is None:
            raise DataverseFault(400, "0x80060888", f"Invalid $orderby: '{part.strip()}'.")
        if not _known(table, match.group(1)):
            raise _unknown(table, match.group(1))
        terms.append((match.group(1), match.group(2) == "desc"))

    def compare(x: Row, y: Row) -> int:
        for column, descending in terms:
            result = _compare(x.get(column), y.get(column))
            if result:
                return -result if descending else result
        return 0

    return sorted(rows, key=cmp_to_key(compare))


def page_size(prefer: str | None) -> int:
    match = re.search(r"odata\.maxpagesize=(\d+)", prefer or "")
    return max(1, min(int(match.group(1)), MAX_PAGE_SIZE)) if match else MAX_PAGE_SIZE


def next_link(base: str, tail: str, query: dict[str, str], skip: int) -> str:
    params = {k: v for k, v in query.items() if k != "$skiptoken"}
    params["$skiptoken"] = str(skip)
    return f"{base}{tail}?{urlencode(params)}"


def top_of(query: dict[str, str]) -> int | None:
    text = query.get("$top")
    if text is None:
        return None
    if not text.isdigit():
        raise DataverseFault(400, "0x80060888", f"Invalid $top: '{text}'.")
    return int(text)
