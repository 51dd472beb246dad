"""Record timelines: what happened on each attempt at each record, with snapshots.

The worker opens an `AttemptTrace` per message; flows and the Dataverse client add steps, snapshots
and API exchanges through `current()` (a context variable: each message is processed in its own task).
The trace is saved once, at the end of the attempt (one table row + one snapshot document).
"""

from __future__ import annotations

import contextvars
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

SECRET_HEADERS = {"authorization", "cookie", "set-cookie", "x-functions-key", "ocp-apim-subscription-key"}
_TOKEN_PATTERN = re.compile(r"(?i)(bearer\s+)[a-z0-9._~+/=-]+")


@dataclass
class TraceStep:
    stage: str  # received | fetched | mapped | validated | matched | written | skipped | failed | retry_scheduled
    at: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class AttemptTrace:
    flow: str
    record_id: str
    event_id: str
    event_type: str
    attempt: int
    delivery_count: int
    started_at: str
    outcome: str = "running"
    steps: list[TraceStep] = field(default_factory=list)
    snapshots: dict[str, Any] = field(default_factory=dict)
    exchanges: list[dict[str, Any]] = field(default_factory=list)
    command_json: str = "{}"
    clock: Any = None

    def step(self, stage: str, **detail: Any) -> None:
        at = self.clock.now().isoformat() if self.clock is not None else ""
        self.steps.append(TraceStep(stage, at, {k: v for k, v in detail.items() if v is not None}))

    def snapshot(self, name: str, value: Any) -> None:
        self.snapshots[name] = value

    def exchange(self, record: dict[str, Any]) -> None:
        self.exchanges.append(scrub(record))


@dataclass(frozen=True)
class TraceSummary:
    """One attempt as listed on a record's timeline (the snapshot document is fetched separately)."""

    flow: str
    record_id: str
    event_id: str
    event_type: str
    attempt: int
    delivery_count: int
    started_at: str
    outcome: str
    steps: list[dict[str, Any]]
    snapshot_ref: str


class TraceStore(Protocol):
    async def save(self, trace: AttemptTrace) -> None: ...

    async def timeline(self, flow: str, record_id: str) -> list[TraceSummary]: ...

    async def snapshot(self, ref: str) -> dict[str, Any] | None: ...

    async def received_between(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """The queue messages (SyncCommand JSON) first received in [start, end), for replay."""
        ...

    async def purge(self, before: datetime) -> int: ...


_current: contextvars.ContextVar[AttemptTrace | None] = contextvars.ContextVar("tillbridge_trace", default=None)


def begin(trace: AttemptTrace) -> contextvars.Token[AttemptTrace | None]:
    return _current.set(trace)


def end(token: contextvars.Token[AttemptTrace | None]) -> None:
    _current.reset(token)


def current() -> AttemptTrace | None:
    return _current.get()


def step(stage: str, **detail: Any) -> None:
    trace = _current.get()
    if trace is not None:
        trace.step(stage, **detail)


def snapshot(name: str, value: Any) -> None:
    trace = _current.get()
    if trace is not None:
        trace.snapshot(name, value)


def exchange(record: dict[str, Any]) -> None:
    trace = _current.get()
    if trace is not None:
        trace.exchange(record)


def scrub(value: Any) -> Any:
    """Remove secrets from a snapshot: credential headers dropped, bearer tokens masked anywhere."""
    if isinstance(value, dict):
        return {k: ("[removed]" if str(k).lower() in SECRET_HEADERS else scrub(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(item) for item in value]
    if isinstance(value, str):
        return _TOKEN_PATTERN.sub(r"\1[removed]", value)
    return value
