"""Per-field ownership for two-way contact sync, and the pure decisions both directions take from it.

Owners (per mapped contact column; a column not named is Square's):
  square        Square wins: its value is written to the CRM; CRM edits are not sent back
  crm           the CRM wins: its value is sent to Square; Square edits are not written to the CRM
  both          the latest change wins (row timestamps: Square `updated_at`, CRM `modifiedon`; ties → Square)
  crm_if_empty  Square fills the column only while the CRM value is empty; CRM edits are not sent back

Both sides are compared in the CRM's shape (the Square customer mapped by customer_mapping), through
fingerprints of canonical values (E.164 phones, case-folded emails), so a phone Square stores as typed and
the CRM stores in E.164 are the same value. No I/O here: flows/two_way.py and flows/crm_contacts.py do it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from shared.config.mappings import Mapping as ContactMapping
from shared.config.two_way import writable_back
from shared.core.normalize import NormalizationError, normalize_email, normalize_phone
from shared.core.ports import Queue
from shared.core.times import parse_time


class Owner(StrEnum):
    SQUARE = "square"
    CRM = "crm"
    BOTH = "both"
    CRM_IF_EMPTY = "crm_if_empty"


class ConflictRule(StrEnum):
    LATEST = "latest"  # latest change wins by timestamp, ties to Square
    REVIEW = "review"  # a needs_review failure; neither side is written


class CrmDeletes(StrEnum):
    IGNORE = "ignore"
    DELETE = "delete"  # a contact deactivated or deleted in the CRM deletes its Square customer


@dataclass
class TwoWayOptions:
    """How contacts sync back, besides the owners (the configuration file's contact mapping): the conflict
    rule, what a CRM delete does, whether unlinked contacts are created in Square."""

    conflicts: ConflictRule = ConflictRule.LATEST
    crm_deletes: CrmDeletes = CrmDeletes.IGNORE
    create_in_square: bool = False
    push_queue: Queue | None = None  # crm-events: where a Square-side decision sends a CRM value back
    app_user_id: str | None = None  # WhoAmI's UserId, looked up on first use

    def polls(self, owners: Mapping[str, Owner]) -> bool:
        """Whether CRM changes need to be read at all."""
        return is_two_way(owners) or self.crm_deletes is CrmDeletes.DELETE or self.create_in_square


CANONICAL_TRANSFORMS = ("e164", "email", "date")  # how both sides' values are compared


@dataclass(frozen=True)
class SyncedField:
    """One mapped contact column: where it lives on a Square customer (None: it cannot be written back) and
    how its values compare (phone, email, date or text, from the mapping's transforms)."""

    column: str
    square_path: tuple[str, ...] | None
    compare: str = "text"


def synced_fields(mapping: ContactMapping) -> tuple[SyncedField, ...]:
    """The contact columns the configuration file maps, each with its Square field for the way back."""
    found = []
    for field_map in mapping.fields:
        if field_map.skipped:
            continue
        names = {t.name for t in field_map.transforms}
        compare = next((t for t in CANONICAL_TRANSFORMS if t in names), "text")
        path = tuple(field_map.source.split(".")) if writable_back(field_map) and field_map.source else None
        found.append(SyncedField(field_map.column, path, compare))
    return tuple(found)


def owners_of(mapping: ContactMapping) -> dict[str, Owner]:
    """Each mapped contact column's owner as the configuration file gives it (only the ones not Square's)."""
    return {f.column: Owner(f.owner) for f in mapping.fields if f.owner != Owner.SQUARE and not f.skipped}


def is_two_way(owners: Mapping[str, Owner]) -> bool:
    return any(owner is not Owner.SQUARE for owner in owners.values())


def sends_to_square(owners: Mapping[str, Owner]) -> bool:
    return any(owner in (Owner.CRM, Owner.BOTH) for owner in owners.values())


def needs_crm_values(owners: Mapping[str, Owner]) -> bool:
    """Whether the Square → CRM direction must read the contact first (to see empty or changed values)."""
    return any(owner in (Owner.BOTH, Owner.CRM_IF_EMPTY) for owner in owners.values())


# ---- fingerprints ----

EMPTY = ""


def canonical(compare: str, value: Any, region: str) -> str:
    """The value as both systems should agree on it: phones in E.164, emails case-folded, text trimmed."""
    if value is None:
        return EMPTY
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip()
    if not text:
        return EMPTY
    if compare == "e164":
        try:
            return normalize_phone(text, region)
        except NormalizationError:
            return text
    if compare == "email":
        try:
            return normalize_email(text)
        except NormalizationError:
            return text.casefold()
    if compare == "date":
        return text[:10]
    return text


def fingerprint(field_: SyncedField, value: Any, region: str) -> str:
    """A short one-way tag of a column's canonical value ("" for empty): the ledger keeps these, not values."""
    text = canonical(field_.compare, value, region)
    if text == EMPTY:
        return EMPTY
    return hashlib.sha256(f"{field_.column}\x1f{text}".encode()).hexdigest()[:16]


def fingerprints(values: Mapping[str, Any], fields: Iterable[SyncedField], region: str) -> dict[str, str]:
    """Fingerprints of the mapped columns `values` holds."""
    return {f.column: fingerprint(f, values.get(f.column), region) for f in fields if f.column in values}


def state_hash(fields: Mapping[str, str]) -> str:
    canonical_text = "\x1e".join(f"{k}\x1f{v}" for k, v in sorted(fields.items()))
    return hashlib.sha256(canonical_text.encode()).hexdigest()


# ---- decisions ----


@dataclass(frozen=True)
class Conflict:
    """Both sides changed one `both` column since the last sync: the values, their times and the winner."""

    column: str
    square_value: Any
    crm_value: Any
    square_at: str | None
    crm_at: str | None
    winner: str  # square | crm | review


def _winner(square_at: str | None, crm_at: str | None, rule: ConflictRule) -> str:
    """The later change wins, compared in whole seconds (Dataverse's `modifiedon` has no finer precision,
    Square's `updated_at` has milliseconds): the same second, or an unknown time, is a tie and goes to Square."""
    if rule is ConflictRule.REVIEW:
        return "review"
    square_time, crm_time = parse_time(square_at), parse_time(crm_at)
    if square_time is None or crm_time is None:
        return "square"
    return "crm" if crm_time.replace(microsecond=0) > square_time.replace(microsecond=0) else "square"


@dataclass(frozen=True)
class Sides:
    """What is known of one contact: each side's fingerprints at the last sync (None: never recorded)."""

    square_before: Mapping[str, str] | None = None
    crm_before: Mapping[str, str] | None = None
    square_at: str | None = None
    crm_at: str | None = None


@dataclass(frozen=True)
class SquareToCrm:
    """What a Square change writes to the CRM."""

    payload: dict[str, Any]
    push_back: tuple[str, ...] = ()  # columns whose CRM value must be sent to Square (Square diverged)
    conflicts: tuple[Conflict, ...] = ()

    @property
    def needs_review(self) -> bool:
        return any(c.winner == "review" for c in self.conflicts)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


@dataclass(frozen=True)
class _Column:
    """One column of a Square change, with both sides' fingerprints (crm None: unknown)."""

    name: str
    value: Any
    square: str
    crm: str | None
    crm_value: Any


def decide_square_to_crm(
    square_payload: Mapping[str, Any],
    *,
    owners: Mapping[str, Owner],
    fields: Iterable[SyncedField],
    sides: Sides,
    crm_now: Mapping[str, Any] | None,
    first_sync: bool,
    rule: ConflictRule,
    region: str,
) -> SquareToCrm:
    """The columns of a mapped Square customer to write to the CRM, under each column's owner.

    `crm_now` is the contact as it is now, when it was read ({} when there is no contact yet; None when not
    read: only `crm`/`square` owners on a linked contact). `first_sync`: the customer is not linked yet, so
    the CRM has no value to own unless the matched contact holds one.
    """
    payload: dict[str, Any] = {}
    push_back: list[str] = []
    conflicts: list[Conflict] = []
    by_column = {f.column: f for f in fields}
    for name, value in square_payload.items():
        field_ = by_column.get(name, SyncedField(name, None))
        column = _Column(
            name,
            value,
            fingerprint(field_, value, region),
            _crm_fingerprint(field_, crm_now, sides, region),
            crm_now.get(name) if crm_now is not None else None,
        )
        verdict = _square_column(column, owners.get(name, Owner.SQUARE), sides, first_sync, rule)
        if isinstance(verdict, Conflict):
            conflicts.append(verdict)
            verdict = verdict.winner
        if verdict == "square":
            payload[name] = value
        elif verdict == "crm":
            push_back.append(name)
    return SquareToCrm(payload, tuple(push_back), tuple(conflicts))


def _crm_fingerprint(field_: SyncedField, crm_now: Mapping[str, Any] | None, sides: Sides, region: str) -> str | None:
    if crm_now is not None:
        return fingerprint(field_, crm_now.get(field_.column), region)
    if sides.crm_before is not None and field_.column in sides.crm_before:
        return sides.crm_before[field_.column]
    return None  # unknown


def _square_column(column: _Column, owner: Owner, sides: Sides, first_sync: bool, rule: ConflictRule) -> str | Conflict:
    """ "square" (write Square's value), "crm" (keep the CRM's and send it to Square), "same" (nothing to do),
    or a Conflict naming the winner."""
    if column.crm == column.square:
        return "same"
    if owner is Owner.SQUARE:
        return "square"
    if owner is Owner.CRM_IF_EMPTY or (owner is Owner.CRM and first_sync):
        if column.crm == EMPTY:
            return "square"  # the CRM holds nothing here yet: Square fills it
        return "crm" if owner is Owner.CRM else "same"
    if owner is Owner.CRM:
        return "crm"
    return _both(column, sides, first_sync, rule)


def _both(column: _Column, sides: Sides, first_sync: bool, rule: ConflictRule) -> str | Conflict:
    if column.crm is None:
        return "square"  # the CRM value is unknown: Square's change stands, as in one-way sync
    if first_sync and column.crm == EMPTY:
        return "square"  # nothing in the CRM yet: Square fills it
    if first_sync:
        square_changed = crm_changed = True  # no shared history: the times decide
    else:
        before_square = (sides.square_before or {}).get(column.name)
        before_crm = (sides.crm_before or {}).get(column.name)
        square_changed = before_square is None or before_square != column.square
        crm_changed = before_crm is None or before_crm != column.crm
    if square_changed and not crm_changed:
        return "square"
    if not square_changed:  # the CRM changed it, or an earlier CRM win is still on its way to Square
        return "crm"
    winner = _winner(sides.square_at, sides.crm_at, rule)
    return Conflict(column.name, column.value, column.crm_value, sides.square_at, sides.crm_at, winner)


@dataclass(frozen=True)
class CrmToSquare:
    """What a CRM change sends to Square."""

    send: tuple[str, ...]
    conflicts: tuple[Conflict, ...] = ()
    crm_now: dict[str, str] = field(default_factory=dict)  # the row's fingerprints (what the CRM holds)

    @property
    def needs_review(self) -> bool:
        return any(c.winner == "review" for c in self.conflicts)


def decide_crm_to_square(
    crm_values: Mapping[str, Any],
    *,
    owners: Mapping[str, Owner],
    fields: Iterable[SyncedField],
    sides: Sides,
    square_now: Mapping[str, str] | None = None,
    square_values: Mapping[str, Any] | None = None,
    forced: Iterable[str] = (),
    rule: ConflictRule = ConflictRule.LATEST,
    region: str = "US",
) -> CrmToSquare:
    """The CRM columns to send to Square: owned by the CRM (or `both` and changed in the CRM) and different
    from what Square holds. `square_now` is Square's state read just now (after a version mismatch); without
    it, Square is taken to hold what the ledger last saw. `forced`: `both` columns a Square-side decision gave
    to the CRM."""
    pushable = [f for f in fields if f.square_path is not None and f.column in crm_values]
    crm_now = fingerprints(crm_values, pushable, region)
    square_before = sides.square_before or {}
    square_current = square_now if square_now is not None else square_before
    forced_columns = set(forced)
    send: list[str] = []
    conflicts: list[Conflict] = []
    for column in (f.column for f in pushable):
        owner = owners.get(column, Owner.SQUARE)
        crm_fp = crm_now[column]
        if owner not in (Owner.CRM, Owner.BOTH) or crm_fp == square_current.get(column):
            continue
        if owner is Owner.CRM:
            send.append(column)
            continue
        crm_before = (sides.crm_before or {}).get(column)
        if not (crm_before is None or crm_before != crm_fp or column in forced_columns):
            continue  # the CRM did not change it: Square's value stands
        square_changed = square_now is not None and square_now.get(column) != square_before.get(column)
        if not square_changed:
            send.append(column)
            continue
        winner = _winner(sides.square_at, sides.crm_at, rule)
        square_value = (square_values or {}).get(column)
        conflicts.append(Conflict(column, square_value, crm_values.get(column), sides.square_at, sides.crm_at, winner))
        if winner == "crm":
            send.append(column)
    return CrmToSquare(tuple(send), tuple(conflicts), crm_now)


# ---- the Square side of a CRM value ----


def _square_value(compare: str, value: Any, region: str) -> Any:
    if _empty(value):
        return None  # a sparse update clears a field sent as null (Square "Clear API object fields")
    text = str(value).strip()
    if compare == "e164":
        try:
            return normalize_phone(text, region)
        except NormalizationError:
            return text  # Square judges it: INVALID_PHONE_NUMBER becomes a failure on this field
    if compare == "date":
        try:
            return date.fromisoformat(text[:10]).isoformat()
        except ValueError:
            return text
    return text


def square_changes(
    crm_values: Mapping[str, Any], send: Iterable[str], fields: Iterable[SyncedField], region: str
) -> dict[str, Any]:
    """The sparse UpdateCustomer body (without `version`) carrying the given CRM columns."""
    writable = {f.column: f for f in fields if f.square_path is not None}
    body: dict[str, Any] = {}
    for column in send:
        field_ = writable[column]
        path = field_.square_path or ()
        value = _square_value(field_.compare, crm_values.get(column), region)
        if len(path) == 1:
            body[path[0]] = value
        else:
            body.setdefault(path[0], {})[path[1]] = value
    return body


def column_of_square_field(square_field: str, fields: Iterable[SyncedField]) -> str:
    """A Square error's `field` (e.g. `email_address`, `address.postal_code`) → the contact column."""
    for known in fields:
        if known.square_path and ".".join(known.square_path) in (square_field, square_field.removeprefix("customer.")):
            return known.column
    return square_field
