"""Deterministic matching of an unlinked Square customer to CRM contacts: email, then phone.

Phones in a CRM are written as people type them — `(206) 555-0100`, `206.555.0100`, `+1 206 555 0100` —
so candidates are found by the number's trailing digits in the usual groupings and then confirmed by
normalising each candidate's number to E.164 with libphonenumber (decision 0005)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shared.core.normalize import NormalizationError, normalize_phone


class MatchKind(StrEnum):
    LINK = "link"
    CREATE = "create"
    REVIEW = "review"


@dataclass(frozen=True)
class MatchDecision:
    kind: MatchKind
    contact_id: str | None = None
    matched_on: str | None = None
    candidates: tuple[str, ...] = ()


def _eligible(candidates: Sequence[dict[str, Any]], key_column: str, square_id: str) -> list[str]:
    """Contacts already linked to another Square customer are someone else's, never a match."""
    ids: list[str] = []
    for contact in candidates:
        linked_to = contact.get(key_column)
        if linked_to in (None, "", square_id) or str(linked_to).startswith("guest-"):  # a guest becomes the customer
            ids.append(str(contact["contactid"]))
    return sorted(set(ids))


def choose_match(
    *,
    square_id: str,
    key_column: str,
    by_email: Sequence[dict[str, Any]],
    by_phone: Sequence[dict[str, Any]],
) -> MatchDecision:
    """One candidate links; several need a person; none creates. Email outranks phone."""
    for matched_on, candidates in (("email", by_email), ("phone", by_phone)):
        eligible = _eligible(candidates, key_column, square_id)
        if len(eligible) == 1:
            return MatchDecision(MatchKind.LINK, contact_id=eligible[0], matched_on=matched_on)
        if len(eligible) > 1:
            return MatchDecision(MatchKind.REVIEW, matched_on=matched_on, candidates=tuple(eligible))
    return MatchDecision(MatchKind.CREATE)


def odata_string(value: str) -> str:
    """An OData string literal: single quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


PHONE_COLUMNS = ("mobilephone", "telephone1")
MATCH_COLUMNS = ("contactid", "statecode", "emailaddress1", *PHONE_COLUMNS)


@dataclass(frozen=True)
class MatchKeys:
    """What identifies one Square customer in the CRM."""

    key_column: str
    square_id: str
    email_key: str | None
    phone_e164: str | None
    phone_region: str = "US"


def phone_candidates_filter(e164: str) -> str:
    """Contacts whose number may be this one however it was typed: the E.164 text itself, or ending in the
    last four digits (together, or as two pairs: `…01 00`) with the three digits before them present.
    Only candidates — each is confirmed with libphonenumber before it counts."""
    digits = e164.lstrip("+")
    clauses = []
    for column in PHONE_COLUMNS:
        clauses.append(f"{column} eq {odata_string(e164)}")
        if len(digits) >= 7:
            last4, before = digits[-4:], digits[-7:-4]
            clauses.append(f"(endswith({column},'{last4}') and contains({column},'{before}'))")
            clauses.append(f"endswith({column},'{last4[:2]} {last4[2:]}')")
    return " or ".join(clauses)


def same_phone(written: object, e164: str, region: str) -> bool:
    """Does a number as written in the CRM denote this E.164 number? (libphonenumber decides)"""
    if not isinstance(written, str) or not written.strip():
        return False
    try:
        return normalize_phone(written, region) == e164
    except NormalizationError:
        return False


def match_filter(keys: MatchKeys) -> str:
    """One query for all three rules: keyed by this Square id (any state), or an active contact with the
    email or a phone that may be this one. Dataverse string comparison is case-insensitive, so the
    case-folded email finds any casing."""
    contact_rules = []
    if keys.email_key:
        contact_rules.append(f"emailaddress1 eq {odata_string(keys.email_key)}")
    if keys.phone_e164:
        contact_rules.append(phone_candidates_filter(keys.phone_e164))
    by_key = f"{keys.key_column} eq {odata_string(keys.square_id)}"
    if not contact_rules:
        return by_key
    return f"{by_key} or (({' or '.join(contact_rules)}) and statecode eq 0)"


@dataclass(frozen=True)
class Candidates:
    keyed: tuple[dict[str, Any], ...]
    by_email: tuple[dict[str, Any], ...]
    by_phone: tuple[dict[str, Any], ...]


def split_candidates(rows: Sequence[dict[str, Any]], keys: MatchKeys) -> Candidates:
    """Sort the one query's rows back into the three rules (a row may meet more than one)."""
    keyed = tuple(row for row in rows if row.get(keys.key_column) == keys.square_id)
    active = [row for row in rows if row.get("statecode", 0) == 0]
    email, phone = keys.email_key, keys.phone_e164
    by_email = tuple(row for row in active if email and str(row.get("emailaddress1") or "").strip().casefold() == email)
    by_phone = tuple(
        row
        for row in active
        if phone and any(same_phone(row.get(column), phone, keys.phone_region) for column in PHONE_COLUMNS)
    )
    return Candidates(keyed, by_email, by_phone)
