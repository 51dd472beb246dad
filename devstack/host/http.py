"""HTTP triggers: /api/<route> with {param} templates, methods, and the function's response."""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from aiohttp import web

log = logging.getLogger("devstack.host.http")
Invoke = Callable[[Any, dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class HttpRoute:
    function: Any
    pattern: re.Pattern[str]
    methods: frozenset[str]
    trigger_arg: str
    needs_key: bool


def key_accepted(request: web.Request, function_key: str) -> bool:
    """The function key, as the host accepts it: `x-functions-key` header or `code` query parameter."""
    offered = request.headers.get("x-functions-key") or request.query.get("code") or ""
    return bool(function_key) and hmac.compare_digest(offered.encode(), function_key.encode())


def compile_route(template: str) -> re.Pattern[str]:
    parts = []
    for piece in re.split(r"(\{[^}]+\})", template.strip("/")):
        if piece.startswith("{*") and piece.endswith("}"):
            parts.append(f"(?P<{piece[2:-1]}>.*)")  # catch-all, as in Functions route templates
        elif piece.startswith("{") and piece.endswith("}"):
            name = piece[1:-1].split(":")[0].rstrip("?")
            parts.append(f"(?P<{name}>[^/]+)")
        else:
            parts.append(re.escape(piece))
    return re.compile("^" + "".join(parts) + "/?$", re.IGNORECASE | re.DOTALL)


def http_routes(functions: list[Any]) -> list[HttpRoute]:
    routes = []
    for function in functions:
        trigger = function.get_trigger()
        if trigger.type != "httpTrigger":
            continue
        methods = frozenset(str(getattr(m, "value", m)).upper() for m in (trigger.methods or [])) or frozenset(
            {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
        )
        level = str(getattr(trigger.auth_level, "value", trigger.auth_level) or "function").lower()
        template = trigger.route or function.get_function_name()
        routes.append(HttpRoute(function, compile_route(template), methods, trigger.name, level != "anonymous"))
    return routes


def _to_aiohttp(response: Any) -> web.Response:
    if not isinstance(response, func.HttpResponse):
        return web.Response(status=500, text="function did not return an HttpResponse")
    headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-type")}
    content_type = response.mimetype or "text/plain"
    return web.Response(
        status=response.status_code,
        body=response.get_body(),
        headers=headers,
        content_type=content_type,
        charset=response.charset if content_type.startswith(("text/", "application/json")) else None,
    )


def make_handler(
    routes: list[HttpRoute], invoke: Invoke, function_key: str
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        tail = request.match_info["tail"]
        for route in routes:
            match = route.pattern.match(tail)
            if match is None:
                continue
            if route.needs_key and not key_accepted(request, function_key):
                return web.Response(status=401)  # as the Functions host: no body, the function never runs
            if request.method not in route.methods:
                return web.json_response(
                    {"error": {"code": "method_not_allowed", "message": request.method}}, status=405
                )
            body = await request.read()
            http_request = func.HttpRequest(
                request.method,
                str(request.url),
                headers=dict(request.headers),
                params=dict(request.query),
                route_params=match.groupdict(),
                body=body,
            )
            try:
                response = await invoke(route.function, {route.trigger_arg: http_request})
            except Exception:
                log.exception("function %s failed", route.function.get_function_name())
                return web.Response(status=500)
            return _to_aiohttp(response)
        return web.json_response({"error": {"code": "not_found", "message": f"no function at /api/{tail}"}}, status=404)

    return handle
