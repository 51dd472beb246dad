"""Operations triggers: the admin API (function key), the console's static files, the trace purge timer."""

from __future__ import annotations

import json
import logging

import azure.functions as func

from shared import composition

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger("tillbridge.ops")


@bp.function_name("ops_api")
@bp.route(route="ops/{*path}", methods=["GET", "POST"], auth_level=func.AuthLevel.FUNCTION)
async def ops_api(req: func.HttpRequest) -> func.HttpResponse:
    reply = await composition.ops(req.method, req.route_params.get("path", ""), dict(req.params), req.get_body())
    return func.HttpResponse(json.dumps(reply.body, default=str), status_code=reply.status, mimetype="application/json")


@bp.function_name("ops_console")
@bp.route(route="console/{*asset}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def ops_console(req: func.HttpRequest) -> func.HttpResponse:
    from shared.ops.console_files import console_asset

    asset = console_asset(req.route_params.get("asset", ""))
    if asset is None:
        return func.HttpResponse("not found", status_code=404)
    body, mimetype = asset
    headers = {
        "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
        "X-Content-Type-Options": "nosniff",
    }
    return func.HttpResponse(body, status_code=200, mimetype=mimetype, headers=headers)


@bp.function_name("purge_traces")
@bp.timer_trigger(arg_name="timer", schedule="0 30 2 * * *", run_on_startup=False)
async def purge_traces(timer: func.TimerRequest) -> None:
    removed = await composition.purge_traces()
    log.info("purged %d expired trace(s)", removed)
