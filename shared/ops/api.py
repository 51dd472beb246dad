"""The admin API's routes (under /api/ops/), as one table: method + path pattern → service call.

The trigger hands over method, path (decoded once by the host, as Azure's and the local host do), query
and body; this returns a status and a JSON document. A record id is the last variable part of its route
and may hold any character, "/" included, so every listed failure can be opened, retried and resolved
(clients percent-encode it as one segment). Bad input is a 400 naming the field, never a 500.
Function-key protection is the host's job (AuthLevel.FUNCTION); nothing here trusts the caller more.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.core.json_input import JsonInputError, read_json
from shared.core.times import parse_time
from shared.ops.service import FailureFilter, OpsError, OpsService, named
from shared.pipeline.reconcile_all import last_report

OPENAPI_FILE = Path(__file__).with_name("openapi.json")
Handler = Callable[[OpsService, dict[str, str], Mapping[str, str], dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any


def _text(values: Mapping[str, Any], name: str) -> str | None:
    """A string field (query parameter or body member), None when absent or empty."""
    value = values.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise OpsError(400, "bad_field", f"{name} must be a string", field=name)
    return value


def _time(values: Mapping[str, Any], name: str) -> datetime | None:
    text = _text(values, name)
    if text is None:
        return None
    moment = parse_time(text)
    if moment is None:
        raise OpsError(400, "bad_time", f"{name} must be an RFC 3339 time", field=name)
    try:
        moment.astimezone(UTC)  # 0001-01-01T00:00:00+01:00 parses, but lies before datetime's range in UTC
    except OverflowError as error:
        raise OpsError(400, "bad_time", f"{name} is out of range", field=name) from error
    return moment


def _filter(values: Mapping[str, Any]) -> FailureFilter:
    status = _text(values, "status") if "status" in values else "open"
    return FailureFilter(
        flow=_text(values, "flow"),
        reason=_text(values, "reason"),
        status=None if status in (None, "any") else status,
        since=_time(values, "from"),
        until=_time(values, "to"),
    )


async def _health(s: OpsService, p: dict[str, str], q: Mapping[str, str], b: dict[str, Any]) -> Any:
    return await s.health()


async def _failures(s: OpsService, p: dict[str, str], q: Mapping[str, str], b: dict[str, Any]) -> Any:
    try:
        size = int(q.get("page_size", "50"))
    except ValueError as error:
        raise OpsError(400, "bad_page_size", "page_size must be a whole number", field="page_size") from error
    return await s.list_failures(_filter(q), size, _text(q, "continuation"))


async def _retry_matching(s: OpsService, p: dict[str, str], q: Mapping[str, str], b: dict[str, Any]) -> Any:
    return await s.retry_matching(_filter(b))


async def _failure(s: OpsService, p: dict[str, str], q: Mapping[str, str], b: dict[str, Any]) -> Any:
    record = await s.record(p["flow"], p["record_id"])
    if record["failure"] is None:
        raise OpsError(404, "not_found", f"no failure recorded for {named(p['flow'], p['record_id'])}")
    return record["failure"]


async def _retry(s: OpsService, p: dict[str, str], q: Mapping[str, str], b: dict[str, Any]) -> Any:
    return await s.retry(p["flow"], p["record_id"])


async def _resolve(s: OpsService, p: dict[str, str], q: Mapping[str, str], b: dict[str, Any]) -> Any:
    return await s.resolve(p["flow"], p["record_id"], _text(b, "status") or "resolved", _text(b, "note") or "")


async def _record(s: OpsService, p: dict[str, str], q: Mapping[str, str], b: dict[str, Any]) -> Any:
    return await s.record(p["flow"], p["record_id"])


async def _replay(s: OpsService, p: dict[str, str], q: Mapping[str, str], b: dict[str, Any]) -> Any:
    start, end = _time(b, "from"), _time(b, "to")
    if start is None or end is None:
        raise OpsError(400, "bad_range", "'from' and 'to' are required", field="to" if start else "from")
    return await s.replay(start, end, _text(b, "flow"))


async def _flows(s: OpsService, p: dict[str, str], q: Mapping[str, str], b: dict[str, Any]) -> Any:
    return {"flows": await s.flows()}


async def _pause(s: OpsService, p: dict[str, str], q: Mapping[str, str], b: dict[str, Any]) -> Any:
    return await s.set_paused(p["flow"], True, _text(b, "note") or "")


async def _resume(s: OpsService, p: dict[str, str], q: Mapping[str, str], b: dict[str, Any]) -> Any:
    return await s.set_paused(p["flow"], False, _text(b, "note") or "")


async def _preview(s: OpsService, p: dict[str, str], q: Mapping[str, str], b: dict[str, Any]) -> Any:
    return await s.preview(p["kind"], p["record_id"])


async def _segments(s: OpsService, p: dict[str, str], q: Mapping[str, str], b: dict[str, Any]) -> Any:
    return await s.segments()


def _jobs(s: OpsService) -> Any:
    if s.jobs is None:
        raise OpsError(503, "backfill_unavailable", "backfill jobs are not available in this process")
    return s.jobs


async def _start_backfill(s: OpsService, p: dict[str, str], q: Mapping[str, str], b: dict[str, Any]) -> Any:
    since = _time(b, "since")
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


# a flow (or a kind) is one segment; a record id is the rest up to the route's fixed ending, whatever it holds
PARAMETERS = {
    "flow": r"(?P<flow>[^/]+)",
    "kind": r"(?P<kind>[^/]+)",
    "job_id": r"(?P<job_id>[^/]+)",
    "record_id": r"(?P<record_id>.+)",
}
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
    ("GET", "preview/{kind}/{record_id}", _preview),
    ("GET", "segments", _segments),
    ("GET", "openapi.json", _openapi),
    ("POST", "backfill", _start_backfill),
    ("GET", "backfill/{job_id}", _backfill_job),
    ("GET", "reconcile", _reconcile),
]
_COMPILED = [
    (method, re.compile("^" + re.sub(r"\{(\w+)\}", lambda m: PARAMETERS[m.group(1)], template) + "$", re.S), handler)
    for method, template, handler in ROUTES
]


def _error(status: int, code: str, message: str, field: str | None = None) -> Reply:
    error = {"code": code, "message": message, **({"field": field} if field else {})}
    return Reply(status, {"error": error})


def _body(body: bytes) -> dict[str, Any] | Reply:
    try:
        document = read_json(body) if body else {}
    except JsonInputError as error:
        return _error(400, "invalid_json", f"the body is not acceptable JSON: {error}", field="body")
    if not isinstance(document, dict):
        return _error(400, "invalid_json", "the body must be a JSON object", field="body")
    return document


def _matches(path: str) -> list[tuple[str, re.Match[str], Handler]]:
    """Routes matching the path as given, else without a trailing "/" (a record id may end with one)."""
    for candidate in dict.fromkeys((path, path.rstrip("/"))):
        found = [(m, match, h) for m, pattern, h in _COMPILED if (match := pattern.match(candidate))]
        if found:
            return found
    return []


async def handle(service: OpsService, method: str, path: str, query: Mapping[str, str], body: bytes) -> Reply:
    path = path.lstrip("/")
    matching = _matches(path)
    for route_method, match, handler in matching:
        if route_method != method:
            continue
        document = _body(body)
        if isinstance(document, Reply):
            return document
        try:
            return Reply(200, await handler(service, match.groupdict(), query, document))
        except OpsError as error:
            return _error(error.status, error.code, str(error), error.field)
    if matching:
        allowed = sorted({m for m, _, _ in matching})
        return _error(405, "method_not_allowed", f"{method} is not allowed here (allowed: {', '.join(allowed)})")
    return _error(404, "not_found", f"no admin route at /api/ops/{path[:200]!r}")
