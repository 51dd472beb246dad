"""Who is calling: bearer tokens → systemuser ids, and the audit columns every write records.

Dataverse stamps `createdby` / `modifiedby` (read back as `_createdby_value` / `_modifiedby_value`) with the
calling user on every create and update, and `ownerid` defaults to the caller when a create does not set it
(ownerid is SystemRequired on user-owned tables and filled by the platform). The entity references list
CreatedBy / ModifiedBy as read-only lookups to systemuser (e.g. MicrosoftDocs/dynamics-365-customer-engagement
ce/sales/developer/entities/list.md "Read-only columns"; powerapps-docs reference/entities/task.md).

The emulator's own bearer token is the application user (WhoAmI's UserId). Tests register more tokens through
`POST /_control/users` to act as a person in the CRM, so a sync can tell its own writes from people's (echo
suppression by identity, as the Business Central ↔ Dataverse sync does: reference/dataverse.md §12).
"""

from __future__ import annotations

import contextvars
import uuid
from dataclasses import dataclass, field
from typing import Any

DEFAULT_USER = "00000000-0000-0000-0000-0000000000a1"  # WhoAmI's UserId for the emulator's own token
AUDIT_COLUMNS: dict[str, int | None] = {"_createdby_value": None, "_modifiedby_value": None}

_acting_user: contextvars.ContextVar[str | None] = contextvars.ContextVar("dataverse_acting_user", default=None)


def acting_user() -> str:
    """The systemuser the current request runs as (the application user outside a request)."""
    return _acting_user.get() or DEFAULT_USER


def act_as(user_id: str) -> contextvars.Token[str | None]:
    return _acting_user.set(user_id)


def stop_acting(token: contextvars.Token[str | None]) -> None:
    _acting_user.reset(token)


@dataclass
class Directory:
    """Accepted bearer tokens and the systemuser each one signs in as."""

    tokens: dict[str, str] = field(default_factory=dict)

    def user_for(self, authorization: str | None) -> str | None:
        if not authorization or not authorization.startswith("Bearer "):
            return None
        return self.tokens.get(authorization[len("Bearer ") :])

    def register(self, token: str, user_id: str | None = None) -> str:
        user = (user_id or str(uuid.uuid4())).lower()
        self.tokens[token] = user
        return user


def stamp(row: dict[str, Any], created: bool, owner_column: bool) -> None:
    """Record the caller on a row just written; values a client sent for these read-only columns are replaced."""
    user = acting_user()
    if created:
        row["_createdby_value"] = user
        if owner_column and not row.get("_ownerid_value"):
            row["_ownerid_value"] = user
    row["_modifiedby_value"] = user
