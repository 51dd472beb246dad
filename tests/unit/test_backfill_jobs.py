"""Backfill jobs through the admin API over fakes: started in the background, progress readable by job
id, a bad request refused with a clear error, an interrupted job shown as such."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from shared.bulk.backfill import Backfill
from shared.bulk.context import BulkContext
from shared.bulk.jobs import JOB_DOC, BackfillJobs
from shared.bulk.writer import BulkWriter
from shared.ops.api import handle
from shared.ops.service import OpsService
from tests.fakes import FakeDataverse, FakeHistory, FakeQueue, FakeState, FixedClock, NoTraces, flow_context
from tests.unit.test_backfill import customer


def setup() -> tuple[OpsService, FakeDataverse, FakeState, FixedClock]:
    dataverse, state, clock = FakeDataverse(), FakeState(), FixedClock()
    ctx = flow_context(dataverse=dataverse, state=state)
    history = FakeHistory(customers=[customer(n) for n in range(120)])

    def start(dry_run: bool, progress: Any) -> Backfill:
        bc = BulkContext(ctx=ctx, writer=BulkWriter(dataverse, 50), queue=FakeQueue(), dry_run=dry_run)
        return Backfill(bc, history, chunk_size=50, progress=progress)

    service = OpsService(state, NoTraces(), FakeQueue(), clock)  # type: ignore[arg-type]
    service.jobs = BackfillJobs(state, clock, start)
    return service, dataverse, state, clock


async def call(service: OpsService, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    return await handle(service, method, path, {}, json.dumps(body).encode() if body is not None else b"")


def test_a_backfill_job_runs_in_the_background_and_reports_its_counts() -> None:
    service, dataverse, _, _ = setup()

    async def scenario() -> tuple[Any, Any]:
        started = await call(service, "POST", "backfill", {"what": "customers"})
        assert service.jobs is not None
        await asyncio.gather(*service.jobs.running.values())
        return started, await call(service, "GET", f"backfill/{started.body['job_id']}")

    started, status = asyncio.run(scenario())
    assert started.status == 200 and started.body["status"] == "running"
    assert status.status == 200 and status.body["status"] == "finished"
    assert status.body["counts"]["customers"]["created"] == 120
    assert len(dataverse.active_by_square_id()) == 120


def test_bad_requests_get_a_clear_error() -> None:
    service, _, _, _ = setup()
    reply = asyncio.run(call(service, "POST", "backfill", {"what": "everything"}))
    assert reply.status == 400 and reply.body["error"]["code"] == "bad_backfill"
    reply = asyncio.run(call(service, "POST", "backfill", {"what": "customers", "since": "yesterday"}))
    assert reply.status == 400 and reply.body["error"]["code"] == "bad_time"
    reply = asyncio.run(call(service, "GET", "backfill/nope"))
    assert reply.status == 404


def test_a_job_whose_heartbeat_stopped_shows_as_interrupted() -> None:
    service, _, state, clock = setup()
    document = {"job_id": "j1", "what": "customers", "status": "running", "heartbeat_at": clock.now().isoformat()}
    asyncio.run(state.put_doc(JOB_DOC, "j1", document, None))
    clock.advance(120)
    reply = asyncio.run(call(service, "GET", "backfill/j1"))
    assert reply.body["status"] == "interrupted"
