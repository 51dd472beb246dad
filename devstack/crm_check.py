"""Compare the (emulated) CRM with Square's latest state: what the demo reports and the tests assert."""

from __future__ import annotations

from typing import Any

from shared.core.models import SquareCustomer
from shared.flows.customer_mapping import ContactColumns, map_customer

COLUMNS = ContactColumns("tb")
KEY = COLUMNS.square_id


def keyed_contacts(contacts: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    keyed: dict[str, list[dict[str, Any]]] = {}
    for contact in contacts:
        if contact.get(KEY):
            keyed.setdefault(contact[KEY], []).append(contact)
    return keyed


def difference(customer_id: str, square_state: dict[str, Any], keyed: dict[str, list[dict[str, Any]]]) -> str | None:
    """None when the CRM holds exactly what Square says for this customer, else what is wrong.

    Live customer: one active contact with exactly the mapped fields. Deleted: no active contact.
    Merged away: nothing keyed by the old id.
    """
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
    customer = SquareCustomer.model_validate(live[customer_id])
    expected = map_customer(customer, columns=COLUMNS, phone_region="US").payload
    differing = sorted(k for k, v in expected.items() if row.get(k) != v)
    return f"fields differ: {', '.join(differing)}" if differing else None


def differences(customer_ids: set[str], square_state: dict[str, Any], contacts: list[dict[str, Any]]) -> dict[str, str]:
    keyed = keyed_contacts(contacts)
    found = {cid: difference(cid, square_state, keyed) for cid in customer_ids}
    return {cid: problem for cid, problem in found.items() if problem is not None}
