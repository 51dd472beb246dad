"""Two-way contact sync end to end at unit level: both flows, the poller and the webhooks between them over
in-memory Square and Dataverse (tests/two_way_kit.py). Expected values are written out here from the edits
each test makes, never computed with the product's mapping or ownership code."""

from __future__ import annotations

import asyncio
from typing import Any

from shared.core.keyed_lock import KeyedLocks
from tests.two_way_kit import APP_USER, PERSON, TwoWay

PHONE_CRM = {"mobilephone": "crm"}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def linked(kit: TwoWay, customer_id: str = "C1", **fields: Any) -> str:
    """A Square customer synced into the CRM; the contact id."""
    base = {"given_name": "Ada", "family_name": "Lovelace", "email_address": "ada@example.com"}
    kit.square.add(customer_id, **{**base, "phone_number": "+1 212-555-0100", **fields})
    run(kit.pump())
    return str(kit.contact_of(customer_id)["contactid"])


def test_a_crm_phone_fix_reaches_square_once_and_its_webhook_changes_nothing() -> None:
    kit = TwoWay(PHONE_CRM)
    contact_id = linked(kit)
    crm_writes_before = kit.dataverse.writes_by.get(APP_USER, 0)

    kit.dataverse.person_edits(contact_id, mobilephone="(212) 555-0199")
    run(kit.pump())

    assert kit.square.customers["C1"]["phone_number"] == "+12125550199"
    assert kit.square.update_calls == 1  # one UpdateCustomer for one CRM edit
    assert kit.dataverse.writes_by.get(APP_USER, 0) == crm_writes_before  # the webhook it caused wrote nothing
    assert kit.contact_of("C1")["mobilephone"] == "(212) 555-0199"  # the CRM keeps what the person typed
    assert kit.state.failures == {}


def test_a_square_edit_to_a_square_owned_field_still_reaches_the_crm() -> None:
    kit = TwoWay(PHONE_CRM)
    linked(kit)
    kit.square.edit("C1", note="Prefers oolong")
    run(kit.pump())
    assert kit.contact_of("C1")["description"] == "Prefers oolong"
    assert kit.square.update_calls == 0


def test_a_square_edit_to_a_crm_owned_field_is_not_written_and_the_crm_value_goes_back() -> None:
    kit = TwoWay(PHONE_CRM)
    contact_id = linked(kit)
    kit.dataverse.person_edits(contact_id, mobilephone="+1 212 555 0142")
    run(kit.pump())
    kit.square.edit("C1", phone_number="+1 415 555 0000", given_name="Ada B.")
    run(kit.pump())

    contact = kit.contact_of("C1")
    assert contact["mobilephone"] == "+1 212 555 0142" and contact["firstname"] == "Ada B."
    assert kit.square.customers["C1"]["phone_number"] == "+12125550142"  # the owner's value, restored
    assert kit.square.update_calls == 2


def test_by_default_square_owns_everything_and_nothing_flows_back() -> None:
    kit = TwoWay({})
    contact_id = linked(kit)
    kit.dataverse.calls.clear()
    kit.dataverse.person_edits(contact_id, mobilephone="+1 212 555 0199", firstname="Changed")
    run(kit.pump())
    assert kit.square.update_calls == 0
    assert kit.square.customers["C1"]["phone_number"] == "+1 212-555-0100"
    assert "read_changes" not in kit.dataverse.calls  # no owner given to the CRM: nothing is even read


def test_a_thousand_alternating_edits_make_no_echo_write_and_no_loop() -> None:
    """500 CRM edits of a CRM-owned phone and 500 Square edits of a Square-owned note, alternating over ten
    contacts, each followed by a sync: exactly one Square write per CRM edit, one CRM write per Square edit."""
    kit = TwoWay(PHONE_CRM)
    contacts = {f"C{i}": linked(kit, f"C{i}", email_address=f"c{i}@example.com") for i in range(10)}
    square_writes, crm_writes = kit.square.update_calls, kit.dataverse.writes_by.get(APP_USER, 0)
    expected_phone: dict[str, str] = {}
    expected_note: dict[str, str] = {}
    for edit in range(1000):
        customer_id = f"C{(edit // 2) % 10}"
        if edit % 2 == 0:
            phone = f"+1 212 555 {2000 + edit:04d}"
            kit.dataverse.person_edits(contacts[customer_id], mobilephone=phone)
            expected_phone[customer_id] = f"+1212555{2000 + edit:04d}"
        else:
            kit.square.edit(customer_id, note=f"edit {edit}")
            expected_note[customer_id] = f"edit {edit}"
        run(kit.pump())

    assert kit.square.update_calls - square_writes == 500  # zero echo writes to Square
    assert kit.dataverse.writes_by.get(APP_USER, 0) - crm_writes == 500  # zero echo writes to the CRM
    assert run(kit.pump()) == 0  # quiescent: no loop
    for customer_id in contacts:
        assert kit.square.customers[customer_id]["phone_number"] == expected_phone[customer_id]
        assert kit.contact_of(customer_id)["description"] == expected_note[customer_id]
    assert kit.metrics.totals["crm_changes_suppressed"] >= 500  # Tillbridge's own CRM writes came back, muted
    assert kit.state.failures == {}


