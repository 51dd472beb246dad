"""Request pipeline of the Dataverse emulator: bearer check, service-protection limits, injected faults,
latency, then the OData handlers; plus the /_control/ API that tests and the demo use."""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import asdict, fields
from typing import Any

from aiohttp import web

from devstack.dataverse_emulator import extra_routes
from devstack.dataverse_emulator.batch import batch_response
from devstack.dataverse_emulator.control_ext import add_control_routes
from devstack.dataverse_emulator.identity import act_as, acting_user, stop_acting
from devstack.dataverse_emulator.server import (
    _SEGMENT,
    API,
    Answer,
    Call,
    Emulator,
    Fault,
    Handlers,
    Limits,
    _error,
    _parse_key,
    fault_answer,
)
from devstack.dataverse_emulator.store import DataverseFault

EMULATOR_KEY = web.AppKey("emulator", Emulator)


def _throttle(em: Emulator) -> DataverseFault | None:
    now = time.monotonic()
    window = em._window
    while window and window[0] <= now - em.limits.window_seconds:
        window.popleft()
    if em._in_flight >= em.limits.max_concurrency:
        return DataverseFault(
            429,
            "0x80072326",
            f"Number of concurrent requests exceeded the limit of {em.limits.max_concurrency}.",
            {"Retry-After": str(int(em.limits.retry_after_seconds) or 1)},
        )
    if len(window) >= em.limits.requests_per_window:
        wait = max(em.limits.retry_after_seconds, window[0] + em.limits.window_seconds - now)
        return DataverseFault(
            429,
            "0x80072322",
            f"Number of requests exceeded the limit of {em.limits.requests_per_window} over time window of "
            f"{int(em.limits.window_seconds)} seconds.",
            {"Retry-After": str(max(1, round(wait)))},
        )
    window.append(now)
    return None


def _take_fault(em: Emulator, method: str) -> Fault | None:
    for fault in em.faults:
        if fault.count > 0 and (fault.method is None or fault.method == method):
            fault.count -= 1
            return fault
    return None


def route(handlers: Handlers, call: Call) -> Answer:
    """One Web API request (from HTTP or from a $batch part) → its answer; Dataverse faults become answers."""
    try:
        return _dispatch(handlers, call)
    except DataverseFault as error:
        return fault_answer(error)
    except (json.JSONDecodeError, ValueError) as error:
        return fault_answer(DataverseFault(400, "0x80040203", f"Bad request body: {error}"))


def _dispatch(handlers: Handlers, call: Call) -> Answer:
    em = handlers.em
    tail = call.tail
    if tail == "WhoAmI" and call.method == "GET":
        return Answer(
            200,
            {
                "BusinessUnitId": "00000000-0000-0000-0000-0000000000b1",
                "UserId": acting_user(),
                "OrganizationId": "00000000-0000-0000-0000-0000000000c1",
            },
            {"x-ms-dop-hint": str(em.limits.dop_hint)},
        )
    if tail == "Merge" and call.method == "POST":
        return handlers.merge(call)
    if em.metadata.handles(tail):
        status, document, headers = em.metadata.handle(call.method, tail, call.json() if call.body else None, call.base)
        return Answer(status, document, headers)
    extra = extra_routes.route(handlers, call)
    if extra is not None:
        return extra
    match = _SEGMENT.match(tail)
    if match is None:
        raise DataverseFault(404, "0x8006088a", f"Resource not found for the segment '{tail}'.")
    table = em.store.table(match.group("name"))
    key_text = match.group("key")
    if key_text is None:
        if call.method == "GET":
            return handlers.get_collection(call, table)
        if call.method == "POST":
            return handlers.post_collection(call, table)
    else:
        key = _parse_key(key_text)
        if call.method == "GET":
            return handlers.get_one(call, table, key)
        if call.method == "PATCH":
            return handlers.patch(call, table, key)
    raise DataverseFault(405, "0x80060888", f"The HTTP method '{call.method}' is not allowed here.")


def to_response(answer: Answer) -> web.Response:
    if answer.body is None:
        return web.Response(status=answer.status, headers=answer.headers)
    return web.json_response(answer.body, status=answer.status, headers=answer.headers)


