"""The backfill engine over fakes: customers in bulk (create, match, review, invalid, refused rows, the
version gate against the live path), dry run, and a killed run that resumes with no gap and no duplicate.
Expected CRM state is written out from the Square data here, never computed with the product's mapping."""

from __future__ import annotations

import asyncio
from typing import Any

from shared.bulk.backfill import Backfill
from shared.bulk.context import BulkContext
from shared.bulk.counts import Counts
from shared.bulk.writer import BulkWriter
from shared.core.errors import TransientError
from shared.core.ports import LedgerRow
from tests.fakes import FakeDataverse, FakeHistory, FakeQueue, FakeState, flow_context


def customer(n: int, **extra: Any) -> dict[str, Any]:
    stamp = f"2025-01-01T{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z"
    return {
        "id": f"C{n:05d}",
        "version": 1,
        "created_at": stamp,
        "updated_at": stamp,
        "given_name": f"Given{n}",
        "family_name": "Family",
        "email_address": f"c{n}@example.com",
        **extra,
    }


def setup(
    history: FakeHistory,
    *,
    dataverse: FakeDataverse | None = None,
    state: FakeState | None = None,
    dry_run: bool = False,
    attempts: int = 1,
) -> tuple[Backfill, FakeDataverse, FakeState, FakeQueue, list[tuple[str, Counts]]]:
    dataverse = dataverse or FakeDataverse()
    state = state or FakeState()
    ctx = flow_context(dataverse=dataverse, state=state)
    queue = FakeQueue()
    seen: list[tuple[str, Counts]] = []
    bc = BulkContext(ctx=ctx, writer=BulkWriter(dataverse, 50), queue=queue, dry_run=dry_run)
    backfill = Backfill(
        bc,
        history,
        chunk_size=100,
        progress=lambda kind, counts, _: seen.append((kind, counts)),
        chunk_attempts=attempts,
        retry_base_seconds=0.01,
    )
    return backfill, dataverse, state, queue, seen


def test_customers_are_created_in_bulk_with_their_fields_and_a_few_requests() -> None:
    history = FakeHistory(customers=[customer(n) for n in range(250)])
    backfill, dataverse, state, _, seen = setup(history)
    totals = asyncio.run(backfill.run("customers", None))
    contacts = dataverse.active_by_square_id()
    assert len(contacts) == 250
    assert contacts["C00007"]["firstname"] == "Given7"
    assert contacts["C00007"]["lastname"] == "Family"
    assert contacts["C00007"]["emailaddress1"] == "c7@example.com"
    assert totals["customers"].created == 250
    # 3 chunks (100, 100, 50): per chunk one $batch of key+email queries and CreateMultiple of 50 rows
    assert sum(1 for call in dataverse.calls if call.startswith("query_many")) == 3
    assert sorted(c for c in dataverse.calls if c.startswith("create_multiple")) == ["create_multiple:contacts:50"] * 5
    assert totals["customers"].requests == 8
    ledger = state.ledger[("customer", "C00007")]
    assert ledger.version == 1 and ledger.dataverse_id == contacts["C00007"]["contactid"]
    assert [kind for kind, _ in seen] == ["customers"] * 3


def test_first_seen_customers_link_to_contacts_matching_by_email_or_typed_phone() -> None:
    dataverse = FakeDataverse()
    by_email = dataverse.seed(emailaddress1="C1@Example.com", firstname="Crm")
    by_phone = dataverse.seed(mobilephone="(206) 555-0100", firstname="Crm2")
    twin_a = dataverse.seed(emailaddress1="twin@example.com")
    twin_b = dataverse.seed(emailaddress1="twin@example.com")
    history = FakeHistory(
        customers=[
            customer(1),
            customer(2, email_address=None, phone_number="+12065550100"),
            customer(3, email_address="twin@example.com"),
            customer(4),
        ]
    )
    backfill, dataverse, state, _, _ = setup(history, dataverse=dataverse)
    totals = asyncio.run(backfill.run("customers", None))
    assert dataverse.rows[by_email]["tb_squarecustomerid"] == "C00001"
    assert dataverse.rows[by_email]["firstname"] == "Given1"
    assert dataverse.rows[by_phone]["tb_squarecustomerid"] == "C00002"
    assert "tb_squarecustomerid" not in dataverse.rows[twin_a] and "tb_squarecustomerid" not in dataverse.rows[twin_b]
    failure = state.failures[("customers", "C00003")]
    assert failure.reason_code == "needs_review"
    assert sorted(failure.candidates) == sorted([twin_a, twin_b])
    assert totals["customers"].review == 1
    assert totals["customers"].updated == 2 and totals["customers"].created == 1
    assert len(dataverse.rows) == 5  # four seeded + C00004
    assert [c for c in dataverse.calls if c.startswith("query")] == ["query_many:1", "query_many:1"]  # then phones