def test_the_webhook_of_tillbridges_own_update_is_recognised_even_before_the_write_is_committed() -> None:
    kit = TwoWay(PHONE_CRM)
    contact_id = linked(kit)
    kit.dataverse.person_edits(contact_id, mobilephone="+1 212 555 0177")
    run(kit.poller.poll(kit.clock.now()))
    (change,) = kit.crm_queue.sent
    kit.crm_queue.sent.clear()
    real_update = kit.square.update_customer
    early: list[str] = []

    async def webhook_overtakes_the_commit(customer_id: str, changes: dict[str, Any], **kw: Any) -> Any:
        updated = await real_update(customer_id, changes, **kw)
        kit.deliver_webhooks()  # Square's customer.updated is processed before the flow commits
        (webhook,) = kit.square_queue.sent
        kit.square_queue.sent.clear()
        # processed by another host (in one process the customer waits for the CRM flow's write to finish)
        own_locks, kit.customers_worker.ctx.writers = kit.customers_worker.ctx.writers, KeyedLocks()
        try:
            early.append((await kit.customers_worker.handle(webhook.body.encode())).value)
        finally:
            kit.customers_worker.ctx.writers = own_locks
        return updated

    kit.square.update_customer = webhook_overtakes_the_commit  # type: ignore[method-assign]
    crm_writes = kit.dataverse.writes_by.get(APP_USER, 0)
    run(kit.crm_worker.handle(change.body.encode()))
    kit.square.update_customer = real_update  # type: ignore[method-assign]
    run(kit.pump())
    assert early == ["suppressed"]  # recognised by the version and values it was expected to carry
    assert kit.dataverse.writes_by.get(APP_USER, 0) == crm_writes
    assert kit.square.update_calls == 1
    assert kit.state.failures == {}


def test_both_owned_field_changed_on_both_sides_latest_wins_and_the_timeline_has_both_values() -> None:
    kit = TwoWay({"emailaddress1": "both"})
    contact_id = linked(kit)
    kit.square.edit("C1", email_address="square.side@example.com")  # earlier
    kit.dataverse.person_edits(contact_id, emailaddress1="crm.side@example.com")  # later
    run(kit.pump())

    assert kit.square.customers["C1"]["email_address"] == "crm.side@example.com"
    assert kit.contact_of("C1")["emailaddress1"] == "crm.side@example.com"
    conflicts = kit.traces.steps("conflict")
    assert conflicts and conflicts[0]["winner"] == "crm"
    assert {conflicts[0]["square_value"], conflicts[0]["crm_value"]} == {
        "square.side@example.com",
        "crm.side@example.com",
    }


def test_both_owned_field_the_later_square_change_wins() -> None:
    kit = TwoWay({"emailaddress1": "both"})
    contact_id = linked(kit)
    kit.dataverse.person_edits(contact_id, emailaddress1="crm.side@example.com")  # earlier
    kit.square.edit("C1", email_address="square.side@example.com")  # later
    run(kit.pump())
    assert kit.square.customers["C1"]["email_address"] == "square.side@example.com"
    assert kit.contact_of("C1")["emailaddress1"] == "square.side@example.com"
    assert [c["winner"] for c in kit.traces.steps("conflict")][:1] == ["square"]


def test_conflicts_can_go_to_review_instead() -> None:
    kit = TwoWay({"emailaddress1": "both"}, conflicts="review")
    contact_id = linked(kit)
    kit.square.edit("C1", email_address="square.side@example.com")
    kit.dataverse.person_edits(contact_id, emailaddress1="crm.side@example.com")
    run(kit.pump())
    reasons = {f.reason_code for f in kit.state.failures.values()}
    assert reasons == {"needs_review"}
    assert kit.square.customers["C1"]["email_address"] == "square.side@example.com"  # neither side overwritten
    assert kit.contact_of("C1")["emailaddress1"] == "crm.side@example.com"


