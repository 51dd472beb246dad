"""Alternate-key values and how they are addressed: the one key scheme for every Dataverse row Tillbridge
keys by Square data.

Dataverse refuses a key value holding any of  / < > * % & : \\ ? +  in a key URL (GET, PATCH and upsert
by key fail; reference/dataverse.md §3, "Define alternate keys"). So:

- A composite key value (a transaction line is its order id plus its line uid) joins its parts with "."
  and writes every character that could break a key URL, or confuse the join, as "~" and two hex digits
  ("~" itself as "~7E"; a character above U+00FF as "~u" and four hex digits). Square ids are
  alphanumeric, so `ORDER1.LINE1` is what a real key looks like; the scheme stays injective whatever a
  client put in a line uid.
- Every key value is checked before anything is sent: one holding a refused character (a Square id no
  real Square would issue, e.g. "../customers/X") is an InvalidKeyError naming the column and the value,
  recorded as a failure, never a 400 from the CRM half-way through a $batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from shared.core.errors import TerminalError

FORBIDDEN_KEY_CHARACTERS = frozenset("/<>*%&:\\?+")
SEPARATOR = "."
ESCAPE = "~"
_ENCODED = FORBIDDEN_KEY_CHARACTERS | {SEPARATOR, ESCAPE}


class InvalidKeyError(TerminalError):
    """A value cannot be an alternate key in a Dataverse URL (names the column and the value)."""

    reason_code = "invalid_key"

    def __init__(self, column: str, value: str, why: str) -> None:
        super().__init__(f"alternate key {column}={value!r} {why}")
        self.column, self.value = column, value


def _encode_char(char: str) -> str:
    if char in _ENCODED or ord(char) < 0x20 or ord(char) == 0x7F:
        return f"{ESCAPE}{ord(char):02X}"
    if ord(char) > 0xFF and not char.isprintable():
        return f"{ESCAPE}u{ord(char):04X}"
    return char


def key_part(value: str) -> str:
    """One part of a composite key, with every refused character (and "." and "~") escaped."""
    return "".join(_encode_char(char) for char in value)


def composite_key(*parts: str) -> str:
    """The key value of a row identified by several Square values, e.g. (order id, line uid)."""
    return SEPARATOR.join(key_part(part) for part in parts)


def check_key_value(column: str, value: str) -> str:
    """The value itself, or InvalidKeyError when Dataverse would refuse it in a key URL."""
    if not value:
        raise InvalidKeyError(column, value, "is empty")
    refused = sorted({char for char in value if char in FORBIDDEN_KEY_CHARACTERS})
    if refused:
        raise InvalidKeyError(column, value, f"holds {' '.join(refused)}, which Dataverse refuses in a key URL")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        raise InvalidKeyError(column, value, "holds control characters")
    return value


def key_segment(key: Mapping[str, str]) -> str:
    """`(col='value',...)` for a URL: values checked, quotes doubled, then percent-encoded (OData)."""
    parts = []
    for column, value in key.items():
        literal = check_key_value(column, value).replace("'", "''")
        parts.append(f"{column}='{quote(literal, safe='')}'")
    return "(" + ",".join(parts) + ")"
