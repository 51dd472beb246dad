"""Deterministic matching of an unlinked Square customer to CRM contacts: email, then E.164 phone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


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


MATCH_COLUMNS = ("contactid", "statecode", "emailaddress1", "mobilephone", "telephone1")


@dataclass(frozen=True)
class MatchKeys:
    """What identifies one Square customer in the CRM."""

    key_column: str
    square_id: str
    email_key: str | None
    phone_e164: str | None


def match_filter(keys: MatchKeys) -> str:
    """One query for all three rules: keyed by this Square id (any state), or an active contact with the
    email or the E.164 phone. Dataverse string comparison is case-insensitive, so the case-folded email
    finds any casing."""
    contact_rules = []
    if keys.email_key:
        contact_rules.append(f"emailaddress1 eq {odata_string(keys.email_key)}")
    if keys.phone_e164:
        literal = odata_string(keys.phone_e164)
        contact_rules.append(f"mobilephone eq {literal} or telephone1 eq {literal}")
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
    by_phone = tuple(row for row in active if phone and phone in (row.get("mobilephone"), row.get("telephone1")))
    return Candidates(keyed, by_email, by_phone)
