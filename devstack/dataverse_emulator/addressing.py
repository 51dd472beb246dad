"""Row addresses, as the Web API reads them: `set(<guid>)`, `set(col='v',col2=1)` in a request path, a $batch
request line, an `@odata.bind` value or an `@odata.id` — percent-decoded exactly once, then parsed as OData
literals (a quote doubled inside a string).

Dataverse refuses a key value holding any of  / < > * % & : \\ ? +  in these places: GET, PATCH and upsert by
key fail ("Work with alternate keys", Unicode characters in key value; reference/dataverse.md §3). Observed
answers are 400 "Bad Request - Error in query syntax." with code 0x8006088a (powerapps-docs issue 117 for a
bind reference, Xrm.Tools.CRMWebAPI issue 92 for the body), which is what the emulator answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from devstack.dataverse_emulator.store import DataverseFault, Store, Table

API = "/api/data/v9.2/"
FORBIDDEN_KEY_CHARACTERS = frozenset("/<>*%&:\\?+")
SEGMENT = re.compile(r"^(?P<name>[A-Za-z_]\w*)(?:\((?P<key>.*)\))?$")
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_LITERAL = re.compile(r"\s*(?:'(?P<string>(?:[^']|'')*)'|(?P<bare>[^,'=\s]+))\s*")
_NAME = re.compile(r"\s*(?P<name>[A-Za-z_]\w*)\s*=")

Key = dict[str, Any] | str  # a key dict, or a primary id (lower-case GUID)


def syntax_error(detail: str = "") -> DataverseFault:
    return DataverseFault(400, "0x8006088a", "Bad Request - Error in query syntax." + (f" {detail}" if detail else ""))


def _literal(match: re.Match[str]) -> Any:
    if match.group("string") is not None:
        return match.group("string").replace("''", "'")
    bare = match.group("bare")
    if GUID.match(bare):
        return bare.lower()
    if re.fullmatch(r"-?\d+", bare):
        return int(bare)
    if re.fullmatch(r"-?\d+\.\d+", bare):
        return float(bare)
    raise syntax_error(f"'{bare}' is not a literal.")


def parse_key(raw: str) -> Key:
    """The text between the parentheses, still percent-encoded → a primary id or {column: value}."""
    text = unquote(raw)  # exactly once: `%2527` is the three characters `%27`, not a quote
    if GUID.match(text.strip()):
        return text.strip().lower()
    key: dict[str, Any] = {}
    position = 0
    while position < len(text):
        name = _NAME.match(text, position)
        value = _LITERAL.match(text, name.end()) if name else None
        if name is None or value is None:
            raise syntax_error()
        key[name.group("name")] = _literal(value)
        position = value.end()
        if position < len(text):
            if text[position] != ",":
                raise syntax_error()
            position += 1
    if not key:
        raise syntax_error()
    for value in key.values():
        if isinstance(value, str) and FORBIDDEN_KEY_CHARACTERS.intersection(value):
            raise syntax_error()
    return key


def request_path(raw: str) -> str:
    """A request path after the service root, as every route reads it (HTTP requests and $batch request lines):
    the text outside parentheses — entity sets, actions, `$count`, navigation segments — percent-decoded; the key
    text inside left encoded for parse_key, so a key value is decoded exactly once."""
    parts: list[str] = []
    start = depth = 0
    quoted = False
    for index, character in enumerate(raw):
        if character == "'" and depth:
            quoted = not quoted  # a doubled quote toggles twice
        elif character == "(" and not quoted:
            if depth == 0:
                parts.append(unquote(raw[start:index]))
                start = index
            depth += 1
        elif character == ")" and not quoted and depth:
            depth -= 1
            if depth == 0:
                parts.append(raw[start : index + 1])
                start = index + 1
    parts.append(raw[start:] if depth else unquote(raw[start:]))
    return "".join(parts)


@dataclass
class Address:
    table: Table
    key: Key


def parse_reference(reference: str, store: Store) -> Address:
    """An @odata.bind / @odata.id value: `/set(key)`, `set(key)` or an absolute URL of the same."""
    path = reference.split(API, 1)[1] if API in reference else reference.lstrip("/")
    match = SEGMENT.match(path)
    if match is None or match.group("key") is None:
        raise syntax_error(f"'{reference}' is not a reference to a row.")
    table = store.table(match.group("name"))
    return Address(table, primary_key_form(table, parse_key(match.group("key"))))


def primary_key_form(table: Table, key: Key) -> Key:
    """`contacts(contactid=<guid>)` is the primary key too — except for systemuser and team, which inherit their
    key from principal and can only be addressed as `systemusers(<guid>)` ("Use an alternate key to reference
    a record", note on systemuser and team)."""
    if isinstance(key, dict) and list(key) == [table.definition.id_column]:
        value = str(key[table.definition.id_column])
        if table.definition.logical_name in ("systemuser", "team") or not GUID.match(value):
            table.key_columns(key)  # raises "The key in the request URI is not valid …"
        return value.lower()
    return key


def locate(table: Table, key: Key) -> dict[str, Any] | None:
    return table.rows.get(key) if isinstance(key, str) else table.find_by_key(key)


def not_found(table: Table, key: Key) -> DataverseFault:
    if isinstance(key, str):
        return DataverseFault(404, "0x80040217", f"{table.definition.logical_name} With Id = {key} Does Not Exist")
    return DataverseFault(
        404,
        "0x80060891",
        f"A record with the specified key values does not exist in {table.definition.logical_name} entity",
    )
