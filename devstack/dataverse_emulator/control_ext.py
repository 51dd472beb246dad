"""Control endpoints (loopback test instrumentation, no auth) for change tracking and the organisation's users.

- `GET|POST /_control/change-tracking` — body (all optional): `{"enable": ["lead", "tasks", …]}` turns change
  tracking on for tables (logical names or entity sets; it cannot be turned off, as in Dataverse),
  `{"token_max_age_seconds": 60}` sets the token age limit (Organization.ExpireChangeTrackingInDays),
  `{"expire_tokens": true}` expires every delta token issued so far. Answers the state.
- `GET|POST /_control/users` — every accepted bearer token is a systemuser with its own service-protection budget
  (identity.py). POST `{"fullname": "Dana (sales)", "token": "…", "systemuserid": "…", "name": "…"}` (all
  optional) creates the systemuser and accepts its token: requests with it act as that user — WhoAmI answers its
  id, its writes carry its `_createdby_value` / `_modifiedby_value`, its requests count against its own limits
  (`name` labels it in /_control/stats; a second application user is just another token). A token already
  accepted keeps its user. Answers `{"systemuserid", "token", "fullname", "name"}`; GET lists every user, the
  emulator's own token (`app1`) first.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from devstack.dataverse_emulator.server import Emulator


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
            name, fullname, user_id = (
                str(spec[k]) if spec.get(k) else None for k in ("name", "fullname", "systemuserid")
            )
            return web.json_response(em.add_user(token, name, fullname, user_id).document())
        return web.json_response([user.document() for user in em.users.values()])

    app.router.add_route("*", "/_control/change-tracking", change_tracking)
    app.router.add_route("*", "/_control/users", users)
