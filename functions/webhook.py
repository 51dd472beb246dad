"""HTTP trigger: POST /api/square/webhooks (anonymous at the host; the Square signature authenticates)."""

from __future__ import annotations

import json

import azure.functions as func

from shared import composition
from shared.pipeline.signature import SIGNATURE_HEADER

bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.function_name("square_webhook")
@bp.route(route="square/webhooks", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def square_webhook(req: func.HttpRequest) -> func.HttpResponse:
    reply = await composition.receive(req.get_body(), req.headers.get(SIGNATURE_HEADER))
    return func.HttpResponse(
        json.dumps(reply.body), status_code=reply.status, headers=dict(reply.headers), mimetype="application/json"
    )