def test_crm_if_empty_fills_an_empty_crm_value_only() -> None:
    kit = TwoWay({"description": "crm_if_empty"})
    contact_id = linked(kit)
    kit.square.edit("C1", note="first note")
    run(kit.pump())
    assert kit.contact_of("C1")["description"] == "first note"
    kit.dataverse.person_edits(contact_id, description="written in the CRM")
    kit.square.edit("C1", note="second note")
    run(kit.pump())
    assert kit.contact_of("C1")["description"] == "written in the CRM"
    assert kit.square.customers["C1"]["note"] == "second note"  # never sent back
    assert kit.square.update_calls == 0


def test_a_version_mismatch_re_reads_decides_again_and_retries() -> None:
    kit = TwoWay(PHONE_CRM)
    contact_id = linked(kit)
    kit.square.edit("C1", given_name="Augusta")  # its webhook is not delivered before the CRM change goes out
    pending_webhooks = list(kit.square.events)
    kit.square.events.clear()
    kit.dataverse.person_edits(contact_id, mobilephone="+1 212 555 0188")
    run(kit.poller.poll(kit.clock.now()))
    for message in list(kit.crm_queue.sent):
        kit.crm_queue.sent.remove(message)
        run(kit.crm_worker.handle(message.body.encode()))
    assert kit.square.update_calls == 2  # refused on the stale version, then sent on the fresh one
    assert kit.square.customers["C1"]["phone_number"] == "+12125550188"
    assert kit.square.customers["C1"]["given_name"] == "Augusta"
    kit.square.events[:0] = pending_webhooks
    run(kit.pump())
    assert kit.contact_of("C1")["firstname"] == "Augusta"  # the Square change still reaches the CRM
    assert kit.contact_of("C1")["mobilephone"] == "+1 212 555 0188"


def test_a_value_square_refuses_becomes_a_failure_on_the_crm_column_and_a_retry_resolves_it() -> None:
    from shared.ops.service import OpsService

    kit = TwoWay({"emailaddress1": "crm"})
    contact_id = linked(kit)
    kit.dataverse.person_edits(contact_id, emailaddress1="not an email")
    run(kit.pump())
    failure = kit.state.failures[("crm-contacts", contact_id)]
    assert failure.status == "open" and failure.reason_code == "invalid_data"
    assert failure.field == "emailaddress1" and "INVALID_EMAIL_ADDRESS" in failure.message

    kit.dataverse.person_edits(contact_id, emailaddress1="fixed@example.com")
    ops = OpsService(kit.state, kit.traces, kit.square_queue, kit.clock, flow_queues={"crm-contacts": kit.crm_queue})
    run(ops.retry("crm-contacts", contact_id))
    run(kit.pump())
    assert kit.state.failures[("crm-contacts", contact_id)].status == "resolved"
    assert kit.square.customers["C1"]["email_address"] == "fixed@example.com"


def test_crm_deletes_are_ignored_by_default_and_can_delete_in_square() -> None:
    ignore = TwoWay(PHONE_CRM)
    contact_id = linked(ignore)
    ignore.dataverse.person_deletes(contact_id)
    run(ignore.pump())
    assert "C1" in ignore.square.customers

    delete = TwoWay(PHONE_CRM, crm_deletes="delete")
    contact_id = linked(delete)
    other = linked(delete, "C2", email_address="c2@example.com")
    delete.dataverse.person_edits(other, statecode=1, statuscode=2)  # deactivated
    delete.dataverse.person_deletes(contact_id)
    crm_writes = delete.dataverse.writes_by.get(APP_USER, 0)
    run(delete.pump())
    assert "C1" not in delete.square.customers and "C2" not in delete.square.customers
    assert delete.dataverse.writes_by.get(APP_USER, 0) == crm_writes  # Square's customer.deleted changed nothing
    assert delete.state.failures == {}


def test_unlinked_contacts_are_created_in_square_only_when_the_setting_says_so() -> None:
    off = TwoWay(PHONE_CRM)
    run(off.pump())
    off.dataverse.acting = PERSON
    off.dataverse.seed(firstname="Grace", lastname="Hopper", emailaddress1="grace@example.com")
    off.dataverse.acting = APP_USER
    run(off.pump())
    assert off.square.customers == {}

    on = TwoWay(PHONE_CRM, create_in_square=True)
    run(on.pump())
    on.dataverse.acting = PERSON
    contact_id = on.dataverse.seed(firstname="Grace", lastname="Hopper", emailaddress1="grace@example.com")
    on.dataverse.acting = APP_USER
    run(on.pump(shuffle=True))
    (customer,) = on.square.customers.values()
    assert customer["given_name"] == "Grace" and customer["email_address"] == "grace@example.com"
    assert on.dataverse.rows[contact_id]["tb_squarecustomerid"] == customer["id"]
    assert len(on.dataverse.rows) == 1  # its customer.created webhook linked, never a second contact
    assert on.square.calls.count("create_customer") == 1


