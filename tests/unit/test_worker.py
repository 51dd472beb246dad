"""The worker's routing of outcomes: retry copies with fresh ids, failure records, dead letters."""

from __future__ import annotations

import asyncio

from shared.core.errors import ThrottledError, TransientError
from shared.core.models import SyncCommand
from shared.flows.context import Outcome
from shared.pipeline.worker import RetryPolicy, Worker
from tests.fakes import FakeDataverse, FakeQueue, FakeState, flow_context
from tests.unit.test_customer_flow import command, customer


def make_worker(
    dv: FakeDataverse | None = None, state: FakeState | None = None, max_attempts: int = 3
) -> tuple[Worker, FakeQueue, FakeState]:
    queue, state = FakeQueue(), state or FakeState()
    worker = Worker(
        ctx=flow_context(dataverse=dv, state=state), retry_queue=queue, policy=RetryPolicy(max_attempts, 2.0, 60.0)
    )
    return worker, queue, state


def body(cmd: SyncCommand) -> bytes:
    return cmd.model_dump_json().encode()


def test_success_returns_the_outcome() -> None:
    worker, queue, _ = make_worker()
    assert asyncio.run(worker.handle(body(command("customer.created", customer())))) is Outcome.WRITTEN
    assert queue.sent == []


def test_throttling_schedules_a_copy_with_a_fresh_id_no_sooner_than_retry_after() -> None:
    dv = FakeDataverse(fail_next=[ThrottledError("429", retry_after=42.0)])
    worker, queue, state = make_worker(dv)
    assert asyncio.run(worker.handle(body(command("customer.created", customer(), event_id="evt")))) is None
    (copy,) = queue.sent
    assert copy.message_id == "evt:retry:2" and copy.session_id == "" and copy.delay_seconds >= 42.0
    assert SyncCommand.model_validate_json(copy.body).attempt == 2
    assert state.failures == {}  # transient trouble is never a data failure


def test_unknown_errors_count_as_transient() -> None:
    dv = FakeDataverse(fail_next=[RuntimeError("surprise")])
    worker, queue, state = make_worker(dv)
    asyncio.run(worker.handle(body(command("customer.created", customer()))))
    assert len(queue.sent) == 1 and state.failures == {}


def test_after_the_attempt_limit_a_failure_is_recorded() -> None:
    dv = FakeDataverse(fail_next=[TransientError("503")])
    worker, queue, state = make_worker(dv, max_attempts=3)
    last = command("customer.created", customer()).model_copy(update={"attempt": 3})
    asyncio.run(worker.handle(body(last)))
    assert queue.sent == []
    failure = state.failures[("customers", "C1")]
    assert failure.reason_code == "retries_exhausted" and "503" in failure.message


def test_invalid_data_records_field_and_reason_and_completes() -> None:
    worker, queue, state = make_worker()
    asyncio.run(worker.handle(body(command("customer.created", customer(email_address="nope")))))
    failure = state.failures[("customers", "C1")]
    assert (failure.reason_code, failure.field, queue.sent) == ("invalid_data", "email_address", [])
    assert state.ledger[("customer", "C1")].failure_open


def test_a_later_success_resolves_the_open_failure() -> None:
    worker, _, state = make_worker()
    asyncio.run(worker.handle(body(command("customer.created", customer(email_address="nope")))))
    asyncio.run(worker.handle(body(command("customer.updated", customer(version=1), event_id="e2"))))
    assert state.failures[("customers", "C1")].status == "resolved"
    assert not state.ledger[("customer", "C1")].failure_open


def test_needs_review_lists_candidates() -> None:
    dv = FakeDataverse()
    ids = {dv.seed(emailaddress1="c1@example.com"), dv.seed(emailaddress1="c1@example.com")}
    worker, _, state = make_worker(dv)
    asyncio.run(worker.handle(body(command("customer.created", customer()))))
    failure = state.failures[("customers", "C1")]
    assert failure.reason_code == "needs_review" and set(failure.candidates) == ids


def test_malformed_message_becomes_a_failure_record() -> None:
    worker, _, state = make_worker()
    assert asyncio.run(worker.handle(b"not json")) is None
    (failure,) = state.failures.values()
    assert failure.reason_code == "malformed_message"


def test_unroutable_kind_is_recorded() -> None:
    worker, _, state = make_worker()
    odd = command("customer.created", customer()).model_copy(update={"entity_kind": "spaceship"})
    asyncio.run(worker.handle(body(odd)))
    assert state.failures[("unknown", "C1")].reason_code == "unroutable"


def test_dead_letters_are_recorded() -> None:
    worker, _, state = make_worker()
    asyncio.run(worker.dead_letter(body(command("customer.created", customer())), "MaxDeliveryCountExceeded"))
    failure = state.failures[("customers", "C1")]
    assert failure.reason_code == "dead_lettered" and "MaxDeliveryCountExceeded" in failure.message


