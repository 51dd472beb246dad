"""The `mappings` section: per mapping kind, CRM column → Square field + named transforms (+ for contact
fields, which system owns the field). Validated against the column catalog and the kind's sources."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.config.columns import Column, ColumnCatalog
from shared.config.mapping_kinds import DEFAULT_OWNER, KINDS, OWNERS, TRANSFORMS, MappingKind
from shared.config.yaml_source import Path, Problems, expect_mapping, type_name

FIELD_KEYS = ("from", "transforms", "owner", "only_with")
PREFIX_PLACEHOLDER = "{prefix}"


@dataclass(frozen=True)
class Transform:
    name: str
    value: Any = None  # the value of `constant`


@dataclass(frozen=True)
class FieldMap:
    """One CRM column and where its value comes from."""

    column: str  # logical name, publisher prefix applied
    source: str | None  # Square field path, or computed.<name>; None for a constant
    transforms: tuple[Transform, ...] = ()
    owner: str = DEFAULT_OWNER  # contact fields: square | crm | both | crm_if_empty
    only_with: str | None = None  # written only when this Square field is present
    max_length: int | None = None  # the column's length (truncate, and the length check)

    @property
    def skipped(self) -> bool:
        return any(t.name == "skip" for t in self.transforms)


@dataclass(frozen=True)
class Mapping:
    kind: str
    table: str
    fields: tuple[FieldMap, ...]

    def field(self, column: str) -> FieldMap | None:
        return next((f for f in self.fields if f.column == column), None)


def _transforms(value: Any, path: Path, problems: Problems) -> tuple[Transform, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.add(path, f"must be a list, found {type_name(value)}", ", ".join(TRANSFORMS))
        return ()
    found: list[Transform] = []
    for index, item in enumerate(value):
        if isinstance(item, dict) and len(item) == 1 and "constant" in item:
            found.append(Transform("constant", item["constant"]))
        elif isinstance(item, str) and item in TRANSFORMS and item != "constant":
            found.append(Transform(item))
        elif item == "constant":
            problems.add((*path, index), "constant needs a value", "{constant: <value>}")
        else:
            problems.add((*path, index), f"unknown transform {item!r}", ", ".join(TRANSFORMS))
    return tuple(found)


def _field(
    kind: MappingKind, column: str, spec: Any, path: Path, problems: Problems, *, target: Column | None
) -> FieldMap | None:
    allowed_keys = FIELD_KEYS if kind.name == "contact" else tuple(k for k in FIELD_KEYS if k != "owner")
    found = expect_mapping(spec, path, problems, allowed_keys)
    if found is None:
        return None
    transforms = _transforms(found.get("transforms"), (*path, "transforms"), problems)
    source = found.get("from")
    fixed = any(t.name in ("constant", "skip") for t in transforms)
    if source is None and not fixed:
        problems.add(path, "missing the key 'from'", "a Square field, computed.<name>, or a constant/skip transform")
    elif source is not None and (not isinstance(source, str) or not kind.allows_source(source)):
        problems.add((*path, "from"), f"{source!r} is not a field {kind.name} mappings can read", _sources(kind))
    owner = found.get("owner", DEFAULT_OWNER)
    if owner not in OWNERS:
        problems.add((*path, "owner"), f"{owner!r} is not an owner", ", ".join(OWNERS))
    only_with = found.get("only_with")
    if only_with is not None and (not isinstance(only_with, str) or not kind.allows_source(only_with)):
        problems.add((*path, "only_with"), f"{only_with!r} is not a field {kind.name} mappings can read")
    if target is not None and any(t.name == "truncate" for t in transforms) and target.max_length is None:
        problems.add((*path, "transforms"), f"truncate needs a text column; {column} is {target.type}")
    return FieldMap(
        column=column,
        source=source if isinstance(source, str) else None,
        transforms=transforms,
        owner=owner if owner in OWNERS else DEFAULT_OWNER,
        only_with=only_with if isinstance(only_with, str) else None,
        max_length=target.max_length if target else None,
    )


def _sources(kind: MappingKind) -> str:
    square = ", ".join(kind.square_fields[:12]) + (", …" if len(kind.square_fields) > 12 else "")
    computed = ", ".join(f"computed.{name}" for name in kind.computed)
    return "; ".join(part for part in (square, computed) if part)


def column_name(raw: str, prefix: str) -> str:
    return raw.replace(PREFIX_PLACEHOLDER, prefix).lower()


def parse_mapping(
    kind: MappingKind, value: Any, path: Path, problems: Problems, *, catalog: ColumnCatalog, prefix: str
) -> Mapping:
    table = kind.table_for(prefix)
    fields: list[FieldMap] = []
    if not isinstance(value, dict):
        problems.add(path, f"must be a mapping of CRM column → field, found {type_name(value)}")
        return Mapping(kind.name, table, ())
    for raw_column, spec in value.items():
        column = column_name(str(raw_column), prefix)
        target = catalog.column(table, column)
        if target is None:
            problems.add(
                (*path, str(raw_column)),
                f"{column} is not a column of {table} in the schema file (infra/dataverse/schema.json)",
                ", ".join(catalog.names(table)) or "(none declared)",
            )
        field = _field(kind, column, spec, (*path, str(raw_column)), problems, target=target)
        if field is not None:
            fields.append(field)
    return Mapping(kind.name, table, tuple(fields))


def parse_mappings(
    value: Any, path: Path, problems: Problems, catalog: ColumnCatalog, prefix: str
) -> dict[str, Mapping]:
    """The kinds the file maps (a kind left out keeps the shipped default, merged by the caller)."""
    found = expect_mapping(value, path, problems, tuple(KINDS))
    if found is None:
        return {}
    return {
        name: parse_mapping(KINDS[name], spec, (*path, name), problems, catalog=catalog, prefix=prefix)
        for name, spec in found.items()
        if name in KINDS
    }
