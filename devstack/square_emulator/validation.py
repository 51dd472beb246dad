"""What Square refuses on CreateCustomer / UpdateCustomer (SPEC `CreateCustomerRequest`,
`UpdateCustomerRequest`; endpoint errors INVALID_EMAIL_ADDRESS, INVALID_PHONE_NUMBER, INVALID_TIME,
VALUE_TOO_LONG from the paths' `x-endpoint-errors`).

- Lengths: given_name/family_name 300, company_name 500, nickname 100, email_address 254, reference_id 100.
- Phone: "must be valid and can contain 9–16 digits, with an optional `+` prefix and country code"; Square
  stores it as entered (`+1 (206) 222-3456`), so the usual punctuation is accepted and anything else refused.
- Birthday: `YYYY-MM-DD` or `MM-DD`, returned as `YYYY-MM-DD` with `0000` for no year.
- Create needs one of given_name, family_name, company_name, email_address, phone_number (SPEC CreateCustomer).
- Update: a field set to `null` is removed (SPEC UpdateCustomer); newer Square docs also accept an empty string
  for string fields, so `""` removes too.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from devstack.square_emulator.responses import SquareFault

MAX_LENGTHS = {
    "given_name": 300,
    "family_name": 300,
    "company_name": 500,
    "nickname": 100,
    "email_address": 254,
    "reference_id": 100,
}
STRING_FIELDS = (
    "given_name",
    "family_name",
    "company_name",
    "nickname",
    "email_address",
    "phone_number",
    "reference_id",
    "note",
    "birthday",
)
PUBLIC_FIELDS = ("given_name", "family_name", "company_name", "email_address", "phone_number")
ADDRESS_FIELDS = (
    "address_line_1",
    "address_line_2",
    "address_line_3",
    "locality",
    "sublocality",
    "sublocality_2",
    "sublocality_3",
    "administrative_district_level_1",
    "administrative_district_level_2",
    "administrative_district_level_3",
    "postal_code",
    "country",
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
_PHONE_CHARACTERS = re.compile(r"^\+?[0-9 ().\-]+$")
_BIRTHDAY = re.compile(r"^(?:(\d{4})-)?(\d{2})-(\d{2})$")


def _email(value: str) -> str:
    if not _EMAIL.match(value) or len(value.split("@", maxsplit=1)[0]) > 64:
        raise SquareFault(400, "INVALID_EMAIL_ADDRESS", "Invalid email address.", "email_address")
    return value


def _phone(value: str) -> str:
    digits = sum(ch.isdigit() for ch in value)
    if not _PHONE_CHARACTERS.match(value.strip()) or not 9 <= digits <= 16:
        raise SquareFault(400, "INVALID_PHONE_NUMBER", "Invalid phone number.", "phone_number")
    return value


def _birthday(value: str) -> str:
    match = _BIRTHDAY.match(value)
    if match is None:
        raise SquareFault(400, "INVALID_TIME", "Birthday must be YYYY-MM-DD or MM-DD.", "birthday")
    year, month, day = match.group(1) or "0000", match.group(2), match.group(3)
    try:
        date(int(year) or 2000, int(month), int(day))  # year 0000 = no year; 2000 allows 02-29
    except ValueError as error:
        raise SquareFault(400, "INVALID_TIME", "Birthday is not a calendar date.", "birthday") from error
    return f"{year}-{month}-{day}"


def _string(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise SquareFault(400, "EXPECTED_STRING", f"Expected a string for `{name}`.", name)
    limit = MAX_LENGTHS.get(name)
    if limit is not None and len(value) > limit:
        raise SquareFault(400, "VALUE_TOO_LONG", f"`{name}` must be at most {limit} characters.", name)
    if name == "email_address":
        return _email(value)
    if name == "phone_number":
        return _phone(value)
    if name == "birthday":
        return _birthday(value)
    return value


def _address(value: Any) -> dict[str, Any] | None:
    """The address fields given (a value of None removes that line); first_name/last_name are ignored."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise SquareFault(400, "EXPECTED_OBJECT", "Expected an object for `address`.", "address")
    lines: dict[str, Any] = {}
    for name in ADDRESS_FIELDS:
        if name in value:
            line = value[name]
            if line is not None and not isinstance(line, str):
                raise SquareFault(400, "EXPECTED_STRING", f"Expected a string for `address.{name}`.", f"address.{name}")
            lines[name] = line if line != "" else None
    country = lines.get("country")
    if country is not None and not re.match(r"^[A-Z]{2}$", country):
        raise SquareFault(
            400, "INVALID_ENUM_VALUE", "address.country must be an ISO 3166 alpha-2 code.", "address.country"
        )
    return lines


def customer_changes(body: dict[str, Any]) -> dict[str, Any]:
    """The validated writable fields of a Create/UpdateCustomer body; None marks a removal."""
    changes: dict[str, Any] = {}
    for name in STRING_FIELDS:
        if name in body:
            value = body[name]
            changes[name] = None if value is None or value == "" else _string(name, value)
    if "address" in body:
        changes["address"] = _address(body["address"])
    if "tax_ids" in body:
        if body["tax_ids"] is not None and not isinstance(body["tax_ids"], dict):
            raise SquareFault(400, "EXPECTED_OBJECT", "Expected an object for `tax_ids`.", "tax_ids")
        changes["tax_ids"] = body["tax_ids"]
    return changes


def require_public_field(changes: dict[str, Any]) -> None:
    """CreateCustomer: "You must provide at least one of" the five public fields."""
    if not any(changes.get(name) for name in PUBLIC_FIELDS):
        raise SquareFault(
            400,
            "MISSING_REQUIRED_PARAMETER",
            "At least one of given_name, family_name, company_name, email_address or phone_number is required.",
        )


def merged_address(current: dict[str, Any] | None, lines: dict[str, Any] | None) -> dict[str, Any] | None:
    """UpdateCustomer's sparse address: "Only new or changed fields are required in the request"."""
    if lines is None:
        return None
    merged = {**(current or {}), **lines}
    kept = {k: v for k, v in merged.items() if v is not None}
    return kept or None