def test_retry_delay_grows_and_is_capped() -> None:
    policy = RetryPolicy(8, 5.0, 60.0)
    delays = [policy.delay(attempt, None) for attempt in range(1, 8)]
    assert all(d <= 60.0 for d in delays) and delays[0] <= 5.0 and max(delays) > 20.0
    assert policy.delay(1, 120.0) == 120.0


def test_an_ignored_failure_stays_ignored_on_a_replay_and_reopens_for_a_newer_version() -> None:
    """docs/operations.md "Ignored failures": a replay or duplicate of what was judged never reopens it."""
    from shared.core.failures import merge_failure
    from shared.core.ports import FailureRecord

    def failure(version: str, status: str = "open") -> FailureRecord:
        return FailureRecord(
            "customers", "C1", "invalid_data", "bad", "e", "customer.updated", status=status, source_version=version
        )

    ignored = failure("7", "ignored")
    assert merge_failure(ignored, failure("7")).status == "ignored"  # the replay of the same version
    assert merge_failure(ignored, failure("6")).status == "ignored"  # an older, late duplicate
    assert merge_failure(ignored, failure("")).status == "ignored"  # a thin event: nothing to compare
    assert merge_failure(ignored, failure("8")).status == "open"  # new data failed: someone must look again
    assert merge_failure(ignored, failure("8")).attempts == 2
    resolved = failure("7", "resolved")
    assert merge_failure(resolved, failure("7")).status == "open"
    stamped = failure("2026-11-22T10:00:00Z", "ignored")
    assert merge_failure(stamped, failure("2026-11-22T10:00:00.000Z")).status == "ignored"
    assert merge_failure(stamped, failure("2026-11-22T11:00:00Z")).status == "open"


def test_a_write_that_outlives_its_lease_and_lands_last_is_repaired_from_squares_current_copy() -> None:
    """Host one claims v1 and its CRM write hangs past the lease; host two overtakes it with v2 and commits;
    then v1's write lands. v1's commit is lost, and its retry re-applies Square's current copy (v2) even
    though the ledger already holds v2 — the CRM must not keep v1."""
    from shared.core.keyed_lock import KeyedLocks
    from tests.fakes import FakeSquare

    dv, state, square = FakeDataverse(), FakeState(), FakeSquare()
    first, queue, _ = make_worker(dv, state, max_attempts=8)
    second = Worker(ctx=first.ctx, retry_queue=FakeQueue(), policy=first.policy)
    first.ctx.square = square
    asyncio.run(first.handle(body(command("customer.created", customer()))))
    v1 = customer(version=1, given_name="Version one")
    v2 = customer(version=2, given_name="Version two")
    square.customers["C1"] = v2
    released = asyncio.Event()
    original_upsert = dv.upsert_by_key

    async def hanging_upsert(entity_set: str, key: object, payload: dict[str, object]) -> object:
        if payload.get("firstname") == "Version one":
            await released.wait()
        return await original_upsert(entity_set, key, payload)  # type: ignore[arg-type]

    dv.upsert_by_key = hanging_upsert  # type: ignore[method-assign]

    async def race() -> None:
        slow = asyncio.create_task(first.handle(body(command("customer.updated", v1, event_id="e-v1"))))
        await asyncio.sleep(0.01)
        first.ctx.clock.advance(61)  # type: ignore[attr-defined]
        second.ctx.writers = KeyedLocks()  # another host: its own locks, the shared ledger and CRM
        assert await second.handle(body(command("customer.updated", v2, event_id="e-v2"))) is Outcome.WRITTEN
        released.set()
        assert await slow is None  # its commit was lost: a retry is queued
        (retry,) = queue.sent
        repair = SyncCommand.model_validate_json(retry.body)
        assert repair.repair and repair.fetch
        assert dv.active_by_square_id()["C1"]["firstname"] == "Version one"  # what the late write left
        assert await second.handle(retry.body.encode()) is Outcome.WRITTEN

    asyncio.run(race())
    assert dv.active_by_square_id()["C1"]["firstname"] == "Version two"
    assert state.ledger[("customer", "C1")].version == 2 and state.failures == {}


def test_a_failure_record_leaves_another_writers_live_claim_alone() -> None:
    from shared.pipeline.failing import flag_ledger

    state = FakeState()
    worker, _, _ = make_worker(state=state)
    asyncio.run(worker.handle(body(command("customer.created", customer()))))
    row = state.ledger[("customer", "C1")]
    row.pending_version, row.pending_event_id, row.pending_at = 5, "someone-else", "2026-11-22T12:00:00+00:00"
    asyncio.run(flag_ledger(state, command("customer.updated", customer(version=6), event_id="mine")))
    assert state.ledger[("customer", "C1")].pending_event_id == "someone-else"
