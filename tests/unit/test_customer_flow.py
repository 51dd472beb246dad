"""The customers → contacts flow over in-memory fakes: gate, match, upsert, delete, merge, failures."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.core.errors import InvalidDataError, NeedsReviewError, TransientError
from shared.core.models import SyncCommand
from shared.flows.context import Outcome
from shared.flows.customers import sync_customer
from tests.fakes import FakeDataverse, FakeSquare, FakeState, flow_context


def command(
    event_type: str,
    customer: dict[str, Any] | None,
    *,
    customer_id: str | None = None,
    event_id: str = "e1",
    merge: dict[str, Any] | None = None,
) -> SyncCommand:
    cid = customer_id or (customer or {})["id"]
    data_object: dict[str, Any] = {"customer": customer} if customer else {}
    if merge:
        data_object["event_context"] = {"merge": merge}
    return SyncCommand(
        message_id=event_id,
        event_id=event_id,
        event_type=event_type,
        entity_kind="customer",
        entity_id=cid,
        received_at="2026-11-22T12:00:00+00:00",
        event={
            "type": event_type,
            "event_id": event_id,
            "data": {"type": "customer", "id": cid, "object": data_object},
        },
    )


def customer(cid: str = "C1", version: int = 0, **fields: Any) -> dict[str, Any]:
    return {
        "id": cid,
        "version": version,
        "given_name": "Ada",
        "family_name": "Lovelace",
        "email_address": f"{cid.lower()}@example.com",
        **fields,
    }


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_new_customer_is_created_by_one_upsert_after_matching_lookups() -> None:
    dv = FakeDataverse()
    ctx = flow_context(dataverse=dv)
    assert run(sync_customer(command("customer.created", customer()), ctx)) is Outcome.WRITTEN
    assert dv.calls == ["query", "upsert_by_key"]  # one query for key, email and phone; one upsert
    contact = dv.active_by_square_id()["C1"]
    assert contact["firstname"] == "Ada" and contact["emailaddress1"] == "c1@example.com"


def test_linked_customer_update_is_exactly_one_request() -> None:
    dv = FakeDataverse()
    ctx = flow_context(dataverse=dv)
    run(sync_customer(command("customer.created", customer()), ctx))
    dv.calls.clear()
    outcome = run(
        sync_customer(command("customer.updated", customer(version=1, given_name="Augusta"), event_id="e2"), ctx)
    )
    assert outcome is Outcome.WRITTEN
    assert dv.calls == ["upsert_by_key"]
    assert dv.active_by_square_id()["C1"]["firstname"] == "Augusta"


def test_stale_and_duplicate_events_change_nothing() -> None:
    dv = FakeDataverse()
    ctx = flow_context(dataverse=dv)
    run(sync_customer(command("customer.updated", customer(version=2, given_name="New"), event_id="e2"), ctx))
    dv.calls.clear()
    assert run(sync_customer(command("customer.created", customer(version=0, given_name="Old")), ctx)) is Outcome.STALE
    assert (
        run(sync_customer(command("customer.updated", customer(version=2, given_name="New"), event_id="e2"), ctx))
        is Outcome.DUPLICATE
    )
    assert dv.calls == []
    assert dv.active_by_square_id()["C1"]["firstname"] == "New"


def test_unchanged_content_at_a_newer_version_skips_the_crm() -> None:
    dv = FakeDataverse()
    state = FakeState()
    ctx = flow_context(dataverse=dv, state=state)
    run(sync_customer(command("customer.created", customer()), ctx))
    dv.calls.clear()
    assert run(sync_customer(command("customer.updated", customer(version=1), event_id="e2"), ctx)) is Outcome.UNCHANGED
    assert dv.calls == [] and state.ledger[("customer", "C1")].version == 1


def test_existing_crm_contact_is_linked_by_case_insensitive_email() -> None:
    dv = FakeDataverse()
    existing = dv.seed(emailaddress1="ada@example.com", firstname="Ada (CRM)")
    ctx = flow_context(dataverse=dv)
    run(sync_customer(command("customer.created", customer("C9", email_address="  ADA@Example.com ")), ctx))
    assert len(dv.rows) == 1
    assert dv.rows[existing]["tb_squarecustomerid"] == "C9"


def test_phone_match_when_no_email() -> None:
    dv = FakeDataverse()
    existing = dv.seed(mobilephone="+12125554240")
    ctx = flow_context(dataverse=dv)
    raw = customer("C7", email_address=None, phone_number="(212) 555-4240")
    del raw["email_address"]
    run(sync_customer(command("customer.created", raw), ctx))
    assert dv.rows[existing]["tb_squarecustomerid"] == "C7" and len(dv.rows) == 1


def test_ambiguous_match_needs_review_and_writes_nothing() -> None:
    dv = FakeDataverse()
    first, second = dv.seed(emailaddress1="c1@example.com"), dv.seed(emailaddress1="C1@example.com")
    ctx = flow_context(dataverse=dv)
    with pytest.raises(NeedsReviewError) as caught:
        run(sync_customer(command("customer.created", customer()), ctx))
    assert set(caught.value.candidates) == {first, second}
    assert all(row.get("tb_squarecustomerid") is None for row in dv.rows.values())


def test_invalid_data_is_terminal_and_writes_nothing() -> None:
    dv = FakeDataverse()
    with pytest.raises(InvalidDataError) as caught:
        run(sync_customer(command("customer.created", customer(email_address="bad@@x")), flow_context(dataverse=dv)))
    assert caught.value.problems[0].field == "email_address"
    assert dv.rows == {}


def test_delete_deactivates_and_keeps_the_link() -> None:
    dv = FakeDataverse()
    state = FakeState()
    ctx = flow_context(dataverse=dv, state=state)
    run(sync_customer(command("customer.created", customer()), ctx))
    assert run(sync_customer(command("customer.deleted", customer(), event_id="e3"), ctx)) is Outcome.DEACTIVATED
    (row,) = dv.rows.values()
    assert (row["statecode"], row["statuscode"], row["tb_squarecustomerid"]) == (1, 2, "C1")
    assert state.ledger[("customer", "C1")].status == "deleted"
    # a late update never resurrects it
    assert run(sync_customer(command("customer.updated", customer(version=0), event_id="e4"), ctx)) is Outcome.STALE


def test_delete_before_create_leaves_a_tombstone_and_no_contact() -> None:
    dv = FakeDataverse()
    ctx = flow_context(dataverse=dv)
    assert run(sync_customer(command("customer.deleted", customer(), event_id="e3"), ctx)) is Outcome.DEACTIVATED
    assert run(sync_customer(command("customer.created", customer()), ctx)) is Outcome.STALE
    assert dv.rows == {}


def test_crash_between_write_and_ledger_commit_is_repaired_by_the_retry() -> None:
    dv = FakeDataverse()
    state = FakeState()
    ctx = flow_context(dataverse=dv, state=state)
    run(sync_customer(command("customer.created", customer()), ctx))
    update = command("customer.updated", customer(version=1, given_name="Augusta"), event_id="e2")
    original_save = state.save_ledger
    saves = {"n": 0}

    async def crash_on_commit(row: Any) -> Any:
        saves["n"] += 1
        if saves["n"] == 2:  # claim succeeds, the CRM write happens, then the commit "crashes"
            raise TransientError("host died")
        return await original_save(row)

    state.save_ledger = crash_on_commit  # type: ignore[method-assign]
    with pytest.raises(TransientError):
        run(sync_customer(update, ctx))
    assert state.ledger[("customer", "C1")].pending_version == 1
    assert run(sync_customer(update, ctx)) is Outcome.WRITTEN  # the same event again: re-applied, committed
    assert state.ledger[("customer", "C1")].version == 1 and state.ledger[("customer", "C1")].pending_version is None
    assert len(dv.rows) == 1 and dv.active_by_square_id()["C1"]["firstname"] == "Augusta"


def test_thin_message_fetches_the_customer() -> None:
    square = FakeSquare(customers={"C1": customer(version=4, given_name="Fetched")})
    dv = FakeDataverse()
    ctx = flow_context(dataverse=dv, square=square)
    thin = command("customer.updated", None, customer_id="C1").model_copy(update={"fetch": True})
    assert run(sync_customer(thin, ctx)) is Outcome.WRITTEN
    assert square.calls == ["retrieve_customer"]
    assert dv.active_by_square_id()["C1"]["firstname"] == "Fetched"


def _merge_setup() -> tuple[FakeDataverse, FakeState, Any]:
    dv = FakeDataverse()
    state = FakeState()
    ctx = flow_context(dataverse=dv, state=state)
    run(sync_customer(command("customer.created", customer("A", given_name="Ann")), ctx))
    run(sync_customer(command("customer.created", customer("B", given_name="Bea"), event_id="eb"), ctx))
    return dv, state, ctx


@pytest.mark.parametrize("order", ["created_first", "deleted_first"])
def test_merge_leaves_one_contact_keyed_by_the_survivor(order: str) -> None:
    dv, state, ctx = _merge_setup()
    merge = {"from_customer_ids": ["A", "B"], "to_customer_id": "C"}
    created = command("customer.created", customer("C", given_name="Ann Merged"), event_id="ec", merge=merge)
    deleted = [command("customer.deleted", customer(x), event_id=f"d{x}", merge=merge) for x in ("A", "B")]
    events = [created, *deleted] if order == "created_first" else [*deleted, created]
    for event in events:
        run(sync_customer(event, ctx))
    active = dv.active_by_square_id()
    assert list(active) == ["C"] and active["C"]["firstname"] == "Ann Merged"
    inactive = [row for row in dv.rows.values() if row["statecode"] == 1]
    assert len(inactive) == 1 and inactive[0]["merged"] and inactive[0]["tb_squarecustomerid"] is None
    assert state.ledger[("customer", "A")].status == "merged" and state.ledger[("customer", "B")].merged_into == "C"
    # a late update for a merged-away id is ignored
    assert (
        run(sync_customer(command("customer.updated", customer("A", version=5), event_id="late"), ctx)) is Outcome.STALE
    )


def test_merge_replay_is_harmless() -> None:
    dv, _state, ctx = _merge_setup()
    merge = {"from_customer_ids": ["A", "B"], "to_customer_id": "C"}
    created = command("customer.created", customer("C"), event_id="ec", merge=merge)
    run(sync_customer(created, ctx))
    dv.calls.clear()
    assert run(sync_customer(created, ctx)) is Outcome.DUPLICATE
    assert "merge" not in dv.calls and len(dv.active_by_square_id()) == 1


def test_a_merge_in_progress_elsewhere_makes_the_others_wait() -> None:
    from shared.core.ports import LedgerRow

    dv, state, ctx = _merge_setup()
    state.ledger[("merge", "C")] = LedgerRow(
        "merge", "C", status="running", updated_at=ctx.clock.now().isoformat(), etag="x"
    )
    merge = {"from_customer_ids": ["A", "B"], "to_customer_id": "C"}
    with pytest.raises(TransientError):
        run(sync_customer(command("customer.deleted", customer("A"), event_id="dA", merge=merge), ctx))
    assert len(dv.active_by_square_id()) == 2  # nothing touched while the other worker holds the claim
    ctx.clock.advance(300)  # type: ignore[attr-defined]
    run(
        sync_customer(command("customer.deleted", customer("A"), event_id="dA", merge=merge), ctx)
    )  # stale claim taken over
    assert state.ledger[("merge", "C")].status == "done" and list(dv.active_by_square_id()) == ["C"]


def test_a_writer_in_another_process_waits_for_a_live_claim_and_the_newest_version_stays() -> None:
    """Two hosts (no sessions) get v1 and v2 of one customer at once. v1's claim is made first and its CRM
    write is slow; v2 must not write beside it (v1's write could land last and stay in the CRM)."""
    dv, state = FakeDataverse(), FakeState()
    first_host, second_host = flow_context(dataverse=dv, state=state), flow_context(dataverse=dv, state=state)
    run(sync_customer(command("customer.created", customer()), first_host))
    released = asyncio.Event()
    original_upsert = dv.upsert_by_key

    async def slow_upsert(entity_set: str, key: Any, payload: Any) -> Any:
        if payload.get("firstname") == "Version one":
            await released.wait()
        return await original_upsert(entity_set, key, payload)

    dv.upsert_by_key = slow_upsert  # type: ignore[method-assign]
    v1 = command("customer.updated", customer(version=1, given_name="Version one"), event_id="e-v1")
    v2 = command("customer.updated", customer(version=2, given_name="Version two"), event_id="e-v2")

    async def race() -> None:
        slow = asyncio.create_task(sync_customer(v1, first_host))
        await asyncio.sleep(0.01)  # v1 has claimed and is writing
        with pytest.raises(TransientError, match="another worker"):
            await sync_customer(v2, second_host)
        released.set()
        assert await slow is Outcome.WRITTEN
        assert await sync_customer(v2, second_host) is Outcome.WRITTEN  # the retry, once v1 has committed

    run(race())
    assert dv.active_by_square_id()["C1"]["firstname"] == "Version two"
    assert state.ledger[("customer", "C1")].version == 2


def test_a_claim_left_by_a_dead_writer_is_overtaken_when_its_lease_runs_out() -> None:
    dv, state = FakeDataverse(), FakeState()
    ctx = flow_context(dataverse=dv, state=state)
    run(sync_customer(command("customer.created", customer()), ctx))
    row = state.ledger[("customer", "C1")]
    row.pending_version, row.pending_event_id, row.pending_at = 1, "dead", ctx.clock.now().isoformat()
    v2 = command("customer.updated", customer(version=2, given_name="Later"), event_id="e-v2")
    with pytest.raises(TransientError):
        run(sync_customer(v2, ctx))
    ctx.clock.advance(61)  # type: ignore[attr-defined]
    assert run(sync_customer(v2, ctx)) is Outcome.WRITTEN
    assert dv.active_by_square_id()["C1"]["firstname"] == "Later"


def test_a_merge_waits_for_an_update_of_a_merged_away_id_that_is_being_written() -> None:
    """Otherwise the update's write could land after the merge and key (or create) a contact for B again."""
    from shared.core.errors import BusyError

    dv, state, ctx = _merge_setup()
    row = state.ledger[("customer", "B")]
    row.pending_version, row.pending_event_id, row.pending_at = 7, "update-of-b", ctx.clock.now().isoformat()
    merge = {"from_customer_ids": ["A", "B"], "to_customer_id": "C"}
    created = command("customer.created", customer("C", given_name="Ann Merged"), event_id="ec", merge=merge)
    with pytest.raises(BusyError):
        run(sync_customer(created, ctx))
    assert len(dv.active_by_square_id()) == 2 and "merge" not in dv.calls  # nothing merged yet
    assert state.ledger[("merge", "C")].status == "released"  # the next attempt may start at once
    row.pending_version = row.pending_event_id = row.pending_at = None  # the update finished
    run(sync_customer(created, ctx))
    assert list(dv.active_by_square_id()) == ["C"]
