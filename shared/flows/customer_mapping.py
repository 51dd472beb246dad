"""Square customer → Dataverse contact: pure mapping, validation and content hash (no I/O)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from shared.core.errors import FieldProblem, InvalidDataError
from shared.core.models import SquareCustomer
from shared.core.normalize import NormalizationError, display_email, normalize_email, normalize_phone

CONTACT_ENTITY = "contact"
CONTACTS = "contacts"

# Dataverse max lengths of the standard contact columns Tillbridge writes (contact table reference).
MAX_LENGTHS = {
    "firstname": 50,
    "lastname": 50,
    "nickname": 100,
    "emailaddress1": 100,
    "mobilephone": 50,
    "address1_line1": 250,
    "address1_line2": 250,
    "address1_line3": 250,
    "address1_city": 80,
    "address1_stateorprovince": 50,
    "address1_postalcode": 20,
    "address1_country": 80,
    "description": 2000,
}


@dataclass(frozen=True)
class ContactColumns:
    """Names of Tillbridge's custom contact columns under the publisher prefix."""

    prefix: str

    @property
    def square_id(self) -> str:
        return f"{self.prefix}_squarecustomerid"

    @property
    def reference_id(self) -> str:
        return f"{self.prefix}_squarereferenceid"

    @property
    def company_name(self) -> str:
        return f"{self.prefix}_squarecompanyname"

    def custom_max_lengths(self) -> dict[str, int]:
        return {self.square_id: 100, self.reference_id: 100, self.company_name: 500}


@dataclass(frozen=True)
class ContactPlan:
    """What to write for one customer, and the keys used to match an unlinked contact."""

    payload: dict[str, Any]
    email_key: str | None
    phone_e164: str | None
    content_hash: str


def content_hash(payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    stripped = value.strip()
    return stripped or None


def _birthdate(raw: str | None, problems: list[FieldProblem]) -> str | None:
    """Square sends YYYY-MM-DD, with year 0000 when the customer gave no year (then nothing is written)."""
    if not raw:
        return None
    text = raw.strip()[:10]
    if text.startswith("0000"):
        return None
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        problems.append(FieldProblem("birthday", "not a calendar date (expected YYYY-MM-DD)"))
        return None


def _address_columns(customer: SquareCustomer) -> dict[str, str | None]:
    address = customer.address
    if address is None:
        return {}
    return {
        "address1_line1": _text(address.address_line_1),
        "address1_line2": _text(address.address_line_2),
        "address1_line3": _text(address.address_line_3),
        "address1_city": _text(address.locality),
        "address1_stateorprovince": _text(address.administrative_district_level_1),
        "address1_postalcode": _text(address.postal_code),
        "address1_country": _text(address.country),
    }


def _email(customer: SquareCustomer, problems: list[FieldProblem]) -> tuple[str | None, str | None]:
    raw = _text(customer.email_address)
    if raw is None:
        return None, None
    try:
        return display_email(raw), normalize_email(raw)
    except NormalizationError as error:
        problems.append(FieldProblem("email_address", str(error)))
        return None, None


def _phone(customer: SquareCustomer, region: str, problems: list[FieldProblem]) -> str | None:
    raw = _text(customer.phone_number)
    if raw is None:
        return None
    try:
        return normalize_phone(raw, region)
    except NormalizationError as error:
        problems.append(FieldProblem("phone_number", str(error)))
        return None


def _check_lengths(payload: dict[str, Any], limits: dict[str, int], problems: list[FieldProblem]) -> None:
    for column, limit in limits.items():
        value = payload.get(column)
        if isinstance(value, str) and len(value) > limit:
            problems.append(FieldProblem(column, f"{len(value)} characters, the CRM column holds {limit}"))


def map_customer(customer: SquareCustomer, *, columns: ContactColumns, phone_region: str) -> ContactPlan:
    """The contact payload for this customer, or InvalidDataError listing every bad field."""
    problems: list[FieldProblem] = []
    email, email_key = _email(customer, problems)
    phone = _phone(customer, phone_region, problems)
    preferences = customer.preferences
    payload: dict[str, Any] = {
        "firstname": _text(customer.given_name),
        "lastname": _text(customer.family_name),
        "nickname": _text(customer.nickname),
        "emailaddress1": email,
        "mobilephone": phone,
        "birthdate": _birthdate(customer.birthday, problems),
        "description": _text(customer.note),
        "donotbulkemail": bool(preferences and preferences.email_unsubscribed),
        columns.reference_id: _text(customer.reference_id),
        columns.company_name: _text(customer.company_name),
        **_address_columns(customer),
    }
    _check_lengths(payload, {**MAX_LENGTHS, **columns.custom_max_lengths()}, problems)
    if problems:
        raise InvalidDataError(problems)
    return ContactPlan(payload=payload, email_key=email_key, phone_e164=phone, content_hash=content_hash(payload))


def deactivation_payload() -> dict[str, Any]:
    """A deleted Square customer deactivates the contact (statecode 1 Inactive, statuscode 2)."""
    return {"statecode": 1, "statuscode": 2}