def test_two_customers_matching_one_contact_in_one_chunk_link_only_the_first() -> None:
    dataverse = FakeDataverse()
    shared = dataverse.seed(emailaddress1="same@example.com")
    history = FakeHistory(
        customers=[customer(1, email_address="same@example.com"), customer(2, email_address="same@example.com")]
    )
    backfill, dataverse, _, _, _ = setup(history, dataverse=dataverse)
    asyncio.run(backfill.run("customers", None))
    assert dataverse.rows[shared]["tb_squarecustomerid"] == "C00001"
    assert set(dataverse.active_by_square_id()) == {"C00001", "C00002"}


def test_a_newer_version_written_by_the_live_path_is_never_overwritten() -> None:
    dataverse = FakeDataverse()
    live = dataverse.seed(tb_squarecustomerid="C00001", firstname="Newer")
    state = FakeState()
    state.ledger[("customer", "C00001")] = LedgerRow("customer", "C00001", dataverse_id=live, version=5, etag="e")
    backfill, dataverse, _, _, _ = setup(
        FakeHistory(customers=[customer(1, version=3)]), dataverse=dataverse, state=state
    )
    totals = asyncio.run(backfill.run("customers", None))
    assert dataverse.rows[live]["firstname"] == "Newer"
    assert totals["customers"].unchanged == 1
    assert not any(call.startswith(("upsert_multiple", "create_multiple")) for call in dataverse.calls)


def test_invalid_and_refused_customers_become_one_failure_record_each() -> None:
    dataverse = FakeDataverse(reject=lambda payload: payload.get("firstname") == "Refused")
    history = FakeHistory(
        customers=[
            customer(1),
            customer(2, email_address="not an email"),
            customer(3, given_name="Refused"),
            customer(4),
        ]
    )
    backfill, dataverse, state, _, _ = setup(history, dataverse=dataverse)
    totals = asyncio.run(backfill.run("customers", None))
    assert set(dataverse.active_by_square_id()) == {"C00001", "C00004"}
    assert state.failures[("customers", "C00002")].reason_code == "invalid_data"
    assert state.failures[("customers", "C00002")].field == "email_address"
    assert state.failures[("customers", "C00003")].reason_code == "crm_rejected"
    assert state.ledger[("customer", "C00003")].failure_open
    assert (totals["customers"].invalid, totals["customers"].failed, totals["customers"].created) == (1, 1, 2)


def test_dry_run_counts_and_writes_nothing() -> None:
    dataverse = FakeDataverse()
    dataverse.seed(emailaddress1="c1@example.com")
    history = FakeHistory(customers=[customer(n) for n in range(1, 6)] + [customer(9, email_address="bad")])
    backfill, dataverse, state, _, _ = setup(history, dataverse=dataverse, dry_run=True)
    totals = asyncio.run(backfill.run("customers", None))
    counts = totals["customers"]
    assert (counts.created, counts.updated, counts.invalid, counts.examined) == (4, 1, 1, 6)
    assert len(dataverse.rows) == 1
    assert state.ledger == {} and state.failures == {} and state.cursors == {}


