"""The follow-up part of the store day: a few sales and a refund chosen so that the rules and segments in
devstack/followup.yaml have a known result, written out below from the Square data alone (never with the
rule engine): who gets a lead, an opportunity, a task, and which list each contact is in."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from devstack.sales_scenario import OWNERS, WEST_TEAM
from devstack.sales_scenario import STACK_ENV as SALES_ENV

CONFIG_FILE = Path(__file__).with_name("followup.yaml")
WEST, EAST = "FOLLOWWEST01", "FOLLOWEAST02"  # EAST has no owner entry: the default owner
DEFAULT_USER = "00000000-0000-0000-0000-0000000000a1"


def _owners() -> str:
    """The store day's owner map (LOCATION_OWNERS) with the follow-up West store owned by the West team."""
    owners = json.loads(OWNERS)
    owners["locations"][WEST] = {"owner": f"teams/{WEST_TEAM}", "territory": "Bay Area"}
    return json.dumps(owners)


STACK_ENV = {
    **SALES_ENV,
    "LOCATION_OWNERS": _owners(),
    "TILLBRIDGE_CONFIG": str(CONFIG_FILE),
    "SEGMENTS_SCHEDULE": "*/2 * * * * *",
}
MENU = [("Earl Grey", "Leaf", 350), ("Danish", "Pastry", 425), ("Teapot", "Homeware", 1800)]


@dataclass
class FollowupExpectation:
    """What the CRM must hold, from the sales below: (owner, what the row is about)."""

    leads: list[tuple[Any, ...]] = field(default_factory=list)  # (email, subject, owner)
    opportunities: list[tuple[Any, ...]] = field(default_factory=list)  # (contact, value, owner)
    tasks: list[tuple[Any, ...]] = field(default_factory=list)  # (contact, subject)
    lists: dict[str, set[str]] = field(default_factory=dict)  # list name → contact ids


@dataclass
class FollowupResult:
    expected: FollowupExpectation
    found: FollowupExpectation
    differences: list[str]
    seconds: float


def _customer(square: httpx.Client, given: str, email: str) -> str:
    created = square.post("/_control/customers", json=[{"given_name": given, "email_address": email}]).json()
    return str(created[0]["id"])


def _contact_of(dataverse: httpx.Client, square_id: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = dataverse.get("/_control/tables/contacts").json()
        found = [r["contactid"] for r in rows if r.get("tb_squarecustomerid") == square_id]
        if found:
            return str(found[0])
        time.sleep(0.3)
    raise TimeoutError(f"customer {square_id} never reached the CRM")


def drive_followup(square: httpx.Client, dataverse: httpx.Client) -> FollowupExpectation:
    """Ring up the day and state what the rules and segments must make of it."""
    # the team that owns the West store's records exists before the store does (else its row is refused)
    if not any(t["teamid"] == WEST_TEAM for t in dataverse.get("/_control/tables/teams").json()):
        dataverse.post("/_control/tables/teams", json=[{"teamid": WEST_TEAM, "name": "West"}]).raise_for_status()
    for store_id, name in ((WEST, "Follow West"), (EAST, "Follow East")):
        square.post("/_control/locations", json={"id": store_id, "name": name, "currency": "USD"}).raise_for_status()
    items = square.post(
        "/_control/catalog",
        json={
            "items": [{"name": n, "category": c, "variations": [{"name": "Regular", "price": p}]} for n, c, p in MENU]
        },
    ).json()["objects"]
    tea, danish, pot = (item["item_data"]["variations"][0]["id"] for item in items)
    ada = _customer(square, "Ada", "ada.followup@example.com")
    bo = _customer(square, "Bo", "bo.followup@example.com")
    ada_contact, bo_contact = _contact_of(dataverse, ada), _contact_of(dataverse, bo)

    def sale(store: str, lines: list[tuple[str, int]], **buyer: Any) -> dict[str, Any]:
        body = {"location_id": store, "lines": [{"variation_id": v, "quantity": q} for v, q in lines], **buyer}
        return dict(square.post("/_control/sales", json=body).json()["payment"])

    for _ in range(3):  # Ada: three teas at West → her third visit is a task; she is a regular
        sale(WEST, [(tea, 1)], customer_id=ada)
    bo_pots = sale(EAST, [(pot, 2)], customer_id=bo)  # Bo: 36.00 at East → opportunity, default owner
    sale(EAST, [(danish, 1)], customer_id=bo)  # Bo buys pastry → pastry fan (his home store is East)
    sale(WEST, [(pot, 1)], buyer_email_address="g1.followup@example.com")  # guest's first, 18.00 → one lead
    sale(WEST, [(pot, 1)], buyer_email_address="g1.followup@example.com")  # same guest again: no second lead
    sale(WEST, [(tea, 1)], buyer_email_address="g2.followup@example.com")  # guest 3.50: below 10, no lead
    square.post("/_control/refunds", json={"payment_id": bo_pots["id"], "amount": 1000, "reason": "chipped"})
    return FollowupExpectation(
        leads=[("g1.followup@example.com", "Guest spent 18.00 USD", WEST_TEAM)],
        opportunities=[(bo_contact, 36.0, DEFAULT_USER)],
        tasks=sorted([(ada_contact, "Thank a regular (visit 3)"), (bo_contact, "Call about the refund of 10.00 USD")]),
        lists={"Regulars: three visits in 30 days": {ada_contact}, "Pastry fans": {bo_contact}},
    )


def _owner(row: dict[str, Any]) -> str:
    return str(row.get("_ownerid_value"))


def crm_followup(dataverse: httpx.Client) -> FollowupExpectation:
    def table(name: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = dataverse.get(f"/_control/tables/{name}").json()
        return rows

    lists = {row["listid"]: row["listname"] for row in table("lists")}
    members: dict[str, set[str]] = {name: set() for name in lists.values()}
    for member in table("listmembers"):
        members[lists[member["_listid_value"]]].add(member["_entityid_value"])
    return FollowupExpectation(
        leads=[(r.get("emailaddress1"), r.get("subject"), _owner(r)) for r in table("leads")],
        opportunities=[
            (r.get("_customerid_value"), r.get("estimatedvalue"), _owner(r)) for r in table("opportunities")
        ],
        tasks=sorted((r.get("_regardingobjectid_value"), r.get("subject")) for r in table("tasks")),
        lists=members,
    )


def wait_for_followup(dataverse: httpx.Client, expected: FollowupExpectation, timeout: float) -> FollowupResult:
    started = time.monotonic()
    while True:
        found = crm_followup(dataverse)
        differences = [
            f"{name}: expected {getattr(expected, name)}, CRM has {getattr(found, name)}"
            for name in ("leads", "opportunities", "tasks", "lists")
            if getattr(expected, name) != getattr(found, name)
        ]
        if not differences or time.monotonic() - started > timeout:
            return FollowupResult(expected, found, differences, time.monotonic() - started)
        time.sleep(0.5)


def followup_summary(result: FollowupResult) -> str:
    found = result.found
    sizes = ", ".join(f"{name} {len(ids)}" for name, ids in sorted(found.lists.items()))
    status = (
        "OK — exactly the expected follow-up"
        if not result.differences
        else "DIFFERENT: " + "; ".join(result.differences)
    )
    return "\n".join(
        [
            f"  Follow-up: {_count(len(found.leads), 'lead')}, {_count(len(found.opportunities), 'opportunity')}, "
            f"{_count(len(found.tasks), 'task')}; lists: {sizes}",
            f"  Result:    {status}",
        ]
    )


def _count(number: int, noun: str) -> str:
    plural = noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
    return f"{number} {noun if number == 1 else plural}"