def test_a_storm_of_edits_on_both_sides_converges_to_what_the_owners_say() -> None:
    """Owner and non-owner edits on both sides, `both` edits, webhooks and CRM changes processed in shuffled
    order; then each side's last edit to what it owns. Both systems end with the owner's values."""
    kit = TwoWay({"mobilephone": "crm", "emailaddress1": "both"}, seed=11)
    contacts = {f"S{i}": linked(kit, f"S{i}", email_address=f"s{i}@example.com") for i in range(5)}
    rng = kit.rng
    for round_number in range(30):
        for customer_id, contact_id in contacts.items():
            roll = rng.random()
            if roll < 0.25:
                kit.dataverse.person_edits(contact_id, mobilephone=f"+1 646 555 {rng.randrange(10000):04d}")
            elif roll < 0.4:
                kit.dataverse.person_edits(contact_id, firstname=f"CRM name {round_number}")  # not the CRM's
            elif roll < 0.55:
                kit.square.edit(customer_id, phone_number=f"+1 917 555 {rng.randrange(10000):04d}")  # not Square's
            elif roll < 0.75:
                kit.square.edit(customer_id, note=f"note {round_number}")
            elif roll < 0.87:
                kit.square.edit(customer_id, email_address=f"sq{round_number}.{customer_id}@example.com")
            else:
                kit.dataverse.person_edits(contact_id, emailaddress1=f"crm{round_number}.{customer_id}@example.com")
        if round_number % 3 == 2:
            run(kit.pump(shuffle=True))
    final: dict[str, dict[str, str]] = {}
    for index, (customer_id, contact_id) in enumerate(contacts.items()):
        kit.square.edit(customer_id, note=f"final note {index}", given_name=f"Final {index}")
        kit.dataverse.person_edits(contact_id, mobilephone=f"(212) 555-01{index:02d}")
        kit.dataverse.person_edits(contact_id, emailaddress1=f"final{index}@example.com")  # the last email edit
        final[customer_id] = {"phone": f"+1212555010{index}", "email": f"final{index}@example.com"}
    run(kit.pump(shuffle=True))

    assert run(kit.pump()) == 0  # nothing left moving: no loop
    for index, customer_id in enumerate(contacts):
        square, contact = kit.square.customers[customer_id], kit.contact_of(customer_id)
        assert square["phone_number"] == final[customer_id]["phone"]
        assert contact["mobilephone"] == f"(212) 555-01{index:02d}"
        assert contact["description"] == f"final note {index}" and contact["firstname"] == f"Final {index}"
        assert square["email_address"] == contact["emailaddress1"] == final[customer_id]["email"]
    assert {f.reason_code for f in kit.state.failures.values() if f.status == "open"} == set()


def test_tillbridges_own_update_does_not_make_square_look_later_in_a_conflict() -> None:
    """Square's `updated_at` of the version Tillbridge's push produced is the push's time, not the time of the
    Square edit it carries: the conflict is judged by the version the push was sent on."""
    kit = TwoWay({"mobilephone": "crm", "emailaddress1": "both"})
    contact_id = linked(kit)
    kit.square.edit("C1", email_address="square.side@example.com")  # earliest; its webhook is held back
    held = list(kit.square.events)
    kit.square.events.clear()
    kit.dataverse.person_edits(contact_id, mobilephone="+1 212 555 0166")
    run(kit.poller.poll(kit.clock.now()))  # reads the phone edit only
    kit.dataverse.person_edits(contact_id, emailaddress1="crm.side@example.com")  # later than Square's edit
    for message in list(kit.crm_queue.sent):  # the phone goes out after the CRM email edit: a later updated_at
        kit.crm_queue.sent.remove(message)
        run(kit.crm_worker.handle(message.body.encode()))
    kit.deliver_webhooks()  # Tillbridge's own version first ...
    kit.square.events.extend(held)  # ... then the held, older one
    run(kit.pump())

    assert kit.square.customers["C1"]["email_address"] == "crm.side@example.com"
    assert kit.contact_of("C1")["emailaddress1"] == "crm.side@example.com"
    assert [c["winner"] for c in kit.traces.steps("conflict")] == ["crm"]