async def api(request: web.Request) -> web.StreamResponse:
    em = request.app[EMULATOR_KEY]
    handlers = Handlers(em)
    em.stats["requests"] += 1
    em.stats[f"{request.method} {_kind(request.match_info['tail'])}"] += 1
    caller = em.directory.user_for(request.headers.get("Authorization"))
    if caller is None:
        em.stats["status 401"] += 1
        return _error(
            DataverseFault(401, "0x80072560", "The user is not authenticated (bearer token missing or invalid).")
        )
    throttled = _throttle(em)
    if throttled is not None:
        em.stats["status 429"] += 1
        return _error(throttled)
    em._in_flight += 1
    acting = act_as(caller)  # this request's task context: every write it makes records the caller
    try:
        return await _handle(em, handlers, request)
    finally:
        stop_acting(acting)
        em._in_flight -= 1


async def _handle(em: Emulator, handlers: Handlers, request: web.Request) -> web.StreamResponse:
    if em.limits.latency_ms or em.limits.jitter_ms:
        await asyncio.sleep((em.limits.latency_ms + random.random() * em.limits.jitter_ms) / 1000)
    fault = _take_fault(em, request.method)
    if fault is not None and not fault.hang_after_write_seconds:
        em.stats[f"status {fault.status}"] += 1
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        return _error(DataverseFault(fault.status, fault.code, "Injected fault.", headers))
    call = Call(
        request.method,
        request.match_info["tail"],
        dict(request.query),
        dict(request.headers),
        await request.read(),
        f"{request.scheme}://{request.host}{API}",
    )
    if call.tail == "$batch" and call.method == "POST":
        response = batch_response(handlers, call)
    else:
        response = to_response(route(handlers, call))
    em.stats[f"status {response.status}"] += 1
    if fault is not None and fault.hang_after_write_seconds:
        await asyncio.sleep(fault.hang_after_write_seconds)  # applied, but the caller never hears back in time
    return response


def _kind(tail: str) -> str:
    match = _SEGMENT.match(tail)
    if match is None:
        return tail
    name = match.group("name")
    if match.group("key") is None:
        return name
    return f"{name}(id)" if _parse_guidish(match.group("key")) else f"{name}(key)"


def _parse_guidish(text: str) -> bool:
    return "=" not in text


# ---- control API (no auth: loopback test instrumentation) ----


async def control_rows(request: web.Request) -> web.Response:
    em = request.app[EMULATOR_KEY]
    table = em.store.table(request.match_info["set"])
    if request.method == "POST":
        rows = await request.json()
        created = [
            em.store.create(table, row, "2020-01-01T00:00:00Z", row.pop(table.definition.id_column, None))
            for row in rows
        ]
        return web.json_response(created)
    return web.json_response(list(table.rows.values()))


async def control_stats(request: web.Request) -> web.Response:
    em = request.app[EMULATOR_KEY]
    if request.method == "DELETE":
        em.stats.clear()
    return web.json_response({**em.stats, "writes_applied": em.writes_applied})


async def control_faults(request: web.Request) -> web.Response:
    em = request.app[EMULATOR_KEY]
    if request.method == "DELETE":
        em.faults.clear()
    else:
        document = await request.json()
        for item in document if isinstance(document, list) else [document]:
            em.faults.append(Fault(**item))
    return web.json_response([asdict(f) for f in em.faults])


async def control_limits(request: web.Request) -> web.Response:
    em = request.app[EMULATOR_KEY]
    if request.method == "POST":
        updates: dict[str, Any] = await request.json()
        allowed = {f.name for f in fields(Limits)}
        em.limits = Limits(**{**asdict(em.limits), **{k: v for k, v in updates.items() if k in allowed}})
        em._window.clear()
    return web.json_response(asdict(em.limits))


async def control_metadata(request: web.Request) -> web.Response:
    em = request.app[EMULATOR_KEY]
    settings = await request.json()
    em.metadata.writes_allowed = bool(settings.get("writes_allowed", em.metadata.writes_allowed))
    em.metadata.activation_seconds = float(settings.get("activation_seconds", em.metadata.activation_seconds))
    return web.json_response(
        {"writes_allowed": em.metadata.writes_allowed, "activation_seconds": em.metadata.activation_seconds}
    )


async def control_reset(request: web.Request) -> web.Response:
    em = request.app[EMULATOR_KEY]
    em.reset()
    em.limits = Limits()
    return web.json_response({"reset": True})


def create_app(emulator: Emulator) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[EMULATOR_KEY] = emulator
    app.router.add_route("*", API + "{tail:.*}", api)
    app.router.add_route("*", "/_control/tables/{set}", control_rows)
    app.router.add_route("*", "/_control/stats", control_stats)
    app.router.add_route("*", "/_control/faults", control_faults)
    app.router.add_route("*", "/_control/limits", control_limits)
    app.router.add_post("/_control/reset", control_reset)
    app.router.add_post("/_control/metadata", control_metadata)
    add_control_routes(app, EMULATOR_KEY)
    return app
