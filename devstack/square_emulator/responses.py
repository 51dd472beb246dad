"""Square's wire conventions, shared by every endpoint of the emulator.

- Error body `{"errors":[{"category","code","detail","field"?}]}` (SPEC `Error`; Square's "Handling errors"
  page). Codes come from SPEC `ErrorCode`.
- `Authorization: Bearer <token>` or 401 `UNAUTHORIZED` / `AUTHENTICATION_ERROR`.
- `Square-Version: YYYY-MM-DD`: a malformed value is refused (`INVALID_SQUARE_VERSION_FORMAT`, SPEC `ErrorCode`);
  every response echoes the version used, the request's or the pinned default (reference/square.md §3).
- Unknown /v2 routes answer Square's 404 `NOT_FOUND` body, not the framework's text page.
- Injected faults (`/_control/faults`) answer before the handler runs, so nothing is applied: 429
  `RATE_LIMITED` / `RATE_LIMIT_ERROR` (SPEC `ErrorCategory`; no Retry-After, Square documents none), 5xx
  `API_ERROR`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import Any

from aiohttp import web

SQUARE_VERSION = "2025-08-20"
STATS = web.AppKey("stats", Counter[str])
TOKEN = web.AppKey("token", str)
_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FAULT_CODES = {429: ("RATE_LIMITED", "RATE_LIMIT_ERROR"), 503: ("SERVICE_UNAVAILABLE", "API_ERROR")}


@dataclass
class Fault:
    """The next `count` matching /v2 requests answer `status` instead of being served."""

    status: int
    count: int = 1
    method: str | None = None
    path_prefix: str = "/v2/"

    def matches(self, request: web.Request) -> bool:
        return self.count > 0 and request.path.startswith(self.path_prefix) and self.method in (None, request.method)


FAULTS = web.AppKey("faults", list[Fault])


class SquareFault(Exception):
    """A refusal in Square's words; the middleware renders it as Square's error body."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        field: str | None = None,
        category: str = "INVALID_REQUEST_ERROR",
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.field, self.category = status, code, detail, field, category

    def error(self) -> dict[str, Any]:
        error: dict[str, Any] = {"category": self.category, "code": self.code, "detail": self.detail}
        if self.field:
            error["field"] = self.field
        return error


def square_error(status: int, category: str, code: str, detail: str, field: str | None = None) -> web.Response:
    fault = SquareFault(status, code, detail, field, category)
    return web.json_response({"errors": [fault.error()]}, status=status)


def ok(body: dict[str, Any]) -> web.Response:
    return web.json_response(body)


def not_found(kind: str, wanted: str) -> SquareFault:
    return SquareFault(404, "NOT_FOUND", f"Could not find {kind} with id: {wanted}")


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object; an empty body counts as `{}` (EXPECTED_JSON_BODY otherwise)."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as error:
        raise SquareFault(400, "EXPECTED_JSON_BODY", "The request body is not valid JSON.") from error
    if not isinstance(body, dict):
        raise SquareFault(400, "EXPECTED_JSON_BODY", "The request body must be a JSON object.")
    return body


def _version_of(request: web.Request) -> str:
    wanted = request.headers.get("Square-Version")
    if wanted is None:
        return SQUARE_VERSION
    if not _VERSION.match(wanted):
        raise SquareFault(400, "INVALID_SQUARE_VERSION_FORMAT", f"Invalid Square-Version `{wanted}`.")
    try:
        date.fromisoformat(wanted)
    except ValueError as error:
        raise SquareFault(400, "INVALID_SQUARE_VERSION_FORMAT", f"Invalid Square-Version `{wanted}`.") from error
    return wanted


def _count(request: web.Request) -> None:
    stats = request.app[STATS]
    stats["requests"] += 1
    resource = request.match_info.route.resource
    stats[f"{request.method} {resource.canonical if resource else request.path}"] += 1


async def _answer(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.headers.get("Authorization") != f"Bearer {request.app[TOKEN]}":
        raise SquareFault(401, "UNAUTHORIZED", "This request could not be authorized.", None, "AUTHENTICATION_ERROR")
    _version_of(request)
    for fault in request.app[FAULTS]:
        if fault.matches(request):
            fault.count -= 1
            code, category = _FAULT_CODES.get(fault.status, ("INTERNAL_SERVER_ERROR", "API_ERROR"))
            raise SquareFault(fault.status, code, "Injected by the emulator's /_control/faults.", None, category)
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPNotFound as error:
        raise SquareFault(404, "NOT_FOUND", f"No API resource at {request.path}.") from error
    except web.HTTPMethodNotAllowed as error:
        raise SquareFault(405, "METHOD_NOT_ALLOWED", f"{request.method} is not allowed here.") from error
    return response


@web.middleware
async def square_edge(request: web.Request, handler: Any) -> web.StreamResponse:
    """Auth, Square-Version and request counting for /v2; Square's error body for every refusal."""
    is_api = request.path.startswith("/v2/")
    if is_api:
        _count(request)
    try:
        response: web.StreamResponse = await (_answer(request, handler) if is_api else handler(request))
    except SquareFault as fault:
        response = web.json_response({"errors": [fault.error()]}, status=fault.status)
    if is_api:
        try:
            response.headers["Square-Version"] = _version_of(request)
        except SquareFault:
            response.headers["Square-Version"] = SQUARE_VERSION
    return response
