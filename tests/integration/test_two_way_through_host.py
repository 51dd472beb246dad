"""Two-way contact sync through the local host, Azurite and both emulators: a CRM user's phone fix reaches
Square and its webhook changes nothing in the CRM; a Square edit to a Square-owned field still reaches the
CRM; a storm of edits on both sides settles on what the owners say and then stays still (no loop); a value
Square refuses is a failure on the CRM column, retried from the admin API once fixed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.stack import PROJECT_DIR, Stack, StackOptions
from tests.stackkit import OpsClient, StackKit, wait_until

pytestmark = pytest.mark.integration
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
API = "/api/data/v9.2/"


def two_way_config(directory: Path) -> Path:
    """The shipped configuration file with the phone given to the CRM and the email to both sides."""
    text = (PROJECT_DIR / "config" / "tillbridge.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "\n    mobilephone: {from: phone_number, transforms: [trim, e164]}\n",
        "\n    mobilephone: {from: phone_number, transforms: [trim, e164], owner: crm}\n",
    ).replace(
        "\n    emailaddress1: {from: email_address, transforms: [trim, email]}\n",
        "\n    emailaddress1: {from: email_address, transforms: [trim, email], owner: both}\n",
    )
    assert text.count("\n    mobilephone: {from: phone_number, transforms: [trim, e164], owner: crm}\n") == 1
    assert text.count("owner: both}") == 1
    path = directory / "two-way.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    config = two_way_config(tmp_path_factory.mktemp("two-way"))
    options = StackOptions(
        log_dir=ARTIFACTS / "stack-logs" / "two-way",
        extra_env={"TILLBRIDGE_CONFIG": str(config), "CRM_CHANGES_SCHEDULE": "*/2 * * * * *"},
    )
    with Stack(options) as running:
        yield running


@pytest.fixture
def kit(stack: Stack) -> Iterator[StackKit]:
    helper = StackKit(stack)
    yield helper
    helper.close()


class CrmUser:
    """A person in the CRM: their own bearer token, so their edits carry their user (not Tillbridge's)."""

    def __init__(self, stack: Stack) -> None:
        self.dataverse = stack.client("dataverse")
        person = self.dataverse.post("/_control/users", json={"fullname": "Sam (support)"}).json()
        self.user_id = person["systemuserid"]
        self.headers = {
            "Authorization": f"Bearer {person['token']}",
            "OData-Version": "4.0",
            "OData-MaxVersion": "4.0",
            "If-Match": "*",
        }

    def edit(self, contact_id: str, **values: Any) -> None:
        response = self.dataverse.patch(f"{API}contacts({contact_id})", json=values, headers=self.headers)
        assert response.status_code == 204, response.text

    def close(self) -> None:
        self.dataverse.close()


def contact_for(kit: StackKit, customer_id: str) -> dict[str, Any]:
    rows = [c for c in kit.contacts() if c.get("tb_squarecustomerid") == customer_id]
    assert len(rows) == 1, rows
    return rows[0]


def square_customers(kit: StackKit) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in kit.square_state()["customers"]}


def square_customer(kit: StackKit, customer_id: str) -> dict[str, Any]:
    return square_customers(kit)[customer_id]


def square_updates(kit: StackKit) -> int:
    return int(kit.square.get("/_control/stats").json().get("PUT /v2/customers/{customer_id}", 0))


def settled(kit: StackKit, seconds: float = 8.0) -> tuple[dict[str, int], dict[str, int]]:
    """Square versions and CRM row versions, unchanged over several polls (nothing is still moving)."""

    def snapshot() -> tuple[dict[str, int], dict[str, int]]:
        kit.flush()
        customers = {k: int(v["version"]) for k, v in square_customers(kit).items()}
        rows = {c["contactid"]: int(c["versionnumber"]) for c in kit.contacts()}
        return customers, rows

    before = snapshot()
    time.sleep(seconds)
    after = snapshot()
    assert after == before, "still changing after the edits stopped: a loop"
    return after


def test_a_crm_phone_fix_reaches_square_and_the_webhook_back_changes_nothing(kit: StackKit, stack: Stack) -> None:
    person = CrmUser(stack)
    customer = kit.create(
        given_name="Ada", family_name="Lovelace", email_address="ada@example.com", phone_number="+1 212-555-0100"
    )
    wait_until(lambda: contact_for(kit, customer["id"]), timeout=60)
    settled(kit)
    contact = contact_for(kit, customer["id"])
    updates_before = square_updates(kit)

    person.edit(contact["contactid"], mobilephone="(212) 555-0199")
    wait_until(lambda: _assert_equal(square_customer(kit, customer["id"])["phone_number"], "+12125550199"), timeout=60)
    kit.flush()  # Square's customer.updated for Tillbridge's own update is delivered and processed
    settled(kit)
    after = contact_for(kit, customer["id"])
    assert after["_modifiedby_value"] == person.user_id  # the webhook back wrote nothing to the CRM
    assert after["mobilephone"] == "(212) 555-0199"
    assert square_updates(kit) - updates_before == 1  # one Square request for one CRM edit

    kit.update(customer["id"], note="Prefers oolong")  # a Square-owned field still flows to the CRM
    wait_until(lambda: _assert_equal(contact_for(kit, customer["id"]).get("description"), "Prefers oolong"), timeout=60)
    ops = OpsClient(stack)
    flows = {f["flow"]: f for f in ops.get("health")["flows"]}
    tracking = flows["crm-contacts"]["change_tracking"]
    assert tracking["delta_link_age_seconds"] is not None and tracking["delta_link_age_seconds"] < 30
    assert {"crm-contacts", "customers"} <= {f["flow"] for f in ops.get("flows")["flows"]}
    timeline = ops.get(f"records/crm-contacts/{contact['contactid']}")
    assert any(step["stage"] == "written" for a in timeline["attempts"] for step in a["steps"])
    ops.close()
    person.close()


