"""customers → contacts through the local host, with Azurite and both emulators (real HTTP, real queues)."""

from __future__ import annotations

import pytest

from tests.stackkit import StackKit, wait_until

pytestmark = pytest.mark.integration


def _people(prefix: str, count: int) -> list[dict[str, str]]:
    return [
        {
            "given_name": f"{prefix}{i}",
            "family_name": "Tester",
            "email_address": f"{prefix.lower()}{i}@example.com",
            "phone_number": f"+1 212 555 {1000 + i:04d}",
        }
        for i in range(count)
    ]


def test_create_update_delete_merge_converge(kit: StackKit) -> None:
    created = kit.create_many(_people("Flow", 12))
    ids = {c["id"] for c in created}
    for customer in created[:6]:
        kit.update(customer["id"], given_name=customer["given_name"] + "-edited", note="edited once")
    kit.update(created[0]["id"], given_name="Edited Twice")
    kit.delete(created[6]["id"])
    survivor = kit.merge(created[7]["id"], created[8]["id"])
    ids.add(survivor["id"])
    kit.converge(ids)
    contacts = [c for c in kit.contacts() if c.get("tb_squarecustomerid") in ids]
    assert len([c for c in contacts if c["statecode"] == 0]) == 12 - 1 - 2 + 1
    assert kit.open_failures_for(ids) == []


def test_duplicated_delayed_and_reordered_webhooks_converge(kit: StackKit) -> None:
    kit.delivery(paused=True, duplicate_rate=0.5, reorder_window=25, delay_ms_max=200, seed=11)
    created = kit.create_many(_people("Chaos", 8))
    ids = {c["id"] for c in created}
    for round_number in range(3):
        for customer in created:
            kit.update(customer["id"], nickname=f"round {round_number}")
    kit.delete(created[0]["id"])
    survivor = kit.merge(created[1]["id"], created[2]["id"])
    ids.add(survivor["id"])
    kit.delivery(paused=False)
    stats = kit.flush()
    assert stats["duplicates_sent"] > 0
    kit.converge(ids)
    assert kit.open_failures_for(ids) == []


def test_existing_crm_contact_is_linked_not_duplicated(kit: StackKit) -> None:
    seeded = kit.dataverse.post(
        "/_control/tables/contacts", json=[{"emailaddress1": "Linked.Person@Example.com", "lastname": "FromCRM"}]
    ).json()
    customer = kit.create(given_name="Linked", family_name="Person", email_address=" linked.person@example.COM ")
    kit.converge({customer["id"]})
    rows = [c for c in kit.contacts() if c["contactid"] == seeded[0]["contactid"]]
    assert rows[0]["tb_squarecustomerid"] == customer["id"]
    assert (
        len([c for c in kit.contacts() if (c.get("emailaddress1") or "").lower() == "linked.person@example.com"]) == 1
    )


def test_a_crm_contact_with_the_phone_typed_as_people_type_it_is_linked(kit: StackKit) -> None:
    """Real CRM data holds "(206) 555-0100"-style numbers; Square sends E.164 or anything else."""
    seeded = kit.dataverse.post(
        "/_control/tables/contacts", json=[{"mobilephone": "(206) 555-0147", "lastname": "Typed"}]
    ).json()
    customer = kit.create(given_name="Phone", family_name="Only", phone_number="+1 206-555-0147")
    kit.converge({customer["id"]})
    rows = [c for c in kit.contacts() if c["contactid"] == seeded[0]["contactid"]]
    assert rows[0]["tb_squarecustomerid"] == customer["id"]
    assert [c for c in kit.contacts() if c.get("tb_squarecustomerid") == customer["id"]] == rows


def test_ambiguous_match_becomes_a_needs_review_failure(kit: StackKit) -> None:
    seeded = kit.dataverse.post(
        "/_control/tables/contacts",
        json=[
            {"emailaddress1": "twin@example.com", "lastname": "One"},
            {"emailaddress1": "TWIN@example.com", "lastname": "Two"},
        ],
    ).json()
    customer = kit.create(given_name="Twin", email_address="twin@example.com")
    kit.flush()
    failure = wait_until(lambda: _only(kit.open_failures_for({customer["id"]})))
    assert failure.reason_code == "needs_review"
    assert set(failure.candidates) == {row["contactid"] for row in seeded}
    assert not [c for c in kit.contacts() if c.get("tb_squarecustomerid") == customer["id"]]


def _only(items: list[object]) -> object:
    assert len(items) == 1, items
    return items[0]


def test_invalid_data_is_recorded_with_field_and_others_keep_flowing(kit: StackKit) -> None:
    bad = kit.create(given_name="Bad", email_address="bad@@example..com")
    long_name = kit.create(given_name="L" * 60, family_name="Long")
    good = kit.create_many(_people("Fine", 3))
    kit.converge({c["id"] for c in good})
    bad_failure = wait_until(lambda: _only(kit.open_failures_for({bad["id"]})))
    long_failure = wait_until(lambda: _only(kit.open_failures_for({long_name["id"]})))
    assert (bad_failure.reason_code, bad_failure.field) == ("invalid_data", "email_address")
    assert long_failure.field == "firstname" and "60 characters" in long_failure.message
    # the customer is fixed in Square: the next event syncs it and resolves the failure
    kit.update(bad["id"], email_address="fixed@example.com")
    kit.converge({bad["id"]})
    wait_until(lambda: _assert_resolved(kit, bad["id"]))


def _assert_resolved(kit: StackKit, customer_id: str) -> None:
    (failure,) = [f for f in kit.failures() if f.record_id == customer_id]
    assert failure.status == "resolved"


def test_throttling_and_server_error_storm_converge_without_failures(kit: StackKit) -> None:
    # a backlog is written in bulk (few requests), so the window is tight enough that it still throttles
    kit.dataverse.post(
        "/_control/limits", json={"requests_per_window": 4, "window_seconds": 2, "retry_after_seconds": 1}
    )
    kit.dataverse.post(
        "/_control/faults", json=[{"status": 503, "count": 12}, {"status": 500, "count": 6, "method": "PATCH"}]
    )
    created = kit.create_many(_people("Storm", 10))
    ids = {c["id"] for c in created}
    for customer in created[:5]:
        kit.update(customer["id"], note="during the storm")
    kit.converge(ids, timeout=120)
    stats = kit.dataverse.get("/_control/stats").json()
    assert stats.get("status 429", 0) > 0 and stats.get("status 503", 0) > 0
    assert kit.open_failures_for(ids) == []
