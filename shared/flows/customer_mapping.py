"""Square customer → Dataverse contact: the configuration file's contact mapping applied, the matching keys
and the content hash (pure; no I/O)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from shared.config.file import default_config
from shared.config.mappings import Mapping
from shared.core.errors import FieldProblem, InvalidDataError
from shared.core.models import SquareCustomer
from shared.core.normalize import NormalizationError, normalize_email, normalize_phone
from shared.flows.mapping_engine import apply_mapping

CONTACT_ENTITY = "contact"
CONTACTS = "contacts"


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


def _email_key(customer: SquareCustomer) -> str | None:
    """The matching key (case-folded), whatever column the address is mapped to."""
    raw = (customer.email_address or "").strip()
    try:
        return normalize_email(raw) if raw else None
    except NormalizationError:
        return None  # the mapping reports the bad address


def _phone_key(customer: SquareCustomer, region: str) -> str | None:
    raw = (customer.phone_number or "").strip()
    try:
        return normalize_phone(raw, region) if raw else None
    except NormalizationError:
        return None


def map_customer(
    customer: SquareCustomer, *, columns: ContactColumns, phone_region: str, mapping: Mapping | None = None
) -> ContactPlan:
    """The contact payload for this customer (the configuration file's contact mapping; default: the
    shipped file), or InvalidDataError listing every bad field."""
    mapping = mapping or default_config(columns.prefix).contact_mapping
    problems: list[FieldProblem] = []
    payload = apply_mapping(mapping, customer.model_dump(), region=phone_region, problems=problems)
    if problems:
        raise InvalidDataError(problems)
    return ContactPlan(
        payload=payload,
        email_key=_email_key(customer),
        phone_e164=_phone_key(customer, phone_region),
        content_hash=content_hash(payload),
    )


def deactivation_payload() -> dict[str, Any]:
    """A deleted Square customer deactivates the contact (statecode 1 Inactive, statuscode 2)."""
    return {"statecode": 1, "statuscode": 2}
