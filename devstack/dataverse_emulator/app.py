"""Request pipeline of the Dataverse emulator: bearer check, service-protection limits, injected faults,
latency, then the OData handlers; plus the /_control/ API that tests and the demo use."""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from dataclasses import asdict, fields
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from devstack.dataverse_emulator import extra_routes
from devstack.dataverse_emulator.addressing import SEGMENT, parse_key, primary_key_form, request_path
from devstack.dataverse_emulator.batch import batch_response
from devstack.dataverse_emulator.bulk import ACTIONS, bulk_action
from devstack.dataverse_emulator.control_ext import add_control_routes
from devstack.dataverse_emulator.identity import act_as, acting_user, stop_acting
from devstack.dataverse_emulator.protection import Budget, Limits, admit, cost_seconds, record, remaining_headers
from devstack.dataverse_emulator.server import (
    API,
    Answer,
    Call,
    Emulator,
    Fault,
    Handlers,
    _error,
    fault_answer,
)
from devstack.dataverse_emulator.store import DataverseFault

EMULATOR_KEY = web.AppKey("emulator", Emulator)
_ACTION = re.compile(r"^(?P<set>[A-Za-z_]\w*)/Microsoft\.Dynamics\.CRM\.(?P<action>\w+)$")


def _take_fault(em: Emulator, method: str) -> Fault | None:
    for fault in em.faults:
        if fault.count > 0 and (fault.method is None or fault.method == method):
            fault.count -= 1
            return fault
    return None


def route(handlers: Handlers, call: Call) -> Answer:
    """One Web API request (from HTTP or from a $batch part) → its answer; Dataverse faults become answers."""
    handlers.operations += 1
    try:
        return _dispatch(handlers, call)
    except DataverseFault as error:
        return fault_answer(error)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as error:
        return fault_answer(DataverseFault(400, "0x80040203", f"Bad request body: {error}"))


def _dispatch(handlers: Handlers, call: Call) -> Answer:
    em = handlers.em
    tail = call.tail
    if tail == "WhoAmI" and call.method == "GET":
        return Answer(
            200,
            {
                "BusinessUnitId": "00000000-0000-0000-0000-0000000000b1",
                "UserId": acting_user(),  # the caller (identity.py)
                "OrganizationId": "00000000-0000-0000-0000-0000000000c1",
            },
            {"x-ms-dop-hint": str(em.limits.dop_hint)},
        )
    if tail == "Merge" and call.method == "POST":
        return handlers.merge(call)
    if tail == "$batch":
        raise DataverseFault(400, "0x80060888", "Batch requests cannot be nested (Execute batch operations).")
    if em.metadata.handles(unquote(tail)):
        body = call.json() if call.body else None
        status, document, headers = em.metadata.handle(call.method, unquote(tail), body, call.base, call.query)
        return Answer(status, document, headers)
    extra = extra_routes.route(handlers, call)
    if extra is not None:
        return extra
    action = _ACTION.match(tail)
    if action is not None:
        if action.group("action") not in ACTIONS:
            raise DataverseFault(404, "0x8006088a", f"Resource not found for the segment '{action.group('action')}'.")
        return bulk_action(handlers, call, em.store.table(action.group("set")), action.group("action"))
    return _table_request(handlers, call)


def _table_request(handlers: Handlers, call: Call) -> Answer:
    match = SEGMENT.match(call.tail)
    if match is None:
        raise DataverseFault(404, "0x8006088a", f"Resource not found for the segment '{unquote(call.tail)}'.")
    table = handlers.em.store.table(match.group("name"))
    key_text = match.group("key")
    if key_text is None:
        if call.method == "GET":
            return handlers.get_collection(call, table)
        if call.method == "POST":
            return handlers.post_collection(call, table)
    else:
        key = primary_key_form(table, parse_key(key_text))
        if call.method == "GET":
            return handlers.get_one(call, table, key)
        if call.method == "PATCH":
            return handlers.patch(call, table, key)
        if call.method == "DELETE":
            return handlers.delete(call, table, key)
    raise DataverseFault(405, "0x80060888", f"The HTTP method '{call.method}' is not allowed here.")


def to_response(answer: Answer) -> web.Response:
    if answer.body is None:
        return web.Response(status=answer.status, headers=answer.headers)
    return web.json_response(answer.body, status=answer.status, headers=answer.headers)


def _raw_tail(request: web.Request) -> str:
    """The path after /api/data/v9.2/ with key text still percent-encoded: key values are decoded once, by the key
    parser; names, actions and `$count` outside the parentheses are decoded here (addressing.request_path)."""
    return request_path(request.rel_url.raw_path[len(API) :])


def _base(request: web.Request) -> str:
    """The service root as the client sees it (behind devstack/tls_proxy.py: https and the proxy's host)."""
    scheme = request.headers.get("X-Forwarded-Proto", request.scheme)
    return f"{scheme}://{request.headers.get('X-Forwarded-Host', request.host)}{API}"


