"""Compare the (emulated) CRM's contacts with Square's latest customers: what the demo reports and the tests
assert.

An oracle independent of the product: the expected contact columns are stated here, from the Square
customer's own fields, with this module's own small table (below) — never with the product's mapping or
matching code, so a mapping bug makes the demo and the tests fail. `phonenumbers` (a third-party library)
gives the E.164 form.

    Square customer field                     → contact column              expected value
    given_name / family_name / nickname       → firstname / lastname / nickname   trimmed; blank → None
    email_address                             → emailaddress1               trimmed, domain lower-cased,
                                                                            local part as written
    phone_number                              → mobilephone                 E.164 (region US for national numbers)
    birthday "YYYY-MM-DD"                     → birthdate                   the date; year 0000 (no year) → None
    note                                      → description                 trimmed
    preferences.email_unsubscribed            → donotbulkemail              true / false (absent → false)
    reference_id / company_name               → <prefix>_squarereferenceid / _squarecompanyname   trimmed
    address.address_line_1 … _3               → address1_line1 … _3         trimmed   (only checked when
    address.locality / administrative_district_level_1 / postal_code / country                Square holds an
                                              → address1_city / _stateorprovince / _postalcode / _country   address)
    live customer   → exactly one contact keyed <prefix>_squarecustomerid = id, active (statecode 0)
    deleted         → no active contact keyed by its id
    merged away     → no contact keyed by its id any more
"""

from __future__ import annotations

from typing import Any

import phonenumbers

PREFIX = "tb"
KEY = f"{PREFIX}_squarecustomerid"
PHONE_REGION = "US"
UNWRITABLE = "(no value the CRM may hold)"  # never equal to a column value

TEXT_COLUMNS = {  # Square field → contact column, value trimmed (blank → None)
    "given_name": "firstname",
    "family_name": "lastname",
    "nickname": "nickname",
    "note": "description",
    "reference_id": f"{PREFIX}_squarereferenceid",
    "company_name": f"{PREFIX}_squarecompanyname",
}
ADDRESS_COLUMNS = {  # Square address field → contact column, value trimmed
    "address_line_1": "address1_line1",
    "address_line_2": "address1_line2",
    "address_line_3": "address1_line3",
    "locality": "address1_city",
    "administrative_district_level_1": "address1_stateorprovince",
    "postal_code": "address1_postalcode",
    "country": "address1_country",
}


def _trimmed(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def expected_email(raw: str | None) -> str | None:
    text = _trimmed(raw)
    if text is None or "@" not in text:
        return text
    local, _, domain = text.rpartition("@")
    return f"{local}@{domain.lower()}"


def expected_phone(raw: str | None) -> str | None:
    """E.164; a number that is no possible phone number has no expected value the CRM could hold (the
    customer must end as a failure record, never as a contact)."""
    text = _trimmed(raw)
    if text is None:
        return None
    try:
        parsed = phonenumbers.parse(text, PHONE_REGION)
    except phonenumbers.NumberParseException:
        return UNWRITABLE
    if not phonenumbers.is_possible_number(parsed):
        return UNWRITABLE
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def expected_birthdate(raw: str | None) -> str | None:
    text = _trimmed(raw)
    return None if text is None or text.startswith("0000") else text[:10]


def expected_contact(customer: dict[str, Any]) -> dict[str, Any]:
    """The contact columns the CRM must hold for this Square customer (the table in the module docstring)."""
    expected: dict[str, Any] = {column: _trimmed(customer.get(field)) for field, column in TEXT_COLUMNS.items()}
    expected["emailaddress1"] = expected_email(customer.get("email_address"))
    expected["mobilephone"] = expected_phone(customer.get("phone_number"))
    expected["birthdate"] = expected_birthdate(customer.get("birthday"))
    expected["donotbulkemail"] = bool((customer.get("preferences") or {}).get("email_unsubscribed", False))
    address = customer.get("address")
    if address:
        expected.update({column: _trimmed(address.get(field)) for field, column in ADDRESS_COLUMNS.items()})
    return expected


def keyed_contacts(contacts: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    keyed: dict[str, list[dict[str, Any]]] = {}
    for contact in contacts:
        if contact.get(KEY):
            keyed.setdefault(contact[KEY], []).append(contact)
    return keyed


def differing_columns(row: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    return sorted(column for column, value in expected.items() if row.get(column) != value)


def difference(customer_id: str, square_state: dict[str, Any], keyed: dict[str, list[dict[str, Any]]]) -> str | None:
    """None when the CRM holds exactly what Square says for this customer, else what is wrong."""
    rows = keyed.get(customer_id, [])
    live = {c["id"]: c for c in square_state["customers"]}
    if customer_id in square_state["merged_into"]:
        return f"{len(rows)} contact(s) still keyed by a merged-away id" if rows else None
    if customer_id not in live:
        return "deleted in Square but active in the CRM" if any(r["statecode"] == 0 for r in rows) else None
    if len(rows) != 1:
        return f"expected one contact, found {len(rows)}"
    (row,) = rows
    if row["statecode"] != 0:
        return "contact is inactive"
    differing = differing_columns(row, expected_contact(live[customer_id]))
    return f"fields differ: {', '.join(differing)}" if differing else None


def differences(customer_ids: set[str], square_state: dict[str, Any], contacts: list[dict[str, Any]]) -> dict[str, str]:
    keyed = keyed_contacts(contacts)
    found = {cid: difference(cid, square_state, keyed) for cid in customer_ids}
    return {cid: problem for cid, problem in found.items() if problem is not None}
