"""The admin API's routes (under /api/ops/), as one table: method + path pattern → service call.

The trigger hands over method, path, query and body; this returns a status and a JSON document.
Function-key protection is the host's job (AuthLevel.FUNCTION); nothing here trusts the caller more.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from shared.core.times import parse_time
from shared.ops.service import FailureFilter, OpsError, OpsService
from shared.pipeline.reconcile_all import last_report

OPENAPI_FILE = Path(__file__).with_name("openapi.json")
Handler = Callable[[OpsService, dict[str, str], Mapping[str, str], dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any


def _time(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    moment = parse_time(value)
    if moment is None:
        raise OpsError(400, "bad_time", f"{name} must be an RFC 3339 time")
    return moment


def _filter(values: Mapping[str, Any]) -> FailureFilter:
    status = values.get("status", "open")
    return FailureFilter(
        flow=values.get("flow") or None,
        reason=values.get("reason") or None,
        status=None if status in ("", "any") else status,
        since=_time(values.get("from"), "from"),
        until=_time(values.get("to"), "to"),
    )


async def _health(s: OpsService, p: dict[str, str], q: Mapping[str, str], b: dict[str, Any]) -> Any:
    return await s.health()


async def _failures(s: OpsService, p: dict[str, str], q: Mapping[str, str], b: dict[str, Any]) -> Any:
    try:
        size = int(q.get("page_size", "50"))
    except ValueError as error:
        raise OpsError(400, "bad_page_size", "page_size must be a whole number") from error
    return await s.list_failures(_filter(q), size, q.get("continuation"))


async def _retry_matching(s: OpsService, p: dict[str, str], q: Mapping[str, str], b: dict[str, Any]) -> Any:
    return await s.retry_matching(_filter(b))


async def _failure(s: OpsService, p: dict[str, str], q: Mapping[str, str], b: dict[str, Any]) -> Any:
    record = await s.record(p["flow"], p["record_id"])
    if record["failure"] is None:
        raise OpsError(404, "not_found", f"no failure recorded for {p['flow']}/{p['record_id']}")
    return record["failure"]


async def _retry(s: OpsService, p: dict[str, str], q: Mapping[str, str], b: dict[str, Any]) -> Any:
    return await s.retry(p["flow"], p["record_id"])


async def _resolve(s: OpsService, p: dict[str, str], q: Mapping[str, str], b: dict[str, Any]) -> Any:
    return await s.resolve(p["flow"], p["record_id"], str(b.get("status", "resolved")), str(b.get("note", "")))


async def _record(s: OpsService, p: dict[str, str], q: Mapping[str, str], b: dict[str, Any]) -> Any:
    return await s.record(p["flow"], p["record_id"])


async def _replay(s: OpsService, p: dict[str, str], q: Mapping[str, str], b: dict[str, Any]) -> Any:
    start, end = _time(b.get("from"), "from"), _time(b.get("to"), "to")
    if start is None or end is None:
        raise OpsError(400, "bad_range", "'from' and 'to' are required")
    return await s.replay(start, end, b.get("flow") or None)


async def _flows(s: OpsService, p: dict[str, str], q: Mapping[str, str], b: dict[str, Any]) -> Any:
    return {"flows": await s.flows()}


async def _pause(s: OpsService, p: dict[str, str], q: Mapping[str, str], b: dict[str, Any]) -> Any:
    return await s.set_paused(p["flow"], True, str(b.get("note", "")))


async def _resume(s: OpsService, p: dict[str, str], q: Mapping[str, str], b: dict[str, Any]) -> Any:
    return await s.set_paused(p["flow"], False, str(b.get("note", "")))


def _jobs(s: OpsService) -> Any:
    if s.jobs is None:
        raise OpsError(503, "backfill_unavailable", "backfill jobs are not available in this process")
    return s.jobs


async def _start_backfill(s: OpsService, p: dict[str, str], q: Mapping[str, str], b: dict[str, Any]) -> Any:
    since = _time(b.get("since"), "since")
    try:
        return await _jobs(s).start(
            str(b.get("what", "")), since.isoformat() if since else None, bool(b.get("dry_run", False))
        )
    except ValueError as error:
        raise OpsError(400, "bad_backfill", str(error)) from error


async def _backfill_job(s: OpsService, p: dict[str, str], q: Mapping[str, str], b: dict[str, Any]) -> Any:
    job = await _jobs(s).status(p["job_id"])
    if job is None:
        raise OpsError(404, "not_found", f"no backfill job {p['job_id']}")
    return job


async def _reconcile(s: OpsService, p: dict[str, str], q: Mapping[str, str], b: dict[str, Any]) -> Any:
    return {"report": await last_report(s.state)}


async def _openapi(s: OpsService, p: dict[str, str], q: Mapping[str, str], b: dict[str, Any]) -> Any:
    return json.loads(OPENAPI_FILE.read_text(encoding="utf-8"))


SEGMENT = r"(?P<{}>[A-Za-z0-9_.:-]+)"
ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "health", _health),
    ("GET", "failures", _failures),
    ("POST", "failures/retry", _retry_matching),
    ("GET", "failures/{flow}/{record_id}", _failure),
    ("POST", "failures/{flow}/{record_id}/retry", _retry),
    ("POST", "failures/{flow}/{record_id}/resolve", _resolve),
    ("GET", "records/{flow}/{record_id}", _record),
    ("POST", "replay", _replay),
    ("GET", "flows", _flows),
    ("POST", "flows/{flow}/pause", _pause),
    ("POST", "flows/{flow}/resume", _resume),
    ("GET", "openapi.json", _openapi),
    ("POST", "backfill", _start_backfill),
    ("GET", "backfill/{job_id}", _backfill_job),
    ("GET", "reconcile", _reconcile),
]
_COMPILED = [
    (method, re.compile("^" + re.sub(r"\{(\w+)\}", lambda m: SEGMENT.format(m.group(1)), template) + "$"), handler)
    for method, template, handler in ROUTES
]


def _error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message}})


async def handle(service: OpsService, method: str, path: str, query: Mapping[str, str], body: bytes) -> Reply:
    path = path.strip("/")
    allowed = [m for m, pattern, _ in _COMPILED if pattern.match(path)]
    for route_method, pattern, handler in _COMPILED:
        match = pattern.match(path)
        if match is None or route_method != method:
            continue
        try:
            document = json.loads(body) if body else {}
        except (ValueError, UnicodeDecodeError):
            return _error(400, "invalid_json", "the body is not JSON")
        if not isinstance(document, dict):
            return _error(400, "invalid_json", "the body must be a JSON object")
        try:
            return Reply(200, await handler(service, match.groupdict(), query, document))
        except OpsError as error:
            return _error(error.status, error.code, str(error))
    if allowed:
        return _error(405, "method_not_allowed", f"{method} is not allowed here (allowed: {', '.join(allowed)})")
    return _error(404, "not_found", f"no admin route at /api/ops/{path}")
