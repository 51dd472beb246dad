"""Control endpoints (loopback test instrumentation, no auth) for change tracking and CRM users.

- `GET|POST /_control/change-tracking` — body (all optional): `{"enable": ["lead", "tasks", …]}` turns change
  tracking on for tables (logical names or entity sets; it cannot be turned off, as in Dataverse),
  `{"token_max_age_seconds": 60}` sets the token age limit (Organization.ExpireChangeTrackingInDays),
  `{"expire_tokens": true}` expires every delta token issued so far. Answers the state.
- `GET|POST /_control/users` — POST `{"fullname": "Dana (sales)", "token": "…", "systemuserid": "…"}` (token and
  id optional) creates a systemuser and accepts its bearer token: requests with it act as that person, so their
  writes carry that `_modifiedby_value`. Answers `{"systemuserid", "token", "fullname"}`; GET lists the users.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from devstack.dataverse_emulator.server import Emulator, _now


def add_control_routes(app: web.Application, key: web.AppKey[Emulator]) -> None:
    async def change_tracking(request: web.Request) -> web.Response:
        em = request.app[key]
        tracking = em.store.tracking
        if request.method == "POST":
            settings: dict[str, Any] = await request.json()
            for name in settings.get("enable", []):
                table = em.store.tables.get(name) or em.store.by_logical.get(name)
                if table is None:
                    return web.json_response({"error": f"no table {name!r}"}, status=400)
                tracking.enabled.add(table.definition.logical_name)
            if "token_max_age_seconds" in settings:
                tracking.token_max_age_seconds = float(settings["token_max_age_seconds"])
            if settings.get("expire_tokens"):
                tracking.expire_all()
        return web.json_response(tracking.state())

    async def users(request: web.Request) -> web.Response:
        em = request.app[key]
        if request.method == "POST":
            spec: dict[str, Any] = await request.json()
            token = str(spec.get("token") or f"crm-user-{uuid.uuid4()}")
            user_id = em.directory.register(token, spec.get("systemuserid"))
            fullname = str(spec.get("fullname") or "CRM user")
            em.store.create(em.store.table("systemusers"), {"fullname": fullname}, _now(), user_id)
            return web.json_response({"systemuserid": user_id, "token": token, "fullname": fullname})
        return web.json_response([{"systemuserid": u, "token": t} for t, u in em.directory.tokens.items()])

    app.router.add_route("*", "/_control/change-tracking", change_tracking)
    app.router.add_route("*", "/_control/users", users)