async def api(request: web.Request) -> web.StreamResponse:
    em = request.app[EMULATOR_KEY]
    tail = _raw_tail(request)
    em.stats["requests"] += 1
    em.stats[f"{request.method} {_kind(tail)}"] += 1
    user = em.user_for(request.headers.get("Authorization"))
    if user is None:
        em.stats["status 401"] += 1
        return _error(
            DataverseFault(401, "0x80072560", "The user is not authenticated (bearer token missing or invalid).")
        )
    budget, limits = user.budget, em.limits
    throttled = admit(budget, limits, time.monotonic())
    if throttled is not None:
        em.stats["status 429"] += 1
        em.stats[f"throttled {throttled.code}"] += 1
        return _error(throttled)
    budget.in_flight += 1
    acting = act_as(user.user_id)  # this request's task context: every write it makes records the caller
    try:
        response = await _handle(em, Handlers(em), request, tail, budget)
    finally:
        stop_acting(acting)
        budget.in_flight -= 1
    response.headers.update(remaining_headers(budget, limits))
    return response


async def _handle(em: Emulator, handlers: Handlers, request: web.Request, tail: str, budget: Budget) -> web.Response:
    limits = em.limits
    if limits.latency_ms or limits.jitter_ms:
        await asyncio.sleep((limits.latency_ms + random.random() * limits.jitter_ms) / 1000)
    fault = _take_fault(em, request.method)
    if fault is not None and not fault.hang_after_write_seconds:
        em.stats[f"status {fault.status}"] += 1
        record(budget, cost_seconds(limits, 0))
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        return _error(DataverseFault(fault.status, fault.code, "Injected fault.", headers))
    call = Call(
        request.method,
        tail,
        dict(request.query),
        dict(request.headers),
        await request.read(),
        _base(request),
    )
    if call.tail == "$batch" and call.method == "POST":
        response = batch_response(handlers, call)
    else:
        response = to_response(route(handlers, call))
    cost = _charge(em, handlers, budget)
    if limits.sleep_cost and cost:
        await asyncio.sleep(cost)
    em.stats[f"status {response.status}"] += 1
    if fault is not None and fault.hang_after_write_seconds:
        await asyncio.sleep(fault.hang_after_write_seconds)  # applied, but the caller never hears back in time
    return response


def _charge(em: Emulator, handlers: Handlers, budget: Budget) -> float:
    """Server execution time of the request: a base cost per operation plus a cost per record written."""
    limits = em.limits
    cost = (limits.request_cost_ms * max(1, handlers.operations) + limits.record_cost_ms * handlers.records) / 1000
    record(budget, cost)
    em.stats["execution_ms"] += round(cost * 1000)
    return cost


def _kind(tail: str) -> str:
    action = _ACTION.match(tail)
    if action is not None:
        return f"{action.group('set')}/{action.group('action')}"
    match = SEGMENT.match(tail)
    if match is None:
        return unquote(tail)
    name = match.group("name")
    if match.group("key") is None:
        return name
    return f"{name}(id)" if "=" not in match.group("key") else f"{name}(key)"


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
    """Counters, plus each user's window (identity.py): requests, execution ms, in flight, throttled."""
    em = request.app[EMULATOR_KEY]
    if request.method == "DELETE":
        em.stats.clear()
    now = time.monotonic()
    users: dict[str, int] = {}
    for user in em.users.values():
        user.budget.expire(now, em.limits.window_seconds)
        users[f"user {user.name} requests_in_window"] = len(user.budget.window)
        users[f"user {user.name} execution_ms_in_window"] = round(user.budget.execution_seconds() * 1000)
        users[f"user {user.name} in_flight"] = user.budget.in_flight
        users[f"user {user.name} throttled"] = user.budget.throttled
    return web.json_response({**em.stats, "writes_applied": em.writes_applied, **users})


async def control_faults(request: web.Request) -> web.Response:
    em = request.app[EMULATOR_KEY]
    if request.method == "DELETE":
        em.faults.clear()
    elif request.method == "POST":
        document = await request.json()
        for item in document if isinstance(document, list) else [document]:
            em.faults.append(Fault(**item))
    return web.json_response([asdict(f) for f in em.faults])


async def control_limits(request: web.Request) -> web.Response:
    """POST {field: value}: change limits and costs; {"profile": "realistic"} for the published figures,
    {"profile": "default"} for the defaults. Either way every user's window starts afresh."""
    em = request.app[EMULATOR_KEY]
    if request.method == "POST":
        updates: dict[str, Any] = await request.json()
        base = {"realistic": Limits.realistic(), "default": Limits()}.get(str(updates.get("profile")), em.limits)
        allowed = {f.name for f in fields(Limits)}
        unknown = sorted(set(updates) - allowed - {"profile"})
        if unknown:
            return web.json_response({"error": f"unknown limit settings: {', '.join(unknown)}"}, status=400)
        em.limits = Limits(**{**asdict(base), **{k: v for k, v in updates.items() if k in allowed}})
        for user in em.users.values():
            user.budget.clear()
            user.budget.throttled = 0
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
