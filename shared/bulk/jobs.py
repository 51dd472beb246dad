"""Backfill jobs started from the admin API: the backfill runs as a background task of the process that
took the request, and its progress is a small document in the state store (read back by any instance).

A job heartbeats while it runs; one whose heartbeat stopped (the instance was recycled) shows as
`interrupted`, and starting the same backfill again resumes it from its stored point (shared/bulk/backfill.py)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from shared.bulk.backfill import WHAT, Backfill, Progress
from shared.bulk.counts import Counts
from shared.core.errors import ConcurrencyError
from shared.core.ports import Clock, StateStore
from shared.core.times import parse_time

log = logging.getLogger("tillbridge.backfill.jobs")
JOB_DOC = "backfilljob"
HEARTBEAT_SECONDS = 5.0
STALE_AFTER = timedelta(seconds=60)
StartBackfill = Callable[[bool, Progress], Backfill]  # (dry_run, progress) → a ready backfill


@dataclass
class BackfillJobs:
    state: StateStore
    clock: Clock
    start_backfill: StartBackfill
    running: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    async def start(self, what: str, since: str | None, dry_run: bool) -> dict[str, Any]:
        if what not in WHAT:
            raise ValueError(f"what must be one of {', '.join(WHAT)}")
        job_id = f"{self.clock.now().strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        document: dict[str, Any] = {
            "job_id": job_id,
            "what": what,
            "since": since,
            "dry_run": dry_run,
            "status": "running",
            "started_at": self.clock.now().isoformat(),
            "heartbeat_at": self.clock.now().isoformat(),
            "finished_at": None,
            "error": None,
            "counts": {},
        }
        await self.state.put_doc(JOB_DOC, job_id, document, None)
        task = asyncio.create_task(self._run(document))
        self.running[job_id] = task
        task.add_done_callback(lambda _: self.running.pop(job_id, None))
        return dict(document)

    async def status(self, job_id: str) -> dict[str, Any] | None:
        document, _ = await self.state.get_doc(JOB_DOC, job_id)
        if document is None:
            return None
        beat = parse_time(document.get("heartbeat_at"))
        if document.get("status") == "running" and beat is not None and self.clock.now() - beat > STALE_AFTER:
            document["status"] = "interrupted"  # start the same backfill again to resume it
        return document

    async def _run(self, document: dict[str, Any]) -> None:
        totals: dict[str, Counts] = {}

        def progress(kind: str, counts: Counts, position: str | None) -> None:
            totals.setdefault(kind, Counts()).add(counts)
            if position:
                document.setdefault("reached", {})[kind] = position  # the newest object written, per stream

        backfill = self.start_backfill(bool(document["dry_run"]), progress)
        beat = asyncio.create_task(self._heartbeat(document, totals))
        try:
            await backfill.run(str(document["what"]), document.get("since"))
            document["status"] = "finished"
        except Exception as error:  # recorded on the job; the stored resume point lets a new job go on
            document["status"] = "failed"
            document["error"] = f"{type(error).__name__}: {str(error)[:500]}"
            log.exception("backfill job %s failed", document["job_id"])
        finally:
            beat.cancel()
            document["finished_at"] = self.clock.now().isoformat()
            await self._save(document, totals)

    async def _heartbeat(self, document: dict[str, Any], totals: dict[str, Counts]) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            await self._save(document, totals)

    async def _save(self, document: dict[str, Any], totals: dict[str, Counts]) -> None:
        document["counts"] = {kind: counts.as_dict() for kind, counts in totals.items()}
        document["heartbeat_at"] = self.clock.now().isoformat()
        for _ in range(3):
            _, etag = await self.state.get_doc(JOB_DOC, str(document["job_id"]))
            try:
                await self.state.put_doc(JOB_DOC, str(document["job_id"]), document, etag)
                return
            except ConcurrencyError:
                continue
