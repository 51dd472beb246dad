"""What the ops person can do: see health, list and inspect failures, retry, resolve, replay, pause."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from shared.config.file import ConfigStatus
from shared.core.json_input import read_json
from shared.core.models import SyncCommand
from shared.core.ports import Clock, FailureRecord, FlowStatus, Queue, StateStore
from shared.core.times import parse_time
from shared.monitoring.tracing import TraceStore
from shared.pipeline.crm_changes import poll_status
from shared.pipeline.messages import fresh_fetch_command, outbound
from shared.pipeline.reconcile import CURSOR
from shared.pipeline.reconcile_all import last_report
from shared.pipeline.registry import CRM_CONTACTS_FLOW, FLOWS, OPERATED_FLOWS, flow_of, kinds_of

if TYPE_CHECKING:
    from shared.bulk.jobs import BackfillJobs

FINAL_STATUSES = ("resolved", "ignored")


class OpsError(Exception):
    def __init__(self, status: int, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.field = status, code, field


class QueueStats(Protocol):
    async def depth(self) -> dict[str, int | None]: ...


@dataclass(frozen=True)
class FailureFilter:
    flow: str | None = None
    reason: str | None = None
    status: str | None = "open"
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, failure: FailureRecord) -> bool:
        seen = parse_time(failure.last_seen)
        return (
            (self.flow is None or failure.flow == self.flow)
            and (self.reason is None or failure.reason_code == self.reason)
            and (self.status is None or failure.status == self.status)
            and (self.since is None or (seen is not None and seen >= self.since))
            and (self.until is None or (seen is not None and seen < self.until))
        )


def named(flow: str, record_id: str) -> str:
    """A record for a message: ids are shown in full unless absurdly long."""
    return f"{flow[:80]}/{record_id[:200]!r}"


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:  # a non-ASCII token, bad Base64 and anything read_json refuses ({"o":1e999}, deep nesting) are ValueErrors
        document = read_json(base64.urlsafe_b64decode(token.encode("ascii")))
    except ValueError:
        document = None
    offset = document.get("o") if isinstance(document, dict) else None
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise OpsError(400, "bad_continuation", "continuation is not a token this API issued", field="continuation")
    return offset


@dataclass
class OpsService:
    state: StateStore
    traces: TraceStore
    queue: Queue
    clock: Clock
    stats: QueueStats | None = None
    config_status: ConfigStatus | None = None  # the configuration file: valid or every problem
    previewer: Callable[[str, str], Awaitable[dict[str, Any]]] | None = None  # dry run of one Square object
    flow_queues: Mapping[str, Queue] = field(default_factory=dict)  # flows with their own queue (crm-contacts)
    jobs: BackfillJobs | None = None  # backfill jobs (shared/bulk/jobs.py); set by the composition root

    def _queue_for(self, kind: str) -> Queue:
        return self.flow_queues.get(flow_of(kind), self.queue)

    async def health(self) -> dict[str, Any]:
        now = self.clock.now()
        failures = await self.state.list_failures(None)
        flows = []
        for flow in FLOWS:
            status = await self.state.get_flow(flow)
            written = parse_time(status.last_written_at)
            entry = {
                **asdict(status),
                "lag_seconds": round((now - written).total_seconds(), 1) if written else None,
                "open_failures": sum(1 for f in failures if f.flow == flow and f.status == "open"),
            }
            if flow == CRM_CONTACTS_FLOW:
                entry["change_tracking"] = await self._change_tracking(now)
            flows.append(entry)
        depth: dict[str, Any] = {"active": None, "dead_letter": None}
        if self.stats is not None:
            try:
                depth = dict(await self.stats.depth())
            except Exception as error:  # the rest of the health page is still worth showing
                depth["error"] = f"{type(error).__name__}: {str(error)[:200]}"
        dead_lettered = sum(1 for f in failures if f.reason_code == "dead_lettered" and f.status == "open")
        config_ok = self.config_status is None or self.config_status.valid
        overall = "ok" if config_ok else "invalid_configuration"
        if config_ok and (depth.get("dead_letter") or dead_lettered):
            overall = "degraded"
        return {
            "status": overall,
            "configuration": self.config_status.to_document() if self.config_status else None,
            "checked_at": now.isoformat(),
            "queue": depth,
            "dead_lettered_failures": dead_lettered,
            "last_reconcile": await self.state.get_cursor(CURSOR),
            "segments": await self.segments(),
            "reconcile": await last_report(self.state),
            "flows": flows,
        }

    async def _change_tracking(self, now: datetime) -> dict[str, Any]:
        """The CRM change poll: its last run, and how old the delta link is (a stale one means no poll ran)."""
        status = await poll_status(self.state)
        linked_at = parse_time(status.get("delta_link_at"))
        status["delta_link_age_seconds"] = round((now - linked_at).total_seconds(), 1) if linked_at else None
        return status

    async def list_failures(
        self, where: FailureFilter, page_size: int = 50, continuation: str | None = None
    ) -> dict[str, Any]:
        if not 1 <= page_size <= 500:
            raise OpsError(400, "bad_page_size", "page_size must be between 1 and 500", field="page_size")
        matching = [f for f in await self.state.list_failures(where.flow) if where.matches(f)]
        matching.sort(key=lambda f: (f.last_seen, f.record_id), reverse=True)
        start = _offset(continuation)
        page = matching[start : start + page_size]
        result: dict[str, Any] = {"items": [self._failure(f) for f in page], "total": len(matching)}
        if start + page_size < len(matching):
            result["continuation"] = _token(start + page_size)
        return result

    @staticmethod
    def _failure(failure: FailureRecord) -> dict[str, Any]:
        document = asdict(failure)
        document["candidates"] = list(failure.candidates)
        return document

    async def record(self, flow: str, record_id: str) -> dict[str, Any]:
        failure = await self.state.get_failure(flow, record_id)
        ledger = None
        for kind in self._kinds(flow):
            ledger = ledger or await self.state.get_ledger(kind, record_id)
        timeline = await self.traces.timeline(flow, record_id)
        if failure is None and ledger is None and not timeline:
            raise OpsError(404, "not_found", f"nothing is known about {named(flow, record_id)}")
        attempts = []
        for summary in timeline:
            attempts.append({**asdict(summary), "snapshot": await self.traces.snapshot(summary.snapshot_ref)})
        return {
            "flow": flow,
            "record_id": record_id,
            "failure": self._failure(failure) if failure else None,
            "ledger": {k: v for k, v in asdict(ledger).items() if k != "etag"} if ledger else None,
            "attempts": attempts,
        }

    def _kinds(self, flow: str) -> tuple[str, ...]:
        kinds = kinds_of(flow)
        if kinds is None:
            raise OpsError(404, "unknown_flow", f"no flow named {flow[:80]!r} (known: {', '.join(OPERATED_FLOWS)})")
        return kinds

    async def retry(self, flow: str, record_id: str) -> dict[str, Any]:
        """Re-enqueue with a fresh fetch of the Square object (never the stale payload)."""
        kinds = self._kinds(flow)
        failure = await self.state.get_failure(flow, record_id)
        if failure is None:
            raise OpsError(404, "not_found", f"no failure recorded for {named(flow, record_id)}")
        if not kinds:
            raise OpsError(409, "not_retryable", f"{flow} failures hold no Square object to fetch again; resolve them")
        failed_kind = failure.event_type.split(".")[0]
        kind = failed_kind if failed_kind in kinds else kinds[0]
        now = self.clock.now().isoformat()
        command = fresh_fetch_command(kind, record_id, now)
        event_id = command.event_id
        await self._queue_for(kind).send(outbound(command))
        await self.state.resolve_failure(flow, record_id, f"retry requested at {now} as {event_id}", status="retrying")
        return {"flow": flow, "record_id": record_id, "retry_event_id": event_id}

    async def retry_matching(self, where: FailureFilter, limit: int = 500) -> dict[str, Any]:
        matching = [f for f in await self.state.list_failures(where.flow) if where.matches(f)][:limit]
        retried = []
        for failure in matching:
            if kinds_of(failure.flow):
                retried.append((await self.retry(failure.flow, failure.record_id))["record_id"])
        return {"retried": len(retried), "record_ids": retried}

    async def resolve(self, flow: str, record_id: str, status: str, note: str) -> dict[str, Any]:
        if status not in FINAL_STATUSES:
            raise OpsError(400, "bad_status", f"status must be one of {', '.join(FINAL_STATUSES)}", field="status")
        if await self.state.get_failure(flow, record_id) is None:
            raise OpsError(404, "not_found", f"no failure recorded for {named(flow, record_id)}")
        await self.state.resolve_failure(flow, record_id, note or f"marked {status}", status=status)
        return {"flow": flow, "record_id": record_id, "status": status}

    async def replay(self, start: datetime, end: datetime, flow: str | None = None) -> dict[str, Any]:
        """Re-deliver the events received in [start, end); the version gate makes it safe."""
        if end <= start:
            raise OpsError(400, "bad_range", "'to' must be after 'from'", field="to")
        replayed = []
        for document in await self.traces.received_between(start, end):
            command = SyncCommand.model_validate(document)
            if flow is not None and command.entity_kind not in (kinds_of(flow) or ()):
                continue
            message_id = f"replay-{command.event_id}-{uuid.uuid4().hex[:8]}"
            copy = command.model_copy(update={"message_id": message_id, "attempt": 1})
            await self._queue_for(command.entity_kind).send(outbound(copy))
            replayed.append(command.event_id)
        return {"replayed": len(replayed), "event_ids": replayed}

    async def preview(self, kind: str, square_id: str) -> dict[str, Any]:
        """What the configuration would do with this Square object, fetched now; nothing is written."""
        if self.previewer is None:
            raise OpsError(503, "preview_unavailable", "the configuration file is invalid; fix it to preview")
        try:
            return await self.previewer(kind, square_id)
        except ValueError as error:
            raise OpsError(400, "bad_kind", str(error)) from error

    async def segments(self) -> dict[str, Any]:
        """Each segment's size and the last run of the segments timer."""
        last = await self.state.get_cursor("segments")
        return json.loads(last) if last else {"run_at": None, "sizes": {}}

    async def flows(self) -> list[dict[str, Any]]:
        return [asdict(await self.state.get_flow(flow)) for flow in FLOWS]

    async def set_paused(self, flow: str, paused: bool, note: str) -> dict[str, Any]:
        self._kinds(flow)
        status = await self.state.get_flow(flow)
        status = FlowStatus(flow, paused, note, self.clock.now().isoformat(), status.last_written_at)
        await self.state.save_flow(status)
        return asdict(status)
