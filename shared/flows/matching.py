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
        if linked_to in (None, "", square_id):
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


def email_filter(email_key: str) -> str:
    # Dataverse string comparison is case-insensitive, so the case-folded key finds any casing.
    return f"emailaddress1 eq {odata_string(email_key)} and statecode eq 0"


def phone_filter(phone_e164: str) -> str:
    literal = odata_string(phone_e164)
    return f"(mobilephone eq {literal} or telephone1 eq {literal}) and statecode eq 0"
