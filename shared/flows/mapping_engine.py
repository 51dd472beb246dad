"""Applies a mapping section: for each CRM column, read the Square field (or a computed value), run its
named transforms, check the column's length — every bad field reported together (pure; no I/O)."""

from __future__ import annotations

from collections.abc import Mapping as AnyMapping
from datetime import date
from typing import Any

from shared.config.mappings import FieldMap, Mapping
from shared.core.errors import FieldProblem
from shared.core.money import MoneyError, to_decimal
from shared.core.normalize import NormalizationError, display_email, normalize_email, normalize_phone

_MISSING = object()


def read_path(source: AnyMapping[str, Any], computed: AnyMapping[str, Any], path: str) -> Any:
    """The value at a dotted path (`address.locality`, `computed.state`); absent anywhere → _MISSING."""
    if path.startswith("computed."):
        return computed.get(path.removeprefix("computed."), None)
    value: Any = source
    for part in path.split("."):
        if not isinstance(value, AnyMapping) or value.get(part) is None:
            return _MISSING
        value = value[part]
    return value


def _text(value: Any) -> str | None:
    if value is None:
        return None
    stripped = str(value).strip()
    return stripped or None


def _date(value: Any) -> str | None:
    """Square birthdays are YYYY-MM-DD, with year 0000 when the customer gave no year (nothing written)."""
    text = _text(value)
    if text is None:
        return None
    text = text[:10]
    if text.startswith("0000"):
        return None
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError as error:
        raise NormalizationError("not a calendar date (expected YYYY-MM-DD)") from error


def _email(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    normalize_email(text)  # raises when the address is not valid
    return display_email(text)


def _money(value: Any) -> float | None:
    try:
        converted = to_decimal(value) if isinstance(value, dict) else None
    except MoneyError as error:
        raise NormalizationError(str(error)) from error
    return float(converted[0]) if converted else None


def _truncate(value: Any, limit: int | None) -> str | None:
    if value is None:
        return None
    text = str(value)[: limit or None]
    return text or None


def _apply(field: FieldMap, value: Any, region: str) -> Any:
    for transform in field.transforms:
        name = transform.name
        if name == "constant":
            value = transform.value
        elif name == "trim":
            value = _text(value)
        elif name in ("lower", "upper"):
            value = None if value is None else (str(value).lower() if name == "lower" else str(value).upper())
        elif name == "e164":
            value = None if _text(value) is None else normalize_phone(str(_text(value)), region)
        elif name == "email":
            value = _email(value)
        elif name == "date":
            value = _date(value)
        elif name == "boolean":
            value = bool(value)
        elif name == "money":
            value = _money(value)
        elif name == "truncate":
            value = _truncate(value, field.max_length)
    return value


def apply_mapping(
    mapping: Mapping,
    source: AnyMapping[str, Any],
    *,
    computed: AnyMapping[str, Any] | None = None,
    region: str = "US",
    problems: list[FieldProblem],
) -> dict[str, Any]:
    """The payload the mapping gives for this Square object; bad fields are appended to `problems`."""
    computed = computed or {}
    payload: dict[str, Any] = {}
    for field in mapping.fields:
        if field.skipped:
            continue
        if field.only_with and read_path(source, computed, field.only_with) is _MISSING:
            continue
        raw = read_path(source, computed, field.source) if field.source else None
        try:
            value = _apply(field, None if raw is _MISSING else raw, region)
        except NormalizationError as error:
            problems.append(FieldProblem(field.source or field.column, str(error)))
            value = None
        if isinstance(value, str) and field.max_length is not None and len(value) > field.max_length:
            problems.append(
                FieldProblem(field.column, f"{len(value)} characters, the CRM column holds {field.max_length}")
            )
        payload[field.column] = value
    return payload
