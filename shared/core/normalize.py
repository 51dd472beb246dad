"""Normalisation of the values matching relies on: email (trim + case-fold) and phone (E.164)."""

from __future__ import annotations

import hashlib

import phonenumbers
from email_validator import EmailNotValidError, validate_email


class NormalizationError(ValueError):
    """A value cannot be normalised; the message says why (never echoes the value)."""


def normalize_email(raw: str) -> str:
    """Trimmed, syntax-checked (no DNS), case-folded address used as the matching key."""
    text = raw.strip()
    try:
        validated = validate_email(text, check_deliverability=False)
    except EmailNotValidError as error:
        raise NormalizationError(f"not a valid email address ({_reason(error)})") from error
    return validated.normalized.casefold()


def display_email(raw: str) -> str:
    """The address as written to the CRM: trimmed, domain lower-cased, local part kept."""
    text = raw.strip()
    local, _, domain = text.rpartition("@")
    return f"{local}@{domain.lower()}" if local else text


def normalize_phone(raw: str, default_region: str) -> str:
    """E.164 form (+15551234567) via libphonenumber; national numbers use the default region."""
    try:
        parsed = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as error:
        raise NormalizationError("not a parseable phone number") from error
    if not phonenumbers.is_possible_number(parsed):
        raise NormalizationError("not a possible phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def fingerprint(value: str) -> str:
    """A short one-way tag for logs: lets people correlate a value without seeing it."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:12]


def _reason(error: EmailNotValidError) -> str:
    # The library's messages quote the address in some cases; keep only the generic part.
    text = str(error)
    return text.split(":", maxsplit=1)[0] if ":" in text else text.split(".", maxsplit=1)[0]