class KillAfter(FakeDataverse):
    """Dies (transiently) at the n-th bulk request, like a process killed mid-run."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.left = n

    async def create_multiple(self, entity_set: str, entity: str, payloads: Any) -> list[str]:
        self.left -= 1
        if self.left < 0:
            raise TransientError("killed")
        return await super().create_multiple(entity_set, entity, payloads)


def test_a_killed_backfill_resumes_from_its_stored_point_with_no_gap_and_no_duplicate() -> None:
    history = FakeHistory(customers=[customer(n) for n in range(350)])
    dataverse = KillAfter(5)  # chunks of 100 in requests of 50: dies in the third chunk
    state = FakeState()
    backfill, _, _, _, _ = setup(history, dataverse=dataverse, state=state)
    try:
        asyncio.run(backfill.run("customers", None))
        raise AssertionError("the run should have died")
    except TransientError:
        pass
    resume_point = state.cursors["backfill:customers:all:customers"]
    assert resume_point == customer(199)["created_at"]
    assert len(dataverse.active_by_square_id()) in (200, 250)  # the dying chunk may have half-landed
    dataverse.left = 10**6
    history.calls.clear()
    backfill, _, _, _, _ = setup(history, dataverse=dataverse, state=state)
    totals = asyncio.run(backfill.run("customers", None))
    assert history.calls[0] == f"customers:{resume_point}:None"
    contacts = dataverse.active_by_square_id()
    assert sorted(contacts) == [f"C{n:05d}" for n in range(350)]
    keys = [row["tb_squarecustomerid"] for row in dataverse.rows.values()]
    assert len(keys) == len(set(keys)) == 350
    assert totals["customers"].created + totals["customers"].updated + totals["customers"].unchanged == 151
    assert state.cursors["backfill:customers:all:customers"] == ""  # finished: the next run starts over


def test_since_limits_customers_to_those_changed_since() -> None:
    history = FakeHistory(customers=[customer(1), customer(2, updated_at="2026-03-01T00:00:00Z")])
    backfill, dataverse, _, _, _ = setup(history)
    asyncio.run(backfill.run("customers", "2026-01-01T00:00:00Z"))
    assert set(dataverse.active_by_square_id()) == {"C00002"}


def test_a_blip_in_the_middle_of_a_chunk_is_waited_out_and_the_chunk_tried_again() -> None:
    history = FakeHistory(customers=[customer(n) for n in range(150)])
    backfill, dataverse, state, _, _ = setup(history, attempts=3)
    dataverse.fail_next.extend([TransientError("Dataverse 503"), TransientError("connection dropped")])
    totals = asyncio.run(backfill.run("customers", None))
    assert sorted(dataverse.active_by_square_id()) == [f"C{n:05d}" for n in range(150)]
    assert totals["customers"].created + totals["customers"].updated == 150
    assert state.failures == {}


def test_a_customer_the_live_path_is_writing_right_now_is_deferred_and_resynced_after_a_short_wait() -> None:
    """Another writer's claim on a newer-than-ledger version is live: the backfill neither writes beside it
    nor drops it, it re-queues a fresh sync of the customer a few seconds later."""
    from shared.core.models import SyncCommand

    state = FakeState()
    ctx_now = flow_context().clock.now().isoformat()
    state.ledger[("customer", "C00001")] = LedgerRow(
        "customer", "C00001", version=1, pending_version=2, pending_event_id="live", pending_at=ctx_now, etag="e"
    )
    backfill, dataverse, _, queue, _ = setup(FakeHistory(customers=[customer(1, version=3)]), state=state)
    totals = asyncio.run(backfill.run("customers", None))
    assert totals["customers"].deferred == 1 and totals["customers"].created == 0
    assert not any(call.startswith(("upsert_multiple", "create_multiple")) for call in dataverse.calls)
    (resync,) = queue.sent
    assert 0 < resync.delay_seconds <= 5
    command = SyncCommand.model_validate_json(resync.body)
    assert command.entity_id == "C00001" and command.fetch and not command.repair


def test_a_bulk_write_whose_commit_is_lost_is_resynced_as_a_repair() -> None:
    """Another writer moved the ledger row on between the bulk claim and commit: the bulk write may have
    landed after the newer one, so the re-sync writes Square's current copy even at the ledger's version."""
    from shared.core.errors import ConcurrencyError
    from shared.core.models import SyncCommand

    state = FakeState()
    backfill, _, _, queue, _ = setup(FakeHistory(customers=[customer(1)]), state=state)
    original = state.save_ledger
    saves = {"n": 0}

    async def lose_the_commit(row: LedgerRow) -> LedgerRow:
        saves["n"] += 1
        if saves["n"] == 2:  # the claim lands, the commit finds the row moved on
            raise ConcurrencyError("moved on")
        return await original(row)

    state.save_ledger = lose_the_commit  # type: ignore[method-assign]
    totals = asyncio.run(backfill.run("customers", None))
    assert totals["customers"].deferred == 1
    (resync,) = queue.sent
    command = SyncCommand.model_validate_json(resync.body)
    assert command.entity_id == "C00001" and command.fetch and command.repair


def test_per_event_outcomes_are_not_kept_for_the_whole_run() -> None:
    backfill, _, _, _, _ = setup(FakeHistory(customers=[customer(n) for n in range(250)]))
    asyncio.run(backfill.run("customers", None))
    assert backfill.bc.outcomes == {}