def test_a_storm_of_edits_on_both_sides_settles_on_the_owners_values(kit: StackKit, stack: Stack) -> None:
    person = CrmUser(stack)
    created = kit.create_many(
        [
            {
                "given_name": f"Storm{i}",
                "email_address": f"storm{i}@example.com",
                "phone_number": f"+1 212 555 03{i:02d}",
            }
            for i in range(3)
        ]
    )
    ids = [c["id"] for c in created]
    wait_until(lambda: [contact_for(kit, i) for i in ids], timeout=60)
    contacts = {i: contact_for(kit, i)["contactid"] for i in ids}
    for round_number in range(6):
        for index, customer_id in enumerate(ids):
            person.edit(contacts[customer_id], mobilephone=f"+1 646 555 {round_number:02d}{index:02d}")
            kit.update(customer_id, note=f"square note {round_number}")
            kit.update(customer_id, phone_number=f"+1 917 555 {round_number:02d}{index:02d}")  # not Square's
            person.edit(contacts[customer_id], firstname=f"CRM name {round_number}")  # not the CRM's
            if round_number % 2:
                kit.update(customer_id, email_address=f"sq{round_number}.{index}@example.com")
            else:
                person.edit(contacts[customer_id], emailaddress1=f"crm{round_number}.{index}@example.com")
        time.sleep(0.5)
    for index, customer_id in enumerate(ids):  # each side's last word on what it owns: Square's first, ...
        kit.update(customer_id, note=f"final {index}", given_name=f"Final {index}")
    # ... then the CRM's, a clear second later: `both` compares each record's latest change on each side
    # (Square `updated_at`, CRM `modifiedon`, whole seconds; the same second is a tie and goes to Square)
    time.sleep(1.2)
    for index, customer_id in enumerate(ids):
        person.edit(contacts[customer_id], mobilephone=f"(212) 555-04{index:02d}")
        person.edit(contacts[customer_id], emailaddress1=f"final{index}@example.com")

    def converged() -> None:
        kit.flush()
        for index, customer_id in enumerate(ids):
            square, contact = square_customer(kit, customer_id), contact_for(kit, customer_id)
            assert square["phone_number"] == f"+121255504{index:02d}"
            assert contact["mobilephone"] == f"(212) 555-04{index:02d}"
            assert contact["description"] == f"final {index}" and contact["firstname"] == f"Final {index}"
            assert square["email_address"] == contact["emailaddress1"] == f"final{index}@example.com"

    try:
        wait_until(converged, timeout=120, interval=1.0)
    except AssertionError:
        _dump_timelines(stack, ids, contacts)
        raise
    settled(kit)
    open_failures = [f for f in kit.failures(None) if f.status == "open" and f.record_id in {*ids, *contacts.values()}]
    assert open_failures == []
    person.close()


def test_a_value_square_refuses_is_a_failure_on_the_crm_column_retried_once_fixed(kit: StackKit, stack: Stack) -> None:
    person = CrmUser(stack)
    customer = kit.create(given_name="Bad", family_name="Email", email_address="bad.email@example.com")
    wait_until(lambda: contact_for(kit, customer["id"]), timeout=60)
    contact_id = contact_for(kit, customer["id"])["contactid"]
    person.edit(contact_id, emailaddress1="not an email")
    ops = OpsClient(stack)

    def failed() -> dict[str, Any]:
        failure = ops.get(f"failures/crm-contacts/{contact_id}")
        assert failure["status"] == "open"
        return dict(failure)

    failure = wait_until(failed, timeout=60)
    assert failure["field"] == "emailaddress1" and "INVALID_EMAIL_ADDRESS" in failure["message"]
    person.edit(contact_id, emailaddress1="fixed.email@example.com")
    ops.post(f"failures/crm-contacts/{contact_id}/retry")
    wait_until(
        lambda: _assert_equal(square_customer(kit, customer["id"])["email_address"], "fixed.email@example.com"),
        timeout=60,
    )
    wait_until(lambda: _assert_equal(ops.get(f"failures/crm-contacts/{contact_id}")["status"], "resolved"), timeout=30)
    ops.close()
    person.close()


def _dump_timelines(stack: Stack, ids: list[str], contacts: dict[str, str]) -> None:
    """What each flow did for the storm's records, for the one who investigates a failure."""
    ops = OpsClient(stack)
    lines = []
    for customer_id in ids:
        for flow, record_id in (("customers", customer_id), ("crm-contacts", contacts[customer_id])):
            record = ops.get(f"records/{flow}/{record_id}")
            lines.append(f"== {flow}/{record_id} ledger={record['ledger']}")
            for attempt in record["attempts"]:
                steps = [(s["stage"], s.get("detail", {})) for s in attempt["steps"] if s["stage"] != "exchange"]
                lines.append(f"{attempt['started_at']} {attempt['event_type']} {attempt['outcome']} {steps}")
    path = ARTIFACTS / "stack-logs" / "two-way" / "storm-timelines.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    ops.close()


def _assert_equal(actual: object, expected: object) -> None:
    assert actual == expected, f"{actual!r} != {expected!r}"


__all__ = ["httpx"]
