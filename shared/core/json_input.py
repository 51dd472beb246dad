"""JSON from outside (webhook bodies, admin requests, continuation tokens), read so that whatever is accepted
can be stored, queued, logged and written back out again.

The rules are I-JSON's (RFC 7493 §2): UTF-8 text (RFC 8259 §8.1), no lone surrogates (a string must be
Unicode), finite numbers only (no NaN/Infinity literals, no 1e999). On top: nesting of at most MAX_DEPTH
levels (pydantic's serializer gives up near 255 and Python's parser near 1,000; Square's deepest objects are
about a dozen levels) and integers of at most MAX_INT_DIGITS digits (Square's are int64; Python refuses
more than 4,300 digits with a ValueError of its own). Duplicate member names are accepted, the last one
winning, as Python's parser does everywhere in the project (one parser, so no two readings of a body).

Anything else is one JsonInputError saying which rule was broken and where (keys only, never a value).
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 64
MAX_INT_DIGITS = 64
_MAX_PATH_SHOWN = 120


class JsonInputError(ValueError):
    """The text is not JSON, or is JSON that Tillbridge does not accept (the message names the rule)."""


def _where(path: tuple[str | int, ...]) -> str:
    shown = ".".join(str(part)[:30] for part in path) or "the top level"
    return shown.encode("utf-8", "backslashreplace").decode("utf-8")[:_MAX_PATH_SHOWN]


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise JsonInputError(f"an integer has more than {MAX_INT_DIGITS} digits")
    return int(text)


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonInputError(f"the number {text[:40]} is out of range")
    return value


def _constant(name: str) -> Any:
    raise JsonInputError(f"{name} is not a JSON number")


def _is_unicode(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: "\ud800" is valid JSON syntax but not Unicode
        return False
    return True


def _check(document: Any, max_depth: int) -> None:
    """Walk the parsed document without recursion (its depth is what is being checked)."""
    pending: list[tuple[Any, tuple[str | int, ...]]] = [(document, ())]
    while pending:
        value, path = pending.pop()
        if isinstance(value, str):
            if not _is_unicode(value):
                raise JsonInputError(f"a string at {_where(path)} holds a lone surrogate (not Unicode)")
            continue
        if not isinstance(value, dict | list):
            continue
        if len(path) >= max_depth:
            raise JsonInputError(f"nested deeper than {max_depth} levels at {_where(path)}")
        if isinstance(value, list):
            pending.extend((item, (*path, index)) for index, item in enumerate(value))
            continue
        for key, item in value.items():
            if not _is_unicode(key):
                raise JsonInputError(f"a key at {_where(path)} holds a lone surrogate (not Unicode)")
            pending.append((item, (*path, key)))


def read_json(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """The parsed document, or JsonInputError naming the rule it breaks."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")  # strict: encoded surrogates and other invalid UTF-8 are refused here
        except UnicodeDecodeError as error:
            raise JsonInputError(f"the text is not UTF-8 (byte {error.start})") from error
    try:
        document = json.loads(raw, parse_int=_integer, parse_float=_number, parse_constant=_constant)
    except JsonInputError:
        raise
    except RecursionError as error:
        raise JsonInputError(f"nested deeper than {max_depth} levels") from error
    except ValueError as error:  # JSONDecodeError, and int() refusing a number over its own digit limit
        raise JsonInputError(f"not JSON: {str(error)[:120]}") from error
    _check(document, max_depth)
    return document


def stored_object(text: str | None) -> dict[str, Any] | None:
    """A JSON object Tillbridge stored itself (a cursor, a ledger column); None when absent or unreadable."""
    if not text:
        return None
    try:
        loaded = json.loads(text)
    except ValueError:
        return None
    return loaded if isinstance(loaded, dict) else None
